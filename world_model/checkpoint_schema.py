"""The schema of a checkpoint's `config.json`, checked once, when it is read.

Every reader of `config.json` (the loader, the agent's recommended settings, the action-block
peek) goes through `read_checkpoint_json`, so a malformed file is refused the same way
everywhere: one `CheckpointConfigError` naming the file and the field, never an
``AttributeError`` or ``could not convert string to float`` from deep inside a consumer.

Fields are required. The only ones that may be absent are those added after checkpoints were
shipped, whose default reproduces what the code did before them (`ADDED_LATER`); a missing
normalisation statistic, for example, is refused: its default (mean 0, std 1) is wrong for any
model `wm-train` wrote, and planning with it fails silently.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from envs.common.contract import EnvContract
from world_model.checkpoint_upgrades import UPGRADES
from world_model.config import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    RETIRED_KEYS,
    EncoderConfig,
    PredictorConfig,
    WorldModelConfig,
)

CONFIG = "config.json"

ADDED_LATER: dict[type, frozenset[str]] = {
    # The retired {reach,push,pickplace}_tiny checkpoints (copies may still be around) predate
    # these; absent = frozen encoder, one step per action, one context frame, a token grid, no
    # conv encoder, the state fed to the predictor.
    WorldModelConfig: frozenset({"objective", "action_block", "history"}),
    EncoderConfig: frozenset({"latent_layout", "conv_channels", "conv_stem", "proj_hidden"}),
    PredictorConfig: frozenset({"use_state"}),
    # Camera and simulation step joined the contract later: absent = unknown, not checked.
    # The action interface too: every checkpoint before it drove its env's own actions
    # (Push-T: gym-pusht's absolute targets), which its default, "native", says.
    EnvContract: frozenset(
        {"env_revision", "workspace_low", "workspace_high", "camera_pos", "camera_target"}
        | {"camera_fovy", "sim_dt", "action_interface"}
    ),
}
"""Per config dataclass, the fields an older `config.json` may lack (their defaults apply)."""

SECTIONS: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "version": (int,),
    "world_model": (dict,),
    "encoder_hf_config": (dict, type(None)),
    "latent": (dict,),
    "env": (dict, type(None)),
    "extra": (dict,),
}
"""Top-level keys of a current `config.json` and the JSON types each may hold."""


class CorruptCheckpointError(ValueError):
    """A checkpoint file is unreadable or holds NaN/inf weights (not merely another version)."""


class CheckpointConfigError(ValueError):
    """A checkpoint's `config.json` does not follow the schema (a field missing, unknown or of
    the wrong type)."""


def read_checkpoint_json(directory: str | Path) -> dict[str, Any]:
    """Parse, upgrade and schema-check ``directory/config.json``; return the payload.

    Raises `FileNotFoundError` when the file is missing, `CorruptCheckpointError` when it is
    not a JSON object, and `CheckpointConfigError` naming the file and the field for the rest
    (both ValueErrors).
    """
    directory = Path(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a world-model checkpoint directory")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"{path} is corrupt (not valid JSON): {exc}") from exc
    if not isinstance(payload, dict):
        raise CorruptCheckpointError(
            f"{path}: expected a JSON object with {sorted(SECTIONS)}, got {type(payload).__name__}"
        )
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointConfigError(
            f"{path}: format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    while payload.get("version") in UPGRADES:  # older layouts, one version at a time
        payload = UPGRADES[payload["version"]](payload, directory)
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointConfigError(
            f"{path}: checkpoint version {payload.get('version')!r}; this code reads version "
            f"{CHECKPOINT_VERSION} and upgrades {sorted(UPGRADES)} (a newer wm-train wrote it?)"
        )
    check_payload(payload, path)
    return payload


def check_payload(payload: dict[str, Any], path: Path) -> None:
    """Raise `CheckpointConfigError` naming ``path`` and the first field off the schema."""
    missing = sorted(set(SECTIONS) - set(payload))
    if missing:
        raise CheckpointConfigError(f"{path}: missing config sections {missing}")
    unknown = sorted(set(payload) - set(SECTIONS))
    if unknown:
        raise CheckpointConfigError(f"{path}: unknown config sections {unknown}")
    for key, kinds in SECTIONS.items():
        if not isinstance(payload[key], kinds) or isinstance(payload[key], bool):
            names = " or ".join("null" if k is type(None) else _JSON_NAME[k] for k in kinds)
            raise CheckpointConfigError(f"{path}: {key} must be {names}, got {payload[key]!r}")
    check_fields(WorldModelConfig, payload["world_model"], "world_model", path)
    for key in ("num_tokens", "dim"):
        value = payload["latent"].get(key)
        if not _matches(value, int) or value < 1:
            raise CheckpointConfigError(f"{path}: latent.{key}={value!r} must be an integer >= 1")
    if payload["env"] is not None:
        check_fields(EnvContract, payload["env"], "env", path)


def check_fields(cls: type, data: dict[str, Any], where: str, path: Path) -> None:
    """Every field of the dataclass ``cls`` present (unless `ADDED_LATER`), none unknown, each
    of its annotated type; nested config dataclasses are checked in turn."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    data = dict(data)
    for key, off in RETIRED_KEYS.get(where.rsplit(".", 1)[-1], {}).items():
        value = data.pop(key, off)  # a deleted option: only its "off" value loads
        if off is not None and (list(value) if isinstance(value, tuple) else value) != off:
            raise CheckpointConfigError(
                f"{path}: {where}.{key} is set, but that option was deleted (only {key}={off!r} "
                "loads); retrain without it (docs/experiments.md)"
            )
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointConfigError(
            f"{path}: {where}: unknown config keys {unknown} (known: {sorted(known)})"
        )
    missing = sorted(known - set(data) - ADDED_LATER.get(cls, frozenset()))
    if missing:
        raise CheckpointConfigError(
            f"{path}: {where} lacks {missing}: the model needs them and no default is right "
            "for a trained checkpoint; restore them from the run's config.json or retrain"
        )
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise CheckpointConfigError(f"{path}: {where}.{name} must be an object")
            check_fields(hint, value, f"{where}.{name}", path)
        elif not _matches(value, hint):
            raise CheckpointConfigError(
                f"{path}: {where}.{name}={value!r} must be {_describe(hint)}"
            )


_JSON_NAME = {
    dict: "an object",
    str: "a string",
    int: "an integer",
    list: "a list",
    bool: "true or false",
}


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field annotation (JSON has lists where Python has tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_matches, value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    """`float | None` -> "a number or null", `tuple[float, float, float]` -> "a list of 3
    numbers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if hint is float:
        return "a finite number"
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_describe(args[0]).split(' ', 1)[-1]}s"
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    return _JSON_NAME.get(hint, getattr(hint, "__name__", str(hint)))
