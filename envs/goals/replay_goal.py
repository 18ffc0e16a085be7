"""protocol=replay: goals for any seeded pixel env, by replay: the goal is where a behaviour
policy got to.

reset(seed) -> run k behaviour steps -> keep the frame and the task positions -> reset(seed)
again -> the agent must get back there from pixels alone. It is scored by the distance between
task positions (envs/common/distance.py: body centres of mass in metres for MuJoCo envs), which no
planner sees; any env whose state envs/common/sim_state.py can save works, MuJoCo or not.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.common.distance import DistanceConfig
from envs.common.experts import make_policy
from envs.goals.goal_state import StateGoalWrapper


class ReplayGoal(StateGoalWrapper):
    """Replaces the env's goal with a replayed one and scores by task-position distance."""

    def __init__(
        self,
        env: gym.Env,
        steps: int,
        policy: str = "random",
        distance: DistanceConfig | None = None,
        seed_offset: int = 7919,
    ) -> None:
        super().__init__(env, distance)
        if steps < 1:
            raise ValueError(f"replay goal steps={steps}: must be >= 1")
        self.steps, self.policy_name, self.seed_offset = steps, policy, seed_offset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            raise ValueError("replay goals need reset(seed=...): the replay must be repeatable")
        obs, info = self.env.reset(seed=seed, options=options)
        start = self.task_distance.features()
        policy = make_policy(self.policy_name, self.env, seed=seed + self.seed_offset)
        for _ in range(self.steps):
            obs, _, terminated, truncated, info = self.env.step(policy(obs, info))
            if terminated or truncated:
                break
        goal_pixels, self.goal_features = obs["pixels"].copy(), self.task_distance.features()
        goal_state = np.asarray(obs["state"], np.float32).copy()
        obs, info = self.env.reset(seed=seed, options=options)
        if not np.allclose(self.task_distance.features(), start):
            raise RuntimeError(
                f"{self.env.spec.id if self.env.spec else self.env}: reset(seed={seed}) gave a "
                "different initial state twice; replay goals need a deterministic env"
            )
        info = self._score(info)
        info["goal_pixels"], info["goal_state"] = goal_pixels, goal_state
        return obs, info
