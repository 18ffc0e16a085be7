"""Sampling planners (CEM, MPPI) behind one `Planner` protocol; see docs/architecture.md.

`import planners` registers the configs in Hydra's ConfigStore (group "planner").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from planners.base import ActionBounds, CostFn, Planner, SamplingPlanner, sanitize_costs
from planners.cem import CEMPlanner
from planners.config import CONFIGS, CEMConfig, MPPIConfig, PlannerConfig
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
    "SamplingPlanner",
    "make_planner",
    "planner_config",
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
) -> Planner:
    """Build the planner named by `cfg.name`; optional bounds override the config's (copied).

    Typical agent use: `make_planner(cfg.planner, env.action_space.low, env.action_space.high)`.
    """
    config = planner_config(cfg)
    overrides = {
        key: [float(v) for v in value]
        for key, value in (("action_low", action_low), ("action_high", action_high))
        if value is not None
    }
    if overrides:
        config = dataclasses.replace(config, **overrides)
    if isinstance(config, CEMConfig):
        return CEMPlanner(config)
    if isinstance(config, MPPIConfig):
        return MPPIPlanner(config)
    raise ValueError(f"no planner for config type {type(config).__name__}")
