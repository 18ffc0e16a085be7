"""What the planning benchmark plans on: the project's own predictor, or free dynamics.

The cost function is the one the agent plans with (`agent.mpc.MPCAgent.cost_function`): a
batched `WorldModel.rollout` from one context frame, then `WorldModel.energy` (mean L1) to a goal
latent. The world model is the default-size `WorldModelConfig`, randomly initialised: latency
does not depend on the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from envs.common.config import PandaEnvConfig
from planners.base import CostFn

Rollout = Callable[[Tensor, Tensor, Tensor], Tensor]
LOW, HIGH = (list(b) for b in PandaEnvConfig().action_bounds())  # wm/Panda* action space
BOUNDS = {"action_low": LOW, "action_high": HIGH}


@dataclass
class Dynamics:
    """A batched rollout `(E, 1, N, D), (E, 1, 7), (E, S, H, 7) -> (E, S, H, N, D)` and its
    energy `(..., N, D), (..., N, D) -> (...)`."""

    rollout: Rollout
    energy: Callable[[Tensor, Tensor], Tensor]
    tokens: int  # N latent tokens per frame
    dim: int  # D
    description: str


def project_predictor() -> Dynamics:
    """The project's default-size `WorldModel` (random init), through its public verbs."""
    from world_model import WorldModelConfig, build_world_model

    cfg = WorldModelConfig()
    model = build_world_model(cfg).eval().requires_grad_(False)
    p = cfg.predictor
    desc = (
        f"world_model.WorldModel (default WorldModelConfig, random init): predictor {p.depth} "
        f"blocks, width {p.width}, {model.num_tokens}+2 tokens per step, D={model.latent_dim}"
    )
    return Dynamics(model.rollout, model.energy, model.num_tokens, model.latent_dim, desc)


def null_dynamics() -> Dynamics:
    """Nearly free dynamics on a 1 x 8 latent: what is left is each planner's own overhead
    (sampling, weighting, bounds, Python), not memory traffic of predictor-sized latents."""

    def rollout(z_ctx: Tensor, states_ctx: Tensor, actions: Tensor) -> Tensor:
        # (E, 1, 1, N, D) + (E, S, H, 1, 1) -> (E, S, H, N, D)
        return z_ctx[:, None, None, -1] + actions[..., :1, None]

    def energy(z: Tensor, goal: Tensor) -> Tensor:
        return (z - goal).abs().mean((-1, -2))

    return Dynamics(rollout, energy, 1, 8, "null dynamics (1 x 8 latent + action[0])")


def make_cost_fn(dynamics: Dynamics, num_envs: int, sum_steps: bool = False) -> CostFn:
    """Agent-style cost: rollout from one context frame, mean L1 to the goal latent `(E, S)`."""
    gen = torch.Generator().manual_seed(0)
    n, d = dynamics.tokens, dynamics.dim
    z_ctx = F.layer_norm(torch.randn(num_envs, 1, n, d, generator=gen), (d,))  # (E, 1, N, D)
    goal = F.layer_norm(torch.randn(num_envs, 1, 1, n, d, generator=gen), (d,))
    states = torch.rand(num_envs, 1, 7, generator=gen)

    def cost_fn(actions: Tensor) -> Tensor:  # (E, S, H, A) -> (E, S)
        z = dynamics.rollout(z_ctx, states, actions)  # (E, S, H, N, D)
        energy = dynamics.energy(z, goal)  # (E, S, H)
        return energy.sum(-1) if sum_steps else energy[..., -1]

    return cost_fn
