"""Goals for any seeded pixel env, by replay: the goal is where a behaviour policy got to.

reset(seed) -> run k behaviour steps -> keep the frame and the simulator state -> reset(seed)
again -> the agent must get back there from pixels alone; it is scored by the distance between
simulator positions (qpos), which no planner sees.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.experts import make_policy


def sim_positions(env: gym.Env) -> np.ndarray:
    """Generalised positions of the simulator behind `env` (qpos), for scoring only."""
    base = env.unwrapped
    physics = getattr(base, "physics", None)  # dm_control
    if physics is not None:
        return np.asarray(physics.data.qpos, np.float64).copy()
    data = getattr(base, "data", None)  # gymnasium's MujocoEnv and our Panda envs
    if data is not None and hasattr(data, "qpos"):
        return np.asarray(data.qpos, np.float64).copy()
    if hasattr(base, "get_sim_state"):
        return np.asarray(base.get_sim_state(), np.float64).ravel().copy()
    raise TypeError(
        f"{env.spec.id if env.spec else type(base).__name__}: replay goals need a MuJoCo / "
        "dm_control simulator (qpos) or a get_sim_state() method"
    )


class ReplayGoal(gym.Wrapper):
    """Replaces the env's goal with a replayed one and scores by qpos distance."""

    def __init__(
        self,
        env: gym.Env,
        steps: int,
        policy: str = "random",
        success_threshold: float = 0.1,
        seed_offset: int = 7919,
    ) -> None:
        super().__init__(env)
        if steps < 1:
            raise ValueError(f"replay goal steps={steps}: must be >= 1")
        self.steps, self.policy_name = steps, policy
        self.success_threshold, self.seed_offset = success_threshold, seed_offset
        self._goal_q: np.ndarray | None = None

    def _score(self, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        dist = float(np.linalg.norm(sim_positions(self.env) - self._goal_q))
        info["distance"], info["success"] = dist, dist < self.success_threshold
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            raise ValueError("replay goals need reset(seed=...): the replay must be repeatable")
        obs, info = self.env.reset(seed=seed, options=options)
        start_q = sim_positions(self.env)
        policy = make_policy(self.policy_name, self.env, seed=seed + self.seed_offset)
        for _ in range(self.steps):
            obs, _, terminated, truncated, info = self.env.step(policy(obs, info))
            if terminated or truncated:
                break
        goal_pixels, self._goal_q = obs["pixels"].copy(), sim_positions(self.env)
        goal_state = np.asarray(obs["state"], np.float32).copy()
        obs, info = self.env.reset(seed=seed, options=options)
        if not np.allclose(sim_positions(self.env), start_q):
            raise RuntimeError(
                f"{self.env.spec.id if self.env.spec else self.env}: reset(seed={seed}) gave a "
                "different initial state twice; replay goals need a deterministic env"
            )
        info = self._score(info)
        info["goal_pixels"], info["goal_state"] = goal_pixels, goal_state
        return obs, info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._score(info)


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
