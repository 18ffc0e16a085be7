"""The learned agent's energy on true dynamics: where a whole-task failure comes from.

`agent.kind=true_dynamics` plans with the learned agent's planner, goal latent and energy, but
scores each candidate on the *real* frames the simulator renders after it (restored to the
current state per candidate, envs/common/oracle.py) instead of the predictor's imagined latents. It
splits a whole-task failure in two, as `bench.plan_diagnosis` does on short goals:

* it fails too: the energy itself leads away from the task (e.g. the goal-image distance
  prefers the arm at its goal pose with the object left behind), whatever the predictor does;
* it succeeds where the learned agent fails: the predictor is what is wrong.

It renders every candidate at every block end, so it is slow (seconds per plan): a bench tool.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from agent.mpc import MPCAgent
from envs.common.oracle import replay_plans


class TrueDynamicsAgent(MPCAgent):
    """`MPCAgent` whose candidate latents come from rendered simulator frames."""

    def __init__(self, env: gym.Env, agent: MPCAgent) -> None:
        # share the learned agent's parts (model, planner, goal handling, config)
        self.__dict__.update(agent.__dict__)
        self.env = env

    def _energy_fn(self, per_step: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        if not self._history:
            raise RuntimeError("observe() an image before planning")
        goal = self._current_goal()  # [1, N, D]
        k, a = self.action_block, self.action_low.size
        render = self.env.unwrapped.render

        @torch.no_grad()
        def cost_fn(actions: torch.Tensor) -> torch.Tensor:
            e, s, h, _ = actions.shape  # [E=1, S, H, k * A]
            plans = actions.reshape(e * s, h * k, a).detach().cpu().numpy()  # [S, H*k, A]
            # the frame at every block end of every candidate: [S, H, Hpx, Wpx, 3]
            frames = np.stack([_block_end_frames(self.env, p, k, render) for p in plans])
            flat = torch.as_tensor(frames.reshape(-1, *frames.shape[2:]), device=self.device)
            z = self.world_model.encode(flat.permute(0, 3, 1, 2)[None])[0]  # [S*H, N, D]
            z = z.reshape(e, s, h, *z.shape[-2:])  # [E, S, H, N, D]
            energy = self.plan_energy(z, goal)  # [E, S, H]
            return energy if per_step else energy[..., -1]

        return cost_fn


def _block_end_frames(
    env: gym.Env, plan: np.ndarray, k: int, render: Callable[[], np.ndarray]
) -> np.ndarray:
    """`(H, Hpx, Wpx, 3)` frames after each block of `k` steps of one plan `(H * k, A)`, from
    the env's current state (restored afterwards), in one replay."""
    frames: list[np.ndarray] = []
    count = [0]

    def at_step() -> float:
        count[0] += 1
        if count[0] % k == 0:
            frames.append(np.asarray(render()))
        return 0.0

    replay_plans(env, plan[None], lambda: 0.0, at_step)
    return np.stack(frames)
