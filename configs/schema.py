"""Hydra schemas without the fields a run *fits* from its data.

Some config fields are computed by a command and stored with its output, never set by a user:
`wm-train`'s action / state normalisation statistics (world_model/config.py
`PredictorConfig`). They stay on the real dataclass, so the checkpoint format keeps them, but
are marked ``field(default=None, metadata=FITTED)``. `cli_schema(cls)` is the dataclass Hydra
composes against instead: the same fields and defaults less the fitted ones, nested config
dataclasses replaced in turn, so ``world_model.predictor.action_mean=[...]`` is refused on the
command line and in YAML like any unknown key. `from_container(cls, data)` builds the real
dataclass from the composed (plain) config.

`check_known_keys(cfg)` refuses, by name, a key that a ``+key=value`` override added to a
node of a structured config: OmegaConf would set it as a stray attribute nothing reads, so
``wm-eval +agent.foo=1`` ran with exit 0. `configs.cli.one_line_errors` calls it for every
``wm-*`` command.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

FITTED: dict[str, Any] = {"fitted": True}
"""`field(metadata=FITTED)`: a value the command fits from data; absent from `cli_schema`."""


def is_fitted(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("fitted", False))


@functools.cache
def cli_schema(cls: type) -> type:
    """`cls` without its fitted fields (nested dataclass fields by their own schema), or `cls`
    itself when none of it is fitted. Cached: one schema class per dataclass."""
    hints = typing.get_type_hints(cls)
    specs, changed = [], False
    for f in dataclasses.fields(cls):
        if is_fitted(f):
            changed = True
            continue
        hint = hints[f.name]
        sub = cli_schema(hint) if dataclasses.is_dataclass(hint) else hint
        if sub is hint:
            default = dataclasses.field(
                default=f.default, default_factory=f.default_factory, metadata=f.metadata
            )
        else:
            changed = True
            make = f.default_factory if f.default is dataclasses.MISSING else lambda d=f.default: d
            default = dataclasses.field(
                default_factory=lambda make=make, sub=sub: _as_schema(make(), sub),
                metadata=f.metadata,
            )
        specs.append((f.name, sub, default))
    if not changed:
        return cls
    schema = dataclasses.make_dataclass(cls.__name__, specs)
    schema.__module__, schema.__qualname__ = cls.__module__, cls.__qualname__
    schema.__doc__ = f"{cls.__name__} as set on the command line (no fitted fields)."
    _REAL[schema] = cls
    return schema


_REAL: dict[type, type] = {}
"""`cli_schema` class -> the real dataclass it was made from."""


def _as_schema(value: Any, schema: type) -> Any:
    """A real config instance as an instance of its `cli_schema` (fitted fields dropped)."""
    hints = typing.get_type_hints(schema)
    kwargs = {}
    for f in dataclasses.fields(schema):
        v = getattr(value, f.name)
        kwargs[f.name] = _as_schema(v, hints[f.name]) if dataclasses.is_dataclass(v) else v
    return schema(**kwargs)


def from_container(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """The real dataclass `cls` from a composed config as plain containers
    (`OmegaConf.to_container`), nested dataclass fields built in turn; fitted fields keep
    their defaults, and one given anyway (a `+key=` override) is refused by name."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        _check_key(cls, key, where)
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_container(hint, value, f"{where}{key}.")
        kwargs[key] = value
    return cls(**kwargs)


def _check_key(cls: type, key: str, where: str) -> None:
    """Refuse `key` unless it is a settable field of dataclass `cls` (or of the real class a
    `cli_schema` was made from), naming it and the settable fields."""
    known = {f.name: f for f in dataclasses.fields(_REAL.get(cls, cls))}
    f = known.get(key)
    if f is None or is_fitted(f):
        why = "is fitted from the training data, not set" if f else "is not a config key"
        settable = sorted(n for n, g in known.items() if not is_fitted(g))
        raise ValueError(f"{where}{key} {why} (settable: {settable})")


def check_known_keys(cfg: DictConfig, where: str = "") -> None:
    """Refuse a key of any dataclass-backed node of `cfg` that its dataclass does not declare
    (a ``+key=value`` override), naming its dotted path; dict-typed fields (``env.kwargs``)
    take any key."""
    schema = OmegaConf.get_type(cfg)
    checked = dataclasses.is_dataclass(schema)
    for key in cfg:
        if checked:
            _check_key(schema, str(key), where)
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_known_keys(child, f"{where}{key}.")
