"""Planner configs: one frozen dataclass per planner, registered in Hydra's ConfigStore.

The defaults live here only: `configs/planner/{cem,mppi}.yaml` extend these schemas and set
nothing the dataclass already says (tests/test_configs.py checks it).
Configs are never mutated: derived values (the elite count) are returned by methods. Where
plans run (device) and their random seed are the caller's, passed to `make_planner`.
They carry no robot's bounds: the agent passes the env's (from the checkpoint's env contract)
to `make_planner(cfg, action_low, action_high)`; a config's own bounds only narrow those.

Default budget (CPU, 2 cores): planning must stay <= 1 s per action, so a few hundred imagined
sequences per action (V-JEPA 2-AC spends 400 x 10 on a GPU; bench/results/planning.md has
the costs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

PROPOSALS = ("none", "centre")


@dataclass(frozen=True)
class PlannerConfig:
    """Fields shared by every sampling planner."""

    name: str = "?"
    """Which planner `make_planner` builds: "cem" or "mppi"."""
    horizon: int = 2
    """Actions per planned sequence (H)."""
    num_samples: int = 128
    """Candidate sequences per environment and iteration (S), including the current mean."""
    iterations: int = 4
    """Sample -> score -> refit rounds per `plan` call; each is one batched cost_fn call."""
    action_low: list[float] | None = None
    """Per-dimension lower bounds (length A). null: the env's (`make_planner` fills them from the
    env contract); set, they must lie inside the env's (a user may narrow, never widen)."""
    action_high: list[float] | None = None
    """Per-dimension upper bounds (length A); `high == low` freezes a dimension (never sampled)."""
    init_std: float = 1.0
    """Initial sampling std as a fraction of each dimension's half-range (V-JEPA 2-AC starts at
    the full bound: std = max-norm for xyz, 1 for the gripper)."""
    min_std: float = 0.05
    """Floor on the sampling std, as a fraction of the half-range (keeps exploring)."""
    select: str = "best"
    """What `plan` returns: "best", the lowest-cost candidate scored in any iteration, or
    "mean", the final sampling mean (CEM / MPPI as published). Why "best": near the goal the
    mean of moving candidates drifts away from a plan the model scored better
    (docs/experiments.md)."""
    compile: bool = False
    """Wrap the cost function with `torch.compile` in mode reduce-overhead (CUDA graphs, as
    TD-MPC2): the GPU path; on a CPU it only adds compile time."""
    proposal: str = "none"
    """Where a learned action proposal (the agent's action head: its plan's mean and std per
    block) enters the search (INTACT, ANCHORS.md): "none", plain search around the warm start
    | "centre", the sampling mean starts at the proposal, which stays candidate 0; with one
    sample and one iteration the plan IS the proposal (`planner=direct`). Why: a broad search
    over a learned model finds the actions it never saw the outcome of (docs/results.md,
    "Actor modes": Direct beat CEM, CEM around the proposal and a head-seeded CEM on cube)."""

    def __post_init__(self) -> None:
        def fail(field_name: str, value: object, why: str) -> None:
            raise ValueError(f"{type(self).__name__}.{field_name}={value!r}: {why}")

        for name in ("horizon", "num_samples", "iterations"):
            if getattr(self, name) < 1:
                fail(name, getattr(self, name), "must be >= 1")
        if (self.action_low is None) != (self.action_high is None):
            fail("action_low", self.action_low, f"set both bounds or neither ({self.action_high=})")
        if self.action_low is None:  # the env's, filled in by make_planner
            low, high = [0.0], [0.0]
        else:
            low, high = list(self.action_low), list(self.action_high)
        if not low or len(low) != len(high):
            fail("action_low", low, f"needs the same non-zero length as action_high={high}")
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if not math.isfinite(lo):
                fail("action_low", low, f"dimension {i} is not a finite number")
            if not math.isfinite(hi):
                fail("action_high", high, f"dimension {i} is not a finite number")
            if lo > hi:
                fail("action_low", low, f"dimension {i}: low {lo} > high {hi}")
        if not self.init_std > 0:
            fail("init_std", self.init_std, "must be > 0")
        if not 0 <= self.min_std <= self.init_std:
            fail("min_std", self.min_std, f"must be in [0, init_std={self.init_std}]")
        if self.select not in ("mean", "best"):
            fail("select", self.select, 'must be "mean" or "best"')
        if self.proposal not in PROPOSALS:
            fail("proposal", self.proposal, f"must be one of {PROPOSALS}")

    def elite_count(self) -> int:
        """Candidates kept per environment for the refit (K)."""
        return self.num_samples


@dataclass(frozen=True)
class CEMConfig(PlannerConfig):
    """Cross-entropy method (V-JEPA 2-AC style)."""

    name: str = "cem"
    horizon: int = 1
    """One-step horizon, as in the V-JEPA 2-AC paper: at the same cost, more samples over one
    step beat fewer over two for the frozen-encoder models (docs/experiments.md). Checkpoints
    trained to roll out several blocks (lewm) recommend their own horizon."""
    num_samples: int = 256
    """Candidates per env and iteration; 256 x 1 step costs about what 128 x 2 steps does."""
    num_elites: int = 16
    """Top-k candidates refit per iteration (V-JEPA 2-AC: 10 of 400; TD-MPC2: 64 of 512)."""
    momentum: float = 0.1
    """Weight m of the previous distribution in mu <- m * mu + (1 - m) * mean(elites) and
    sigma <- m * sigma + (1 - m) * std(elites)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name != "cem":
            raise ValueError(f"CEMConfig.name={self.name!r}: must be 'cem'")
        if not 1 <= self.num_elites <= self.num_samples:
            raise ValueError(
                f"CEMConfig.num_elites={self.num_elites!r}: must be in [1, num_samples="
                f"{self.num_samples}]"
            )
        if not 0 <= self.momentum < 1:
            raise ValueError(f"CEMConfig.momentum={self.momentum!r}: must be in [0, 1)")

    def elite_count(self) -> int:
        return self.num_elites


@dataclass(frozen=True)
class MPPIConfig(PlannerConfig):
    """Model predictive path integral control (Williams et al. 2017; TD-MPC2's iterated form)."""

    name: str = "mppi"
    temperature: float = 0.1
    """lambda in w ~ exp(-(c - c_min) / lambda); relative to the elite cost spread when
    `normalize_costs` (0.1: the worst elite weighs e^-10 of the best)."""
    normalize_costs: bool = True
    """Divide costs by the spread of the finite elite costs, making `temperature` scale-free."""
    num_elites: int | None = None
    """Optional top-k restriction of the weighted update (TD-MPC2: 64 of 512); None: all."""
    noise_decay: float = 0.5
    """Noise schedule: sigma_i = max(init_std * noise_decay^i, min_std) * half-range."""
    momentum: float = 0.0
    """Weight of the previous mean in mu <- m * mu + (1 - m) * sum_i w_i a_i."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name != "mppi":
            raise ValueError(f"MPPIConfig.name={self.name!r}: must be 'mppi'")
        if not self.temperature > 0:
            raise ValueError(f"MPPIConfig.temperature={self.temperature!r}: must be > 0")
        if self.num_elites is not None and not 1 <= self.num_elites <= self.num_samples:
            raise ValueError(
                f"MPPIConfig.num_elites={self.num_elites!r}: must be None or in [1, "
                f"num_samples={self.num_samples}]"
            )
        if not 0 < self.noise_decay <= 1:
            raise ValueError(f"MPPIConfig.noise_decay={self.noise_decay!r}: must be in (0, 1]")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"MPPIConfig.momentum={self.momentum!r}: must be in [0, 1)")

    def elite_count(self) -> int:
        return self.num_samples if self.num_elites is None else self.num_elites


CONFIGS: dict[str, type[PlannerConfig]] = {"cem": CEMConfig, "mppi": MPPIConfig}


def register_configs() -> None:
    """Store the schemas configs/planner/<name>.yaml extend (`defaults: [<name>_schema]`).

    Hydra's recommended pattern: overrides like planner.horizon=3 are type-checked at compose
    time. The node is left writable so command-line overrides merge; the dataclass itself
    stays frozen. Idempotent.
    """
    store = ConfigStore.instance()
    for name, cls in CONFIGS.items():
        node = OmegaConf.structured(cls)
        OmegaConf.set_readonly(node, False)
        store.store(group="planner", name=f"{name}_schema", node=node)
