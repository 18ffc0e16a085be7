"""Model-predictive control on a latent world model: encode, imagine, plan, act, replan.

The same `MPCAgent` runs inside `wm-eval`, `wm-demo` and the ROS 2 policy node, so it takes
plain numpy observations and returns plain numpy actions; torch stays inside.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agent.blocks import action_block, blocks_to_execute, unblock
from agent.config import AgentConfig
from envs.common.contract import EnvContract
from planners.base import Planner, Proposal

if TYPE_CHECKING:
    from world_model import WorldModel


@dataclass
class AgentStats:
    """What the last `act` call cost and saw; read by eval, the demo and the ROS status topic."""

    plan_ms: float = float("nan")
    energy: float = float("nan")
    replanned: bool = False
    error: str = ""
    """Non-empty while the current plan is a fallback (every candidate's energy non-finite:
    a broken world model); the action is then the safe hold-still command."""
    errors: int = 0
    """Control steps so far that acted on such a fallback plan."""
    plan_ms_history: list[float] = field(default_factory=list)
    energy_history: list[float] = field(default_factory=list)
    imagined: list[float] = field(default_factory=list)
    """Energy after each imagined block of the latest plan (when the agent traces plans)."""


NON_FINITE_PROPOSAL = (
    "the action head proposed non-finite actions (NaN/inf weights or latents?); searching from "
    "the hold-still plan instead"
)
NON_FINITE_ENERGY = (
    "the world model gave a non-finite energy for every candidate plan (NaN/inf latents?); "
    "holding still"
)


def clip_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Last line of defence: a non-finite component becomes 0 (hold still), then clip."""
    action = np.nan_to_num(np.asarray(action, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(action, low, high)


class BaseAgent:
    """Shared bookkeeping for every agent (learned MPC and the baselines); every agent
    satisfies `agent.policy.Policy`."""

    action_block = 1
    """Control steps per planned block; planning agents set theirs."""
    trace_imagined = False
    """Record each plan's imagined energies (videos); only the learned agent has them."""

    def __init__(self, action_low: np.ndarray, action_high: np.ndarray) -> None:
        self.action_low = np.asarray(action_low, dtype=np.float64)
        self.action_high = np.asarray(action_high, dtype=np.float64)
        if self.action_low.shape != self.action_high.shape or np.any(
            self.action_low > self.action_high
        ):
            raise ValueError(f"bad action bounds: low={self.action_low}, high={self.action_high}")
        self.stats = AgentStats()

    def reset(self) -> None:
        self.stats = AgentStats()

    def observe_privileged(self, info: dict[str, Any]) -> None:
        """The env's ``info`` after reset and every step: simulator truth no learned agent may
        use. Ignored here; only the scripted expert (`agent.baselines.PolicyAgent`) reads it."""
        del info

    def _record(self, plan_ms: float, energy: float, replanned: bool, error: str = "") -> None:
        self.stats.plan_ms, self.stats.energy, self.stats.replanned = plan_ms, energy, replanned
        self.stats.error = error
        self.stats.errors += bool(error)
        if replanned:
            self.stats.plan_ms_history.append(plan_ms)
        self.stats.energy_history.append(energy)


class PlanningAgent(BaseAgent):
    """Receding-horizon loop over any batched cost: plan, execute some blocks, shift, replan.

    The planner plans `H` blocks of `action_block` control steps each, `(H, k * A)`; the agent
    executes the whole blocks covering `execute_steps` control steps, then shifts the warm
    start by those blocks (agent/blocks.py). k = 1 is one action per planned step.
    """

    def __init__(
        self,
        planner: Planner,
        action_low: np.ndarray,
        action_high: np.ndarray,
        execute_steps: int = 1,
        action_block: int = 1,
    ) -> None:
        super().__init__(action_low, action_high)
        self.planner = planner
        self.execute_steps = execute_steps
        self.action_block = action_block
        self._queue: deque[np.ndarray] = deque()
        self._queued_energy = float("nan")
        self._queued_error = ""
        self.last_plan: np.ndarray | None = None  # (H, k * A) the latest plan, for plots

    def reset(self) -> None:
        super().reset()
        self.planner.reset()
        self._queue.clear()

    def cost_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Batched cost of candidate plans `(E, S, H, A) -> (E, S)` from the current state."""
        raise NotImplementedError

    def stay_energy(self) -> float | None:
        """Cost of staying where the agent is, on the planner's scale, without a model (the
        world keeps still when the robot does); None: never compared."""
        return None

    _proposal_error = ""

    def proposal(self) -> Proposal | None:
        """A learned proposal `(mean, std)`, each `(1, H, k * A)`, for planners that use one
        (`planner.proposal`); None for the others."""
        return None

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One control step: (H, W, 3) uint8 image and (7,) state -> (7,) clipped action."""
        replanned = not self._queue
        plan_ms = 0.0
        if replanned:
            t0 = time.perf_counter()
            proposal = self.proposal()
            plan = self.planner.plan(self.cost_function(), 1, proposal)[0]  # [H, k * A]
            # The planner already scored its candidates: report its best energy instead of
            # paying for one more rollout of the returned mean.
            best = self.planner.last_cost  # (E,)
            self._queued_energy = float(best[0]) if best is not None else float("nan")
            # The planner maps NaN costs to +inf: a non-finite best means none was finite.
            broken = best is not None and not np.isfinite(self._queued_energy)
            self._queued_error = NON_FINITE_ENERGY if broken else self._proposal_error
            plan_np = plan.detach().cpu().numpy()
            stay = self.stay_energy()
            if stay is not None and not broken and stay <= self._queued_energy:
                # Where it stands already scores no worse than any plan: stay put. Zero is
                # "hold" for position-delta arms (the Panda tasks), not for torque control;
                # clip_action below keeps it inside the bounds.
                plan_np = np.zeros_like(plan_np)
                self._queued_energy = stay
            self.last_plan = plan_np
            blocks = min(blocks_to_execute(self.execute_steps, self.action_block), len(plan_np))
            self._queue.extend(unblock(plan_np[:blocks], self.action_low.size))  # [blocks*k, A]
            self.planner.shift(blocks)
            plan_ms = (time.perf_counter() - t0) * 1e3
        action = clip_action(self._queue.popleft(), self.action_low, self.action_high)
        self._record(plan_ms, self._queued_energy, replanned, self._queued_error)
        return action.astype(np.float32)


class MPCAgent(PlanningAgent):
    """Plans in the latent space of a `WorldModel` towards the latent of a goal image."""

    def __init__(
        self,
        world_model: WorldModel,
        planner: Planner,
        action_low: np.ndarray,
        action_high: np.ndarray,
        cfg: AgentConfig | None = None,
        reachability: torch.nn.Module | None = None,
        actor: torch.nn.Module | None = None,
    ) -> None:
        cfg = cfg or AgentConfig()
        proposal = getattr(planner.cfg, "proposal", "none")
        if proposal != "none" and actor is None:
            raise ValueError(
                f"planner.proposal={proposal!r} (planner=direct) needs an "
                "action head in the checkpoint; add one: python -m world_model.heads.actor "
                "checkpoint=<dir> data=[<its training .h5>]"
            )
        self.actor = actor
        if cfg.reachability_weight > 0 and reachability is None:
            raise ValueError(
                f"reachability_weight={cfg.reachability_weight} but no reachability head: train "
                "one into the checkpoint (python -m world_model.heads.reachability)"
            )
        self.reachability = reachability
        # Videos: also imagine the chosen plan once more per plan, for its energy per block.
        self.trace_imagined = False
        super().__init__(
            planner, action_low, action_high, cfg.execute_steps, action_block(world_model)
        )
        self.cfg = cfg
        self.world_model = world_model.eval()
        self.device = world_model.device
        self.image_size = world_model.crop_size  # callers may pre-resize images to it
        self._goals: list[torch.Tensor] = []  # each [1, N, D]
        self._steps = 0
        self._history: deque[tuple[torch.Tensor, np.ndarray, np.ndarray | None]] = deque(
            maxlen=int(getattr(world_model, "history", 1))  # the context it was trained with
        )
        # Control actions executed since the last context frame: one block once k are in.
        self._pending: list[np.ndarray] = []

    @property
    def contract(self) -> EnvContract | None:
        """The env the world model was trained on (rate, bounds, workspace); see
        envs/common/contract.py."""
        return self.world_model.env_contract

    # --- goals -------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, pixels: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> latent [N, D] through the world model's one encode path."""
        frames = torch.as_tensor(np.ascontiguousarray(pixels), device=self.device)
        frames = frames.permute(2, 0, 1)[None, None]  # [1, 1, 3, H, W]
        return self.world_model.encode(frames)[0, 0]  # [N, D]

    def set_goal(self, goal: np.ndarray | Sequence[np.ndarray]) -> None:
        """A goal image, or a list of sub-goal images held for `cfg.subgoal_hold_steps`."""
        images = goal_images(goal)
        if not images:
            raise ValueError("set_goal needs at least one image")
        if len(images) > 1 and len(self.cfg.subgoal_hold_steps) < len(images) - 1:
            raise ValueError(
                f"{len(images)} sub-goals need at least {len(images) - 1} subgoal_hold_steps, "
                f"got {self.cfg.subgoal_hold_steps}"
            )
        self._goals = [self.encode_image(g)[None] for g in images]
        self._steps = 0
        self._queue.clear()
        self.planner.reset()

    def _current_goal(self) -> torch.Tensor:
        if not self._goals:
            raise RuntimeError("call set_goal(goal_image) before act()")
        ends = np.cumsum(self.cfg.subgoal_hold_steps)
        idx = int(np.searchsorted(ends, self._steps, side="right"))
        return self._goals[min(idx, len(self._goals) - 1)]

    def reset(self) -> None:
        super().reset()
        self._history.clear()
        self._pending = []
        self._steps = 0

    # --- planning ----------------------------------------------------------------------
    def observe(self, pixels: np.ndarray, state: np.ndarray) -> None:
        """Add an observation to the predictor's context (the block that led here included).

        Context frames are one block (k control steps) apart, as in training; the block is
        the k actions executed since the previous context frame, concatenated `(k * A,)`.
        """
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (7,) or not np.all(np.isfinite(state)):
            raise ValueError(f"state must be 7 finite floats, got {state}")
        full_block = len(self._pending) == self.action_block
        prev_action = np.concatenate(self._pending) if self._history and full_block else None
        if self._history and not full_block:
            self._history.clear()  # a partial block breaks the context's spacing: start over
        self._pending = []
        self._history.append((self.encode_image(pixels), state, prev_action))

    def cost_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Batched energy of candidate plans (E, S, H, A) -> (E, S) from the current context."""
        return self._energy_fn(per_step=False)

    def imagined_energy(self, plan: np.ndarray) -> np.ndarray:
        """Energy after each imagined block `(H,)` of one plan `(H, k * A)` from the current
        context: why the plan was chosen (videos and the energy plot draw it)."""
        actions = torch.as_tensor(plan, dtype=torch.float32)[None, None]  # [1, 1, H, k * A]
        return self._energy_fn(per_step=True)(actions)[0, 0].cpu().numpy()

    def _context(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The predictor's context: latents `(1, Tc, N, D)`, states `(1, Tc, 7)` and the blocks
        between them `(1, Tc - 1, k * 7)` (None for one frame)."""
        z_ctx = torch.stack([h[0] for h in self._history])[None]  # [1, Tc, N, D]
        states = np.stack([h[1] for h in self._history])
        s_ctx = torch.as_tensor(states, dtype=torch.float32, device=self.device)[None]  # [1, Tc, 7]
        past = [h[2] for h in list(self._history)[1:]]
        past_actions = (
            torch.as_tensor(np.stack(past), dtype=torch.float32, device=self.device)[None]
            if past
            else None
        )  # [1, Tc-1, k * 7]
        return z_ctx, s_ctx, past_actions

    def _energy_fn(self, per_step: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """(E, S, H, k * A) -> (E, S) energies at the plan's end, or (E, S, H) per step."""
        if not self._history:
            raise RuntimeError("observe() an image before planning")
        goal = self._current_goal()  # [1, N, D]
        z_ctx, s_ctx, past_actions = self._context()
        wm, cfg = self.world_model, self.cfg

        @torch.no_grad()
        def cost_fn(actions: torch.Tensor) -> torch.Tensor:
            actions = actions.to(self.device, torch.float32)  # [E, S, H, k * A]
            with self.autocast():
                z = wm.rollout(z_ctx, s_ctx, actions, past_actions).float()  # [E, S, H, N, D]
            if per_step:
                return self.plan_energy(z, goal)  # [E, S, H]
            if cfg.energy_reduce == "last":
                z = z[:, :, -1:]  # [E, S, 1, N, D]: only the end is scored
            return self.plan_energy(z, goal)[..., -1]  # [E, S]

        return cost_fn

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast around imagined rollouts when `agent.bf16` (float32 otherwise)."""
        if self.cfg.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def proposal(self) -> Proposal | None:
        """The action head's plan `(mean, std)`, each `(1, H, k * A)`: block h is proposed from
        the latent the predictor imagines after blocks 0..h-1, towards the goal (INTACT's goal
        intent `z_goal - z`). One sequence, H head and predictor calls: cheap beside a search."""
        self._proposal_error = ""
        if getattr(self.planner.cfg, "proposal", "none") == "none":
            return None
        horizon, head = self.planner.cfg.horizon, self.actor
        goal = self._current_goal()  # [1, N, D]
        z_ctx, s_ctx, past = self._context()
        z = z_ctx[:, -1]  # [1, N, D]
        prev_np = self._history[-1][2]
        prev = (
            torch.zeros(1, head.block_dim, device=self.device)
            if prev_np is None
            else torch.as_tensor(prev_np, dtype=torch.float32, device=self.device)[None]
        )  # [1, k * A]
        means, stds = [], []
        for h in range(horizon):
            mean, std = head(z, goal - z, prev)  # [1, k * A] each
            means.append(mean)
            stds.append(std)
            if h + 1 < horizon:
                actions = torch.stack(means, dim=1)[:, None]  # [1, 1, h + 1, k * A]
                with self.autocast():
                    z = self.world_model.rollout(z_ctx, s_ctx, actions, past)[:, 0, -1].float()
                prev = mean
        mean, std = torch.stack(means, dim=1), torch.stack(stds, dim=1)  # [1, H, k * A]
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            self._proposal_error = NON_FINITE_PROPOSAL
            return torch.zeros_like(mean), torch.zeros_like(std)
        return mean, std

    @torch.no_grad()
    def stay_energy(self) -> float | None:
        """With `agent.stay_if_better`: the energy of the observed latent held for the whole
        horizon, i.e. of the hold-still plan if the model predicted it exactly. Why: near the
        goal a model that drifts under zero action scores every plan, staying included, worse
        than standing still, so the agent would leave goals it has reached."""
        if not self.cfg.stay_if_better or not self._history:
            return None
        goal = self._current_goal()  # [1, N, D]
        z_now = self._history[-1][0][None]  # [1, N, D]
        horizon = self.planner.cfg.horizon
        z = z_now[:, None, None].expand(-1, 1, horizon, -1, -1)  # [1, 1, H, N, D]
        return float(self.plan_energy(z, goal)[0, 0, -1])

    def plan_energy(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Energy after each imagined step `(E, S, H)` of latents `z (E, S, H, N, D)`.

        The planner ranks by the last entry: the latent distance to the goal `(E, N, D)` at
        the horizon ("last") or summed up to it ("sum"), plus the reachability head's
        steps-to-goal / budget there. Plots use the whole row: how the chosen plan's energy
        evolves.
        """
        cfg = self.cfg
        e = cfg.distance_weight * self.world_model.energy(z, goal[:, None, None])  # [E, S, H]
        if cfg.energy_reduce == "sum":
            e = e.cumsum(-1)
        if cfg.reachability_weight > 0:
            head = self.reachability
            steps = head(z, goal[:, None, None])  # [E, S, H] control steps, in [0, budget]
            e = e + cfg.reachability_weight * steps / head.cfg.budget
        return e

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        if not self._history or len(self._pending) == self.action_block:
            self.observe(pixels, state)  # at block boundaries, where plans start
        action = super().act(pixels, state)
        if self.trace_imagined and self.stats.replanned:
            self.stats.imagined = self.imagined_energy(self.last_plan).tolist()
        self._pending.append(action)
        self._steps += 1
        return action


def goal_images(goal: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A goal image `(H, W, 3)`, or a sequence (or `(G, H, W, 3)` stack) of sub-goal images,
    as images the encoder reads like observations: uint8, or float32 in [0, 1]. Anything else
    is refused with one line: a float in [0, 1] cast to uint8 was a black frame, 300 wrapped to
    44, and a `(64, 64)` array became 64 "sub-goals"."""
    if isinstance(goal, np.ndarray) and goal.ndim == 3:
        goal = [goal]
    elif isinstance(goal, np.ndarray) and goal.ndim != 4:
        raise ValueError(f"goal image must be (H, W, 3) or a list of them, got {goal.shape}")
    images = []
    for i, g in enumerate(goal):
        g = np.asarray(g)
        what = f"goal image {i}" if len(goal) > 1 else "goal image"
        if g.ndim != 3 or g.shape[-1] != 3:
            raise ValueError(f"{what} must be (H, W, 3), got {g.shape}")
        if g.dtype.kind not in "uif" or (g.dtype.kind == "f" and not np.isfinite(g).all()):
            raise ValueError(f"{what} must hold finite numbers, got dtype {g.dtype}")
        top = 1.0 if g.dtype.kind == "f" else 255
        if g.size and (g.min() < 0 or g.max() > top):
            raise ValueError(
                f"{what} holds values in [{g.min()}, {g.max()}]; expected uint8 in [0, 255] "
                "or float in [0, 1]"
            )
        images.append(g.astype(np.float32) if g.dtype.kind == "f" else g.astype(np.uint8))
    return images
