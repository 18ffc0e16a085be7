"""Planner configs: YAML mirrors the dataclasses, validation names the bad value, factory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from planners import (
    CEMConfig,
    CEMPlanner,
    MPPIConfig,
    MPPIPlanner,
    make_planner,
    planner_config,
    register_configs,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
register_configs()


@pytest.mark.parametrize("name, cls", [("cem", CEMPlanner), ("mppi", MPPIPlanner)])
def test_hydra_composes_and_overrides(name: str, cls: type) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=[f"+planner={name}", "planner.num_samples=32"])
    planner = make_planner(cfg.planner, [-1.0, 0.0], [1.0, 0.0])  # bounds: the env's
    assert isinstance(planner, cls)
    assert planner.cfg.num_samples == 32


def test_hydra_type_checks_overrides() -> None:
    with (
        initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None),
        pytest.raises(Exception, match="horizon"),
    ):
        compose(overrides=["+planner=cem", "planner.horizon=soon"])


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (CEMConfig, "horizon", 0),
        (CEMConfig, "num_samples", -3),
        (CEMConfig, "iterations", 0),
        (CEMConfig, "num_elites", 500),
        (CEMConfig, "momentum", 1.0),
        (CEMConfig, "momentum", -0.1),
        (CEMConfig, "init_std", 0.0),
        (CEMConfig, "min_std", 2.0),
        (MPPIConfig, "temperature", 0.0),
        (MPPIConfig, "num_elites", 0),
        (MPPIConfig, "noise_decay", 1.5),
        (MPPIConfig, "momentum", 1.0),
    ],
)
def test_validation_names_the_bad_value(cls: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"{field}={value!r}"):
        cls(**{field: value})


@pytest.mark.parametrize(
    "low, high, bad",
    [
        ([-1.0, 0.0], [1.0], "action_low"),
        ([], [], "action_low"),
        ([0.5], [0.2], "action_low"),
        ([float("nan")], [1.0], "action_low"),
        ([0.0], [float("inf")], "action_high"),
    ],
)
def test_bad_bounds_are_named(low: list[float], high: list[float], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        CEMConfig(action_low=low, action_high=high)


def test_factory_rejects_typos_and_unknown_planners() -> None:
    with pytest.raises(ValueError, match="num_sample"):
        make_planner({"name": "cem", "num_sample": 64})
    with pytest.raises(ValueError, match="'icem'"):
        make_planner({"name": "icem"})


def test_factory_bounds_override_copies_the_config() -> None:
    cfg = CEMConfig()
    planner = make_planner(cfg, action_low=[-0.5, 0.0], action_high=[0.5, 0.0])
    assert planner.cfg.action_low == [-0.5, 0.0]
    assert cfg.action_low is None  # the caller's config is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.horizon = 5  # type: ignore[misc]


def test_planner_bounds_come_from_the_env_and_may_only_narrow_them() -> None:
    with pytest.raises(ValueError, match="no action bounds"):
        make_planner(CEMConfig())
    with pytest.raises(ValueError, match="no action bounds"):
        CEMPlanner(CEMConfig())
    narrow = CEMConfig(action_low=[-0.2, 0.0], action_high=[0.2, 0.0])
    assert make_planner(narrow, [-0.5, 0.0], [0.5, 0.0]).cfg.action_high == [0.2, 0.0]
    with pytest.raises(ValueError, match="widen the env's bounds"):
        make_planner(narrow, [-0.1, 0.0], [0.1, 0.0])
    with pytest.raises(ValueError, match="set both bounds"):
        CEMConfig(action_low=[-1.0])


def test_planner_config_accepts_dicts_and_dataclasses() -> None:
    assert planner_config({"name": "mppi", "horizon": 3}) == MPPIConfig(horizon=3)
    cfg = CEMConfig(num_samples=64)
    assert planner_config(cfg) is cfg
    assert planner_config(OmegaConf.structured(cfg)) == cfg
