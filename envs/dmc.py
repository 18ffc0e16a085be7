"""dm_control suite tasks from pixels behind the wm/* interface.

``obs = {"pixels": (H, W, 3) uint8 from the suite's camera, "state": (7,) float32}``. The state
is the task's own low-dimensional physics state, ``[qpos, qvel]`` (both tasks have 2 DoF, so 4
numbers), zero-padded to 7; it holds no goal information. The action is padded the same way:
``action_space`` is (7,) with the task's own bounds ([-1, 1]) on the first two dims and zero
width on the rest, so the world model and planners see one action shape everywhere.

Goal images show the task solved: reacher's fingertip on the target (analytic 2-link IK),
the point mass at the target. Distance and success come from the suite's own geometry:

* reacher-easy: distance = |finger - target| (xy, m); success below target radius + finger
  radius = 0.06 m (the suite's reward-1 region).
* point_mass-easy: distance = |mass - target| (m); success below the target radius 0.015 m.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from dm_control import suite

from envs.common.config import DMCEnvConfig
from envs.common.render_exit import close_at_exit
from envs.goals.goal_env import GoalImageEnv

_SUITE = {"reacher_easy": ("reacher", "easy"), "point_mass_easy": ("point_mass", "easy")}
REACHER_LINKS = (0.12, 0.12)  # m, arm and hand lengths in reacher.xml


class DMCEnv(GoalImageEnv):
    """A dm_control suite task from pixels with a padded 7-d state and action."""

    @staticmethod
    def default_config() -> DMCEnvConfig:
        return DMCEnvConfig()

    def __init__(self, render_mode: str | None = "rgb_array", **kwargs: Any) -> None:
        self.cfg = DMCEnvConfig(**kwargs)
        self.render_mode = render_mode
        domain, task = _SUITE[self.cfg.task]
        # No suite time limit: gymnasium's TimeLimit (max_episode_steps) ends episodes.
        self._env = suite.load(domain, task, task_kwargs={"time_limit": float("inf")})
        self.physics = self._env.physics
        self.ctrl_dt = self._env.control_timestep() * self.cfg.action_repeat
        self.metadata = {**self.metadata, "render_fps": 1.0 / self.ctrl_dt}
        spec = self._env.action_spec()
        self._n_act = spec.shape[0]
        low = np.zeros(self.cfg.action_dim, np.float32)
        high = np.zeros(self.cfg.action_dim, np.float32)
        low[: self._n_act], high[: self._n_act] = spec.minimum, spec.maximum
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        size = self.cfg.image_size
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )
        named = self.physics.named
        self._target_geom = named.model.geom_size.axes.row.convert_key_item("target")
        mover = "finger" if domain == "reacher" else "pointmass"
        self._mover_geom = named.model.geom_size.axes.row.convert_key_item(mover)
        self._domain = domain
        self.goal_state = np.zeros(7, np.float32)
        self.goal_pixels = np.zeros((size, size, 3), np.uint8)
        self._renderer: mujoco.Renderer | None = None
        self._thick_geoms: set[int] = set()
        if self.cfg.arm_scale != 1.0 and domain == "reacher":
            self._thick_geoms = {self.physics.model.name2id(n, "geom") for n in ("arm", "hand")}

    @property
    def control_hz(self) -> float:
        """Actions per second: 1 / (suite control step x action_repeat), 12.5 Hz by default."""
        return 1.0 / self.ctrl_dt

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        # The suite samples the instance from its task's RandomState: seed it from ours.
        self._env.task._random = np.random.RandomState(int(self.np_random.integers(2**31)))
        self._env.reset()
        self._render_goal()
        return self._get_obs(), self._info(with_goal=True)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward = self.step_dynamics(action)
        return self._get_obs(), reward, False, False, self._info()

    def step_dynamics(self, action: np.ndarray) -> float:
        """`step` without the frame and info (the oracle's fast path, envs/common/oracle.py): the
        suite's reward summed over the action repeats."""
        action = np.clip(
            np.nan_to_num(np.asarray(action, np.float32)),
            self.action_space.low,
            self.action_space.high,
        )
        reward = 0.0
        for _ in range(self.cfg.action_repeat):
            reward += float(self._env.step(action[: self._n_act]).reward or 0.0)
        return reward

    def render(self) -> np.ndarray | None:
        return None if self.render_mode is None else self._render()

    # ------------------------------------------------------------------ internals
    def _render(self) -> np.ndarray:
        # mujoco.Renderer on the suite's model: physics.render() rebuilds its scene per call
        # (~25 ms); a persistent renderer takes ~2 ms at 64 px.
        if self._renderer is None:
            size = self.cfg.image_size
            model = self.physics.model.ptr
            model.vis.quality.offsamples = 0
            self._renderer = mujoco.Renderer(model, size, size)
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._renderer.scene.flags[flag] = 0  # 10x faster on CPU, barely visible at 64 px
            close_at_exit(self)
        self._renderer.update_scene(self.physics.data.ptr, camera=self.cfg.camera_id)
        if self._thick_geoms:
            scene = self._renderer.scene
            for g in scene.geoms[: scene.ngeom]:
                if g.objtype == mujoco.mjtObj.mjOBJ_GEOM and g.objid in self._thick_geoms:
                    g.size[:2] *= self.cfg.arm_scale  # capsule radius (x, y); length unchanged
        return self._renderer.render().copy()  # (H, W, 3)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _state(self) -> np.ndarray:
        phys = np.concatenate([self.physics.data.qpos, self.physics.data.qvel])
        return np.pad(phys, (0, 7 - len(phys))).astype(np.float32)  # (7,)

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self._render(), "state": self._state()}

    def _distance(self) -> float:
        xpos = self.physics.data.geom_xpos
        delta = xpos[self._target_geom] - xpos[self._mover_geom]
        return float(np.linalg.norm(delta[:2] if self._domain == "reacher" else delta))

    def task_positions(self) -> np.ndarray:
        """Fingertip (reacher) or mass (point mass) centre (1, 3) m: what state goals compare
        (envs/common/distance.py, protocol=dataset); the target itself is scenery."""
        return self.physics.data.geom_xpos[self._mover_geom][None].copy()

    def task_threshold(self) -> float:
        """The suite's own success radius (m), applied to a state goal's fingertip / mass."""
        return self._success_threshold()

    def _success_threshold(self) -> float:
        if self.cfg.success_threshold >= 0:
            return self.cfg.success_threshold
        sizes = self.physics.model.geom_size
        radius = sizes[self._target_geom, 0]
        return float(radius + sizes[self._mover_geom, 0] if self._domain == "reacher" else radius)

    def _success(self, distance: float) -> bool:
        return bool(distance < self._success_threshold())

    def _current_distance(self) -> float:
        return self._distance()

    def goal_qpos(self) -> np.ndarray:
        """Joint positions (2,) that solve the task instance (used by the goal image, expert)."""
        target = self.physics.data.geom_xpos[self._target_geom][:2]
        if self._domain == "point_mass":
            return target.copy()
        l1, l2 = REACHER_LINKS
        r = np.clip(np.linalg.norm(target), abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
        elbow = np.arccos(np.clip((r**2 - l1**2 - l2**2) / (2 * l1 * l2), -1.0, 1.0))
        # Two solutions (elbow +-); the wrist is limited to +-160 deg and cannot pass through
        # the other branch cheaply, so keep the branch on the current wrist's side.
        elbow *= 1.0 if self.physics.data.qpos[1] >= 0 else -1.0
        shoulder = np.arctan2(target[1], target[0]) - np.arctan2(
            l2 * np.sin(elbow), l1 + l2 * np.cos(elbow)
        )
        return np.array([shoulder, elbow])

    def _render_goal(self) -> None:
        saved = self.physics.get_state().copy()
        with self.physics.reset_context():
            self.physics.data.qpos[:] = self.goal_qpos()
            self.physics.data.qvel[:] = 0.0
        self.goal_state = self._state()
        self.goal_pixels = self._render()
        with self.physics.reset_context():
            self.physics.set_state(saved)

    # ------------------------------------------------------------------ sim state / oracle
    def get_sim_state(self) -> np.ndarray:
        """Physics state [qpos, qvel, act] (float64) of the current task instance."""
        return self.physics.get_state().copy()

    def set_sim_state(self, state: np.ndarray) -> None:
        with self.physics.reset_context():
            self.physics.set_state(np.asarray(state, np.float64))

    def oracle_cost(self, actions: np.ndarray) -> np.ndarray:
        """Distance (S,) after executing each candidate (S, H, 7) from the current state."""
        actions = np.clip(
            np.nan_to_num(np.asarray(actions, np.float64)),
            self.action_space.low,
            self.action_space.high,
        )
        if actions.ndim != 3 or actions.shape[-1] != self.action_space.shape[0]:
            raise ValueError(
                f"actions must be (S, H, {self.action_space.shape[0]}), got {actions.shape}"
            )
        start = self.get_sim_state()
        n_sub = self._env._n_sub_steps * self.cfg.action_repeat
        costs = np.empty(actions.shape[0])
        for s, plan in enumerate(actions):
            self.set_sim_state(start)
            for a in plan:
                self.physics.set_control(a[: self._n_act])
                self.physics.step(n_sub)
            costs[s] = self._distance()
        self.set_sim_state(start)
        return costs
