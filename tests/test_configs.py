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
from planners.config import CEMConfig, MPPIConfig
from world_model.config import WorldModelConfig
from world_model.training.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SCHEMAS: dict[str, type] = {
    "eval.yaml": EvalConfig,
    "demo.yaml": EvalConfig,
    "train.yaml": TrainConfig,
    "train_lewm.yaml": TrainConfig,
    "planner/cem.yaml": CEMConfig,
    "planner/mppi.yaml": MPPIConfig,
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
