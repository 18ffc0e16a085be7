"""Sampling planners (CEM, MPPI) behind one `Planner` protocol; see docs/architecture.md.

`register_configs()` stores the configs' schemas in Hydra's ConfigStore (group "planner").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from planners.base import (
    ActionBounds,
    CostFn,
    Planner,
    Proposal,
    SamplingPlanner,
    sanitize_costs,
)
from planners.cem import CEMPlanner
from planners.config import CONFIGS, CEMConfig, MPPIConfig, PlannerConfig, register_configs
from planners.mppi import MPPIPlanner

__all__ = [
    "ActionBounds",
    "CEMConfig",
    "CEMPlanner",
    "CostFn",
    "MPPIConfig",
    "MPPIPlanner",
    "Planner",
    "PlannerConfig",
    "Proposal",
    "SamplingPlanner",
    "check_inside",
    "make_planner",
    "planner_config",
    "register_configs",
    "sanitize_costs",
]


def planner_config(cfg: PlannerConfig | Mapping[str, Any]) -> PlannerConfig:
    """Typed, validated config from a dataclass, a dict or an OmegaConf DictConfig.

    Dispatches on `name`; unknown keys raise (a typo must not silently fall back to a default).
    """
    if isinstance(cfg, PlannerConfig):
        return cfg
    try:  # DictConfig from Hydra: resolve interpolations into plain containers
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - hydra-core is a hard dependency
        pass
    values = dict(cfg)
    name = values.get("name")
    if name not in CONFIGS:
        raise ValueError(f"planner name={name!r}: expected one of {sorted(CONFIGS)}")
    cls = CONFIGS[name]
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} fields {unknown}; check configs/planner/{name}.yaml"
        )
    return cls(**values)


def make_planner(
    cfg: PlannerConfig | Mapping[str, Any],
    action_low: Sequence[float] | None = None,
    action_high: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Planner:
    """Build the planner named by `cfg.name`, bounded by the env's action box, sampling on
    `device` (the cost function's) from generators seeded `seed + e` per environment e.

    Typical agent use: `make_planner(cfg.planner, contract.action_low, contract.action_high)`.
    Bounds set in `cfg` narrow the given ones (and must lie inside them); without given bounds
    the config must carry its own.
    """
    config = planner_config(cfg)
    if action_low is not None and action_high is not None:
        low, high = [float(v) for v in action_low], [float(v) for v in action_high]
        if config.action_low is None:
            config = dataclasses.replace(config, action_low=low, action_high=high)
        else:
            check_inside(config.action_low, config.action_high, low, high)
    elif config.action_low is None:
        raise ValueError(
            f"{type(config).__name__} has no action bounds: pass the env's, "
            "make_planner(cfg, env.action_space.low, env.action_space.high)"
        )
    if isinstance(config, CEMConfig):
        return CEMPlanner(config, device, seed)
    if isinstance(config, MPPIConfig):
        return MPPIPlanner(config, device, seed)
    raise ValueError(f"no planner for config type {type(config).__name__}")


def check_inside(
    low: Sequence[float],
    high: Sequence[float],
    outer_low: Sequence[float],
    outer_high: Sequence[float],
) -> None:
    """Raise ValueError unless the box [low, high] lies inside [outer_low, outer_high]."""
    tol = 1e-6  # env bounds arrive as float32 (0.075 -> 0.07500000298)
    inside = len(low) == len(outer_low) and all(
        lo >= olo - tol and hi <= ohi + tol
        for lo, hi, olo, ohi in zip(low, high, outer_low, outer_high, strict=True)
    )
    if not inside:
        raise ValueError(
            f"planner.action_low={list(low)} / action_high={list(high)} widen the env's bounds "
            f"{list(outer_low)} / {list(outer_high)}: planner bounds may only narrow them"
        )
