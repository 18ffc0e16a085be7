"""Goals given as a simulator state rather than by the task: the shared base of replay and
dataset goals.

A subclass decides *which* state is the goal (``_capture_goal``); this base keeps its image,
its task positions (envs/common/distance.py) and scores every step by the distance to them,
replacing the env's own ``distance`` / ``success``. The oracle reads ``goal_features`` and
``task_distance`` through ``env.get_wrapper_attr`` to plan on true dynamics towards the same
goal (envs/common/oracle.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.common.distance import DistanceConfig, TaskDistance
from envs.foreign.env_hooks import hooks_for


class StateGoalWrapper(gym.Wrapper):
    """Scores by task-position distance to a goal state chosen by the subclass at reset."""

    def __init__(self, env: gym.Env, distance: DistanceConfig | None = None) -> None:
        super().__init__(env)
        self.task_distance = TaskDistance(env, distance)
        self.goal_features: np.ndarray | None = None  # (K, D) positions in the goal state
        hooks = hooks_for(env)
        # The own task's "solved" is not this goal's: such an env must not end the episode.
        self._ignore_terminated = hooks is not None and hooks.terminates_on_success

    def _score(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.goal_features is None:
            raise RuntimeError("reset() the env before stepping: no goal state yet")
        info = dict(info)
        dist = self.task_distance(self.task_distance.features(), self.goal_features)
        info["distance"], info["success"] = dist, dist < self.task_distance.threshold
        return info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        terminated = terminated and not self._ignore_terminated
        return obs, reward, terminated, truncated, self._score(info)


def distance_info(env: gym.Env) -> dict[str, Any]:
    """What results record about how ``info["distance"]`` / ``success`` were measured."""
    try:
        return env.get_wrapper_attr("task_distance").describe()
    except AttributeError:
        pass
    hooks = hooks_for(env)
    if hooks is not None and hooks.task_description is not None:
        return dict(hooks.task_description)
    cfg = getattr(env.unwrapped, "cfg", None)
    threshold = getattr(cfg, "success_threshold", None)
    if threshold is not None and threshold < 0:
        threshold = "the suite's own radius"  # wm/DMC* default
    return {
        "distance": "the env's own task distance (envs/README.md)",
        "unit": "m" if cfg is not None else "env-defined",
        "threshold": threshold,
    }
