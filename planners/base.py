"""The `Planner` protocol and the sample -> score -> elites -> refit skeleton CEM and MPPI share.

A planner minimises a batched cost function over action sequences; it knows nothing about the
world model, MuJoCo or ROS (docs/architecture.md). Shapes used throughout:

    E  environments planned for in one call     S  candidate sequences per environment
    H  planning horizon (actions per sequence)   A  action dimensions
    K  elites per environment
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from planners.config import PlannerConfig

CostFn = Callable[[Tensor], Tensor]
"""Maps candidates `(E, S, H, A)` to costs `(E, S)`; lower is better, NaN/inf allowed."""

Proposal = tuple[Tensor, Tensor]
"""A learned proposal's mean and std, each `(E, H, A)` (the agent's action head rolled through
the model); `PlannerConfig.proposal` says how the search uses it."""


@runtime_checkable
class Planner(Protocol):
    """What `agent/` codes against (docs/architecture.md, planners section)."""

    last_cost: Tensor | None
    """`(E,)` best candidate cost of the last `plan` call's final iteration (+inf for an env
    whose costs were all non-finite); None before the first plan. The agent reports it as the
    plan's energy instead of paying for one more rollout."""

    def plan(self, cost_fn: CostFn, num_envs: int = 1, proposal: Proposal | None = None) -> Tensor:
        """Return action sequences `(E, H, A)`, always inside the configured bounds;
        `proposal` is required when the config's `proposal` is not "none"."""
        ...

    def shift(self, steps: int) -> None:
        """Warm start: drop the `steps` actions just executed from the stored plan."""
        ...

    def reset(self) -> None:
        """Forget the warm start (new episode)."""
        ...


def sanitize_costs(costs: Tensor, num_envs: int, num_samples: int) -> Tensor:
    """Check the shape and map every non-finite cost (NaN, +inf, -inf) to +inf.

    -inf becomes +inf too: a cost of -inf is a broken predictor, not a perfect candidate.
    Costs are ranked in at least float32 so a bf16 predictor cannot tie every candidate.
    A numpy array is accepted (`plan` moves the costs to the planner's device);
    anything else is refused with the type it was.
    """
    if isinstance(costs, np.ndarray):
        costs = torch.from_numpy(np.ascontiguousarray(costs))
    if not isinstance(costs, Tensor):
        raise TypeError(
            f"cost_fn must return a torch.Tensor (or numpy array) of shape (E, S), got "
            f"{type(costs).__name__}"
        )
    if costs.shape != (num_envs, num_samples):
        raise ValueError(
            f"cost_fn returned shape {tuple(costs.shape)}, expected (E, S) = "
            f"({num_envs}, {num_samples}) for candidates (E, S, H, A)"
        )
    costs = costs.detach().to(torch.promote_types(costs.dtype, torch.float32))
    return torch.where(torch.isfinite(costs), costs, torch.full_like(costs, float("inf")))


class ActionBounds:
    """Per-dimension box bounds.

    Dimensions with `low == high` (e.g. frozen rotation) have zero range: their sampling std is
    zero, so they are never sampled and always sit at `low`.
    """

    def __init__(self, low: Tensor, high: Tensor) -> None:
        self.low, self.high = low, high  # (A,)
        self.half_range = (high - low) / 2  # (A,) zero on frozen dims

    def project(self, actions: Tensor) -> Tensor:
        """Clip into the box `(..., A)`."""
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    def hold_still(self, num_envs: int, horizon: int) -> Tensor:
        """Zero action clipped into the bounds `(E, H, A)`: the safe plan when nothing is known."""
        shape = (num_envs, horizon, self.low.numel())
        return self.project(torch.zeros(shape, dtype=self.low.dtype, device=self.low.device))


def bounds_in_dtype(
    low: list[float], high: list[float], dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Bounds `(A,)` in the planning dtype, rounded inwards where the dtype cannot hold them.

    bf16 turns 0.075 into 0.0752: rounding to nearest would let plans leave the configured box.
    Frozen dims (low == high) round to nearest instead, so they stay a single point.
    """
    low64 = torch.tensor(low, dtype=torch.float64)
    high64 = torch.tensor(high, dtype=torch.float64)
    low_t, high_t = low64.to(dtype), high64.to(dtype)
    free = low64 < high64
    up, down = torch.full_like(low_t, float("inf")), torch.full_like(high_t, float("-inf"))
    low_t = torch.where(free & (low_t.double() < low64), torch.nextafter(low_t, up), low_t)
    high_t = torch.where(free & (high_t.double() > high64), torch.nextafter(high_t, down), high_t)
    high_t = torch.maximum(high_t, low_t)  # a range narrower than one ulp collapses to a point
    return low_t.to(device), high_t.to(device)


class SamplingPlanner:
    """Shared skeleton: subclasses define `_refit` (and optionally `_sample_std`).

    Randomness: environment `e` draws from its own generator seeded `seed + e`, so a batched
    call gives environment `e` exactly the candidates a single-environment planner seeded
    `seed + e` would see (one `randn` per env; the predictor is still called once). Actions are
    sampled in float32 on `device`, which must be the cost function's.
    """

    def __init__(self, cfg: PlannerConfig, device: str | torch.device = "cpu", seed: int = 0):
        self.cfg = cfg
        self.device = torch.device(device)
        self.seed = seed
        self.dtype = torch.float32
        if cfg.action_low is None or cfg.action_high is None:
            raise ValueError(
                f"{type(cfg).__name__} has no action bounds: build planners with make_planner(cfg,"
                " low, high) so the env's bounds apply, or set action_low/action_high"
            )
        low, high = bounds_in_dtype(cfg.action_low, cfg.action_high, self.dtype, self.device)
        self.bounds = ActionBounds(low, high)
        self.action_dim = low.numel()
        self.num_elites = cfg.elite_count()
        self.last_cost: Tensor | None = None  # (E,) best cost in the final iteration
        self._compiled: tuple[CostFn, CostFn] | None = None
        self.reset()

    # -- Planner protocol ---------------------------------------------------------------------

    def reset(self) -> None:
        self._mean: Tensor | None = None  # (E, H, A) previous plan, for warm start
        self._generators: list[torch.Generator] = []

    def shift(self, steps: int) -> None:
        """Drop the first `steps` actions of the previous plan; pad the tail with the hold-still
        action (zero clipped into the bounds)."""
        if steps < 0:
            raise ValueError(f"shift steps must be >= 0, got {steps}")
        if self._mean is None or steps == 0:
            return
        horizon = self._mean.shape[1]
        steps = min(steps, horizon)
        kept = self._mean[:, steps:]  # (E, H - steps, A)
        pad = self.bounds.hold_still(self._mean.shape[0], steps)  # (E, steps, A)
        self._mean = torch.cat([kept, pad], dim=1)

    @torch.no_grad()  # derivative-free: never build an autograd graph through the predictor
    def plan(self, cost_fn: CostFn, num_envs: int = 1, proposal: Proposal | None = None) -> Tensor:
        """Minimise `cost_fn` over `(E, H, A)` action sequences; one cost_fn call per iteration.

        Returns the plan `(E, H, A)` `select` names, inside the bounds (hold still for an env whose costs
        were all non-finite) and stores it for `shift`. `last_cost` `(E,)` is the best candidate
        cost of the final iteration (+inf when none was finite).
        """
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        cfg, num_samples, horizon = self.cfg, self.cfg.num_samples, self.cfg.horizon
        cost_fn = self._maybe_compile(cost_fn)
        generators = self._env_generators(num_envs)
        proposal = self._check_proposal(proposal, num_envs)
        mean = self._initial_mean(num_envs)  # (E, H, A)
        if cfg.proposal == "centre":  # Direct (and CEM around it): start at the proposal
            mean = self.bounds.project(proposal[0])
        std = self._sample_std(0).expand(num_envs, horizon, -1)  # (E, H, A), reset every plan
        seen_finite = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        best = torch.full((num_envs,), float("inf"), device=self.device)
        hold = self.bounds.hold_still(num_envs, horizon)  # (E, H, A)
        # select="best": the lowest-cost candidate scored so far, per env
        best_seen = torch.full((num_envs,), float("inf"), device=self.device)
        best_plan = hold.clone()

        for it in range(cfg.iterations):
            # 1. Sample around the mean; candidate 0 is the mean itself (never lose the incumbent).
            noise = torch.stack(
                [
                    torch.randn(
                        num_samples,
                        horizon,
                        self.action_dim,
                        generator=g,
                        device=self.device,
                        dtype=self.dtype,
                    )
                    for g in generators
                ]
            )  # (E, S, H, A)
            noise[:, 0] = 0.0
            samples = self.bounds.project(mean.unsqueeze(1) + std.unsqueeze(1) * noise)

            # 2. Score every env's candidates in one batched call.
            costs = sanitize_costs(cost_fn(samples), num_envs, num_samples)  # (E, S)
            costs = costs.to(self.device)
            has_finite = torch.isfinite(costs).any(dim=1)  # (E,)
            seen_finite |= has_finite

            # 3. Elites: the K lowest costs per env (+inf ones are masked out in the refit).
            elite_costs, elite_idx = torch.topk(costs, self.num_elites, dim=1, largest=False)
            index = elite_idx[:, :, None, None].expand(-1, -1, horizon, self.action_dim)
            elites = torch.gather(samples, 1, index)  # (E, K, H, A)
            best = elite_costs[:, 0]
            if cfg.select == "best":
                better = best < best_seen  # False for +inf; sanitize_costs leaves no NaN
                best_plan = torch.where(better[:, None, None], elites[:, 0], best_plan)
                best_seen = torch.where(better, best, best_seen)

            # 4. Refit the sampling distribution; an env with no finite cost keeps its old one.
            new_mean, new_std = self._refit(elites, elite_costs, mean, std, it)
            keep = has_finite[:, None, None]
            mean = torch.where(keep, new_mean, mean)
            std = torch.where(keep, new_std, std)

        plan = self.bounds.project(best_plan if cfg.select == "best" else mean)
        # Every cost of an env was non-finite: we know nothing, so hold still.
        plan = torch.where(seen_finite[:, None, None], plan, hold)
        self._mean = plan.clone()
        self.last_cost = best
        return plan

    def _check_proposal(self, proposal: Proposal | None, num_envs: int) -> Proposal | None:
        """The proposal on the planner's device and dtype, checked against the config: a
        non-finite proposal (a broken head) is refused like any other model output."""
        kind = self.cfg.proposal
        if kind == "none":
            return None
        if proposal is None:
            raise ValueError(
                f"planner.proposal={kind!r} needs a learned proposal (an action head); none given"
            )
        shape = (num_envs, self.cfg.horizon, self.action_dim)
        mean, std = (t.to(self.device, self.dtype) for t in proposal)
        if mean.shape != shape or std.shape != shape:
            raise ValueError(
                f"proposal mean {tuple(mean.shape)} / std {tuple(std.shape)}: expected {shape}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("the action head proposed non-finite actions (NaN/inf weights?)")
        return mean, std.clamp_min(0.0)

    # -- hooks --------------------------------------------------------------------------------

    def _sample_std(self, iteration: int) -> Tensor:
        """Sampling std `(A,)` at `iteration`: `init_std` times the half-range (0 on frozen dims)."""
        return self.cfg.init_std * self.bounds.half_range

    def _refit(
        self, elites: Tensor, elite_costs: Tensor, mean: Tensor, std: Tensor, iteration: int
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    def _min_std(self) -> Tensor:
        return self.cfg.min_std * self.bounds.half_range  # (A,)

    def _initial_mean(self, num_envs: int) -> Tensor:
        """Warm start from the shifted previous plan when it matches, else hold still."""
        horizon = self.cfg.horizon
        if self._mean is not None and self._mean.shape[:2] == (num_envs, horizon):
            return self.bounds.project(self._mean)
        return self.bounds.hold_still(num_envs, horizon)

    def _env_generators(self, num_envs: int) -> list[torch.Generator]:
        if len(self._generators) != num_envs:
            self._generators = [
                torch.Generator(device=self.device).manual_seed(self.seed + e)
                for e in range(num_envs)
            ]
        return self._generators

    def _maybe_compile(self, cost_fn: CostFn) -> CostFn:
        """`torch.compile` the cost function only when asked (CUDA graphs via reduce-overhead)."""
        if not self.cfg.compile:
            return cost_fn
        if self._compiled is None or self._compiled[0] is not cost_fn:
            self._compiled = (cost_fn, torch.compile(cost_fn, mode="reduce-overhead"))
        return self._compiled[1]


def elite_mask(elite_costs: Tensor) -> Tensor:
    """1 for finite elite costs, 0 for +inf ones `(E, K)`, in the costs' dtype."""
    return torch.isfinite(elite_costs).to(elite_costs.dtype)
