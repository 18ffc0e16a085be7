"""Every default is declared once, on its dataclass: a YAML in configs/ sets only what differs.

A YAML that repeats a default drifts the day the dataclass changes (eval.yaml once lacked two
agent fields), so this test names any repeated value and the file to delete it from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from agent.config import EvalConfig
from bench.improve.config import ImproveConfig
from configs.schema import FITTED, cli_schema, from_container
from envs.data.episode import DatasetError
from planners.config import CEMConfig, MPPIConfig
from world_model.config import PredictorConfig, WorldModelConfig
from world_model.training.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SCHEMAS: dict[str, type] = {
    "eval.yaml": EvalConfig,
    "demo.yaml": EvalConfig,
    "train.yaml": TrainConfig,
    "train_lewm.yaml": TrainConfig,
    "improve.yaml": ImproveConfig,
    "planner/cem.yaml": CEMConfig,
    "planner/mppi.yaml": MPPIConfig,
    "planner/direct.yaml": CEMConfig,
    "world_model/tiny.yaml": WorldModelConfig,
    "world_model/lewm.yaml": WorldModelConfig,
    "world_model/vjepa2_vitg.yaml": WorldModelConfig,
}


def repeated_defaults(values: dict[str, Any], default: Any, prefix: str = "") -> list[str]:
    """Dotted keys of `values` whose value equals the dataclass default `default`."""
    out = []
    for key, value in values.items():
        field_default = getattr(default, key)
        if isinstance(value, dict) and dataclasses.is_dataclass(field_default):
            out += repeated_defaults(value, field_default, f"{prefix}{key}.")
        elif (list(field_default) if isinstance(field_default, tuple) else field_default) == value:
            out.append(f"{prefix}{key}")
    return out


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_yaml_sets_only_what_differs_from_its_dataclass(name: str) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(CONFIGS / name))
    for section in ("defaults", "hydra"):
        raw.pop(section, None)
    repeated = repeated_defaults(raw, SCHEMAS[name]())
    assert not repeated, f"configs/{name} repeats dataclass defaults {repeated}: delete them"


def test_every_planner_and_world_model_yaml_is_checked() -> None:
    found = {
        f"{g}/{p.name}" for g in ("planner", "world_model") for p in (CONFIGS / g).glob("*.yaml")
    }
    assert found <= set(SCHEMAS)


# ----- fitted fields: on the dataclass (and the checkpoint), never on the command line -----
@dataclasses.dataclass
class _Inner:
    keep: int = 3
    stat: list[float] | None = dataclasses.field(default=None, metadata=FITTED)


@dataclasses.dataclass
class _Outer:
    name: str = "x"
    inner: _Inner = dataclasses.field(default_factory=lambda: _Inner(keep=5))
    plain: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    fit: float | None = dataclasses.field(default=None, metadata=FITTED)


@dataclasses.dataclass
class _NothingFitted:
    a: int = 1


def test_cli_schema_drops_exactly_the_fitted_fields_keeping_defaults_nested() -> None:
    schema = cli_schema(_Outer)
    assert [f.name for f in dataclasses.fields(schema)] == ["name", "inner", "plain"]
    inner = dataclasses.fields(schema)[1].type
    assert [f.name for f in dataclasses.fields(inner)] == ["keep"]
    assert inner is cli_schema(_Inner) and schema is cli_schema(_Outer)  # one class each
    default = schema()
    assert (default.name, default.inner.keep, default.plain) == ("x", 5, [1, 2])
    assert cli_schema(_NothingFitted) is _NothingFitted
    assert OmegaConf.to_container(OmegaConf.structured(schema)) == {
        "name": "x", "inner": {"keep": 5}, "plain": [1, 2]
    }  # fmt: skip
    built = from_container(_Outer, {"name": "y", "inner": {"keep": 7}})
    assert built == _Outer(name="y", inner=_Inner(keep=7))
    with pytest.raises(ValueError, match=r"inner\.stat is fitted from the training data"):
        from_container(_Outer, {"inner": {"stat": [0.0]}})


FITTED_STATS = {"action_mean", "action_std", "state_mean", "state_std"}


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("train", []), ("train_lewm", []), ("train", ["world_model=vjepa2_vitg"])],
)
def test_composed_train_config_lacks_the_fitted_statistics(name, overrides) -> None:
    from hydra import compose, initialize_config_module

    from world_model.training.apps import typed_config
    from world_model.training.config import register_configs

    register_configs()
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(name, overrides=["data=[a.h5]", *overrides])
    assert not FITTED_STATS & set(cfg.world_model.predictor)
    assert {f.name for f in dataclasses.fields(PredictorConfig)} >= FITTED_STATS
    if "world_model=vjepa2_vitg" in overrides:
        return  # encoder.source=??? must be given
    typed = typed_config(cfg, TrainConfig, "train")
    assert type(typed) is TrainConfig and type(typed.world_model) is WorldModelConfig
    assert type(typed.world_model.predictor) is PredictorConfig
    assert typed.world_model.predictor.action_mean is None  # wm-train fits it


# ----- issue 32: every override names a field, every compose error is one line -----
def _compose(name: str, overrides: list[str]):
    from hydra import compose, initialize_config_module

    from agent.config import register_configs as register_eval
    from envs.collect.config import register_configs as register_collect
    from world_model.training.config import register_configs as register_train

    register_eval(), register_collect(), register_train()
    with initialize_config_module("configs", version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.mark.parametrize(
    ("name", "override", "key"),
    [
        ("eval", "+foo=1", "foo is not a config key"),
        ("eval", "+agent.foo=1", "agent.foo is not a config key"),
        ("eval", "+planner.foo=1", "planner.foo is not a config key"),
        ("collect", "+foo=1", "foo is not a config key"),
        ("collect", "+env.kwargs.control_hz=10.0", "env.kwargs is not a config key"),
        ("train", "+world_model.predictor.action_mean=[0.0]", "action_mean is fitted"),
    ],
)
def test_plus_overrides_naming_no_field_are_refused(name, override, key) -> None:
    """`+key=value` on a structured config once became a stray attribute nothing read:
    wm-eval +agent.foo=1 and wm-collect +env.kwargs.control_hz=10.0 ran with exit 0."""
    from configs.cli import one_line_errors
    from configs.schema import check_known_keys

    cfg = _compose(name, [override])
    with pytest.raises(ValueError, match=key):
        check_known_keys(cfg)
    ran = []
    with pytest.raises(SystemExit) as done:  # every wm-* task goes through this decorator
        one_line_errors("wm-x")(ran.append)(cfg)
    assert done.value.code == 1 and ran == []
    check_known_keys(_compose("eval", ["+env.kwargs.frame_skip=10"]))  # a dict field: any key


def test_hydra_compose_errors_are_one_line_naming_the_key(monkeypatch, capsys) -> None:
    """Hydra printed a wrong-type override in 5-7 lines; each wm-* command prints one."""
    import subprocess
    import sys

    from hydra.errors import ConfigCompositionException

    from configs.cli import one_line_hydra_errors

    for module, command, key in (("agent.eval", "wm-eval", "episodes"),
                                 ("envs.collect", "wm-collect", "num_episodes")):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", module, f"{key}=abc"],
            cwd=CONFIGS.parent, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{command}: error: ")
        assert f"{key}=abc" in done.stderr and f"{key}: Value 'abc'" in done.stderr

    def main() -> None:
        raise ConfigCompositionException("Could not override 'env'.\nTo append use +env=x")

    with pytest.raises(SystemExit):
        one_line_hydra_errors("wm-x")(main)()
    assert capsys.readouterr().err == (
        "wm-x: error: Could not override 'env'. To append use +env=x\n"
    )
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the user's switch: Hydra's behaviour
    with pytest.raises(ConfigCompositionException):
        one_line_hydra_errors("wm-x")(main)()


def test_a_negative_collection_seed_is_refused_by_name() -> None:
    """numpy once refused it in its own words ("expected non-negative integer")."""
    from envs.collect.config import CollectConfig

    with pytest.raises(ValueError, match=r"^seed=-5: must be >= 0"):
        CollectConfig(seed=-5)


def test_hydra_full_error_still_shows_the_traceback(monkeypatch, capsys) -> None:
    from configs.cli import one_line_errors

    @one_line_errors("wm-collect")
    def task(message: str) -> None:
        raise DatasetError(message)

    with pytest.raises(SystemExit) as done:
        task("x.h5: no 'data' group")
    assert done.value.code == 1
    assert capsys.readouterr().err == "wm-collect: error: x.h5: no 'data' group\n"
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # Hydra's switch: the traceback, as before
    with pytest.raises(DatasetError, match="no 'data' group"):
        task("x.h5: no 'data' group")
    with pytest.raises(AttributeError):  # a bug is no named error: its traceback stays
        one_line_errors("wm-eval")(lambda: None.get)()
