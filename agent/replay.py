"""Sub-goal images from a scripted demonstration (`agent.subgoal_capture_steps`).

`ReplayGoal` (protocol=replay) lives in envs/goals/replay_goal.py, next to `DatasetGoal`; it is
re-exported here for older imports.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.common.experts import make_policy
from envs.goals.replay_goal import ReplayGoal

__all__ = ["ReplayGoal", "expert_subgoals"]


def expert_subgoals(env: gym.Env, seed: int, capture_steps: list[int]) -> list[np.ndarray]:
    """Sub-goal images from a scripted demonstration of the same task instance.

    V-JEPA 2-AC's pick-and-place follows 3 goal images held for 4, 10 and 4 steps; ours are the
    frames a demonstration reaches after `capture_steps` control steps, then the task's own goal
    image. The env is reset to `seed` afterwards, so the episode starts where it would have.
    """
    obs, info = env.reset(seed=seed)
    final_goal = info["goal_pixels"].copy()
    policy = make_policy("expert", env, seed=seed)
    frames, wanted = [], sorted(set(capture_steps))
    for t in range(1, max(wanted) + 1):
        obs, _, _, _, info = env.step(policy(obs, info))
        if t in wanted:
            frames.append(obs["pixels"].copy())
    env.reset(seed=seed)
    return [*frames, final_goal]
