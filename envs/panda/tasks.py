"""The three Panda tasks: how an instance is sampled, its goal configuration, its distance.

All positions are metres in the robot base frame (table top at z = 0). Success is
``distance < success_threshold`` (default 0.05 m):

* Reach: distance = |TCP - target|; target uniform in x [0.3, 0.6], y [-0.2, 0.2],
  z [0.08, 0.35], at most 0.25 m per axis from the start pose (<= 4 steps of 0.075 m).
  Reach-v1: target anywhere in x [0.25, 0.7], y [-0.35, 0.35], z [0.05, 0.45].
  The cube sits on the table as a distractor and appears unchanged in the goal image.
* Push: distance = |cube_xy - target_xy|; cube in x [0.4, 0.6], y [-0.15, 0.15], target
  0.10-0.20 m away on the table. Goal image: cube on the target, gripper closed behind it.
* PickPlace: distance = |cube - target| in 3-D; target 0.10-0.25 m (in xy) from the cube at a
  height z in [0.025, 0.2] (z = 0.025 is resting on the table). Goal image: the cube held at the
  target between closed fingers.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.panda.env import PandaEnv
from envs.panda.model import CUBE_HALF, FINGER_MAX

CUBE_LOW = np.array([0.4, -0.15])
CUBE_HIGH = np.array([0.6, 0.15])
TARGET_LOW = np.array([0.33, -0.22])
TARGET_HIGH = np.array([0.67, 0.22])


def _sample_cube_and_target(
    rng: np.random.Generator, r_min: float, r_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cube xy (2,) and a target xy (2,) r_min..r_max away, both inside the table region."""
    cube = rng.uniform(CUBE_LOW, CUBE_HIGH)
    for _ in range(100):
        angle = rng.uniform(-np.pi, np.pi)
        target = cube + rng.uniform(r_min, r_max) * np.array([np.cos(angle), np.sin(angle)])
        if np.all(target >= TARGET_LOW) and np.all(target <= TARGET_HIGH):
            return cube, target
    return cube, np.clip(target, TARGET_LOW, TARGET_HIGH)  # pragma: no cover - astronomically rare


def _fixed_task(kwargs: dict[str, Any], task: str) -> dict[str, Any]:
    """The id fixes the task: refuse a contradicting ``task=`` keyword instead of obeying it."""
    if kwargs.get("task", task) != task:
        raise ValueError(f"task={kwargs['task']!r} contradicts this env's task {task!r}")
    return {**kwargs, "task": task}


class PandaReachEnv(PandaEnv):
    """Bring the TCP to a target point (orientation held top-down)."""

    TARGET_LOW = np.array([0.3, -0.2, 0.08])  # m: within 0.25 m per axis of the start pose
    TARGET_HIGH = np.array([0.6, 0.2, 0.35])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_fixed_task(kwargs, "reach"))

    def _sample_task(self, rng: np.random.Generator) -> None:
        self._set_cube(self.data, np.r_[rng.uniform(CUBE_LOW, CUBE_HIGH), CUBE_HALF])
        self.goal_pos = rng.uniform(self.TARGET_LOW, self.TARGET_HIGH)

    def _goal_config(self) -> tuple[np.ndarray, float, np.ndarray]:
        return self.goal_pos, 1.0, self.cube_pos(self._goal_data)

    def _distance(self, data: mujoco.MjData) -> float:
        return float(np.linalg.norm(data.site_xpos[self._ee] - self.goal_pos))


class PandaReachWorkspaceEnv(PandaReachEnv):
    """wm/PandaReach-v1: targets anywhere in the reachable top-down workspace (up to ~0.5 m,
    7 steps of 7.5 cm, from the start), not only near the start pose as in v0."""

    TARGET_LOW = np.array([0.25, -0.35, 0.05])
    TARGET_HIGH = np.array([0.7, 0.35, 0.45])


class PandaPushEnv(PandaEnv):
    """Push the cube across the table onto a target (gripper closed as a pusher)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_fixed_task(kwargs, "push"))

    def _sample_task(self, rng: np.random.Generator) -> None:
        cube, target = _sample_cube_and_target(rng, 0.10, 0.20)
        self._set_cube(self.data, np.r_[cube, CUBE_HALF])
        self.goal_pos = np.r_[target, CUBE_HALF]
        self._push_dir = (target - cube) / np.linalg.norm(target - cube)

    def _goal_config(self) -> tuple[np.ndarray, float, np.ndarray]:
        behind = self.goal_pos[:2] - self._push_dir * (CUBE_HALF + 0.03)
        return np.r_[behind, 0.025], 0.0, self.goal_pos

    def _distance(self, data: mujoco.MjData) -> float:
        return float(np.linalg.norm(data.xpos[self._cube_body][:2] - self.goal_pos[:2]))


class PandaPickPlaceEnv(PandaEnv):
    """Grasp the cube, carry it to a target (possibly in the air) and hold it there."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_fixed_task(kwargs, "pick_place"))

    def _sample_task(self, rng: np.random.Generator) -> None:
        cube, target = _sample_cube_and_target(rng, 0.10, 0.25)
        self._set_cube(self.data, np.r_[cube, CUBE_HALF])
        self.goal_pos = np.r_[target, rng.uniform(CUBE_HALF, 0.2)]

    def _goal_config(self) -> tuple[np.ndarray, float, np.ndarray]:
        # Fingers closed on the cube: opening = cube width / max opening.
        return self.goal_pos, CUBE_HALF / FINGER_MAX, self.goal_pos

    def _distance(self, data: mujoco.MjData) -> float:
        return float(np.linalg.norm(data.xpos[self._cube_body] - self.goal_pos))
