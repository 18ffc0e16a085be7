"""What every wm/* env shares: goal image and state, the info it reports, its scene revision.

Each env renders ``goal_pixels`` (H, W, 3) uint8 and ``goal_state`` (7,) at reset, measures
its task distance (metres, from simulator state only) and decides success from it; this base
turns that into the ``info`` dict of the wm/* interface (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs import ENV_REVISION


class GoalImageEnv(gym.Env):
    """Base of the wm/* envs; subclasses implement ``_current_distance`` and ``_success``."""

    metadata = {"render_modes": ["rgb_array"]}  # render_fps: set per instance (control_hz)
    env_revision = ENV_REVISION
    goal_pixels: np.ndarray  # (H, W, 3) uint8, the task solved, from the same camera
    goal_state: np.ndarray  # (7,) float32

    def _current_distance(self) -> float:
        """Task distance (m) of the live simulator state."""
        raise NotImplementedError

    def _success(self, distance: float) -> bool:
        raise NotImplementedError

    def _info(self, with_goal: bool = False) -> dict[str, Any]:
        dist = float(self._current_distance())
        info = {"success": self._success(dist), "distance": dist}
        if with_goal:  # reset only: the goal is fixed per episode and large to ship every step
            info["goal_pixels"] = self.goal_pixels.copy()  # copies: callers may keep infos
            info["goal_state"] = self.goal_state.copy()
        return info
