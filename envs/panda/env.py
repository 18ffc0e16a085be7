"""Franka Panda tabletop env: ee-delta actions, pixels + 7-d state, goal images, oracle cost.

Shape of the class follows dm_control / MuJoCo Playground: ``default_config()``, ``reset`` /
``step``, private ``_get_obs`` / ``_success``; ids cached by name at init; ``ctrl_dt`` and
``sim_dt`` explicit. Tasks (``envs/panda/tasks.py``) only say how an instance is sampled, what
the goal configuration looks like and how far the scene is from it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from envs.common.config import PandaEnvConfig
from envs.common.render_exit import close_at_exit
from envs.goals.goal_env import GoalImageEnv
from envs.panda.controller import ControllerState, DiffIK, euler_xyz_from_mat, mat_from_euler_xyz
from envs.panda.model import FINGER_MAX, PANDA_JOINT_LIMITS, READY_QPOS, build_arena

HOME_EE_POS = np.array([0.4, 0.0, 0.3])  # m: start pose centre, gripper pointing down


class PandaEnv(GoalImageEnv):
    """Base class; subclasses implement ``_sample_task``, ``_goal_config`` and ``_distance``."""

    @staticmethod
    def default_config() -> PandaEnvConfig:
        return PandaEnvConfig()

    def __init__(self, render_mode: str | None = "rgb_array", **kwargs: Any) -> None:
        self.cfg = PandaEnvConfig(**kwargs)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: only 'rgb_array' is supported")
        self.render_mode = render_mode
        self.ctrl_dt = 1.0 / self.cfg.control_hz
        self.sim_dt = self.cfg.sim_dt
        self.n_substeps = round(self.ctrl_dt / self.sim_dt)
        self.metadata = {**self.metadata, "render_fps": self.cfg.control_hz}

        arena = build_arena(
            self.cfg.robot, self.cfg.camera_pos, self.cfg.camera_target, self.cfg.camera_fovy
        )
        arena.option.timestep = self.sim_dt
        self.model = mujoco.MjModel.from_xml_string(arena.to_xml_string(), arena.get_assets())
        self.data = mujoco.MjData(self.model)
        self._cache_ids()

        size = self.cfg.image_size
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )
        c = self.cfg
        low, high = c.action_bounds()
        self.action_space = gym.spaces.Box(np.float32(low), np.float32(high), dtype=np.float32)

        self.ik = DiffIK(
            self.model, self._ee, self._arm_qadr, self._arm_dadr, PANDA_JOINT_LIMITS, READY_QPOS
        )
        self._ctrl = ControllerState(joint_target=READY_QPOS.copy())
        self._renderer: mujoco.Renderer | None = None
        self._goal_data = mujoco.MjData(self.model)
        self._oracle_data = mujoco.MjData(self.model)
        self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.workspace_low, self.workspace_high = c.workspace_low, c.workspace_high  # (3,) m
        self._ws_low = np.asarray(c.workspace_low)
        self._ws_high = np.asarray(c.workspace_high)
        self.goal_pos = np.zeros(3)
        self.goal_state = np.zeros(7, np.float32)
        self.goal_pixels = np.zeros((size, size, 3), np.uint8)

    @property
    def control_hz(self) -> float:
        """Actions per second (`envs.common.contract.EnvContract.from_env` reads it)."""
        return self.cfg.control_hz

    # ------------------------------------------------------------------ ids
    def _cache_ids(self) -> None:
        m = self.model
        prefix = "panda/" if self.cfg.robot == "menagerie" else ""
        arm = [f"{prefix}joint{i + 1}" for i in range(7)]
        if self.cfg.robot == "menagerie":
            fingers = [f"{prefix}finger_joint1", f"{prefix}finger_joint2"]
            acts = [f"{prefix}actuator{i + 1}" for i in range(8)]
            self._gripper_scale = 255.0  # Menagerie's tendon actuator: ctrl 0..255
        else:
            fingers = ["finger_left", "finger_right"]
            acts = [f"joint{i + 1}" for i in range(7)] + ["gripper"]
            self._gripper_scale = FINGER_MAX
        self._arm_qadr = np.array([m.joint(n).qposadr[0] for n in arm])
        self._arm_dadr = np.array([m.joint(n).dofadr[0] for n in arm])
        self._finger_qadr = np.array([m.joint(n).qposadr[0] for n in fingers])
        self._arm_act = np.array([m.actuator(n).id for n in acts[:7]])
        self._gripper_act = m.actuator(acts[7]).id
        self._ee = m.site(f"{prefix}ee").id
        self._cube_qadr = m.joint("cube").qposadr[0]
        self._cube_dadr = m.joint("cube").dofadr[0]
        self._cube_body = m.body("cube").id
        self._camera = m.camera("front").id

    # ------------------------------------------------------------------ task hooks
    def _sample_task(self, rng: np.random.Generator) -> None:
        """Place the cube in ``self.data`` and set ``self.goal_pos`` (3,) m."""
        raise NotImplementedError

    def _goal_config(self) -> tuple[np.ndarray, float, np.ndarray]:
        """(ee position (3,), gripper opening in [0, 1], cube position (3,)) the task wants."""
        raise NotImplementedError

    def _distance(self, data: mujoco.MjData) -> float:
        """Task distance in metres, from simulator state only."""
        raise NotImplementedError

    def _success(self, distance: float) -> bool:
        return bool(distance < self.cfg.success_threshold)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        d = self.data
        mujoco.mj_resetData(self.model, d)
        jitter = rng.uniform(-1, 1, 3) * self.cfg.start_jitter * np.array([1.0, 1.0, 0.5])
        d.qpos[self._arm_qadr] = READY_QPOS
        q_start = self.ik.solve(d.qpos, HOME_EE_POS + jitter, np.eye(3))
        self._place_robot(d, q_start, 1.0)
        self._ctrl = ControllerState(np.eye(3), 1.0, q_start.copy())
        self._sample_task(rng)
        mujoco.mj_forward(self.model, d)
        mujoco.mj_step(self.model, d, nstep=25)  # let the cube settle on the table (50 ms)
        self._render_goal()
        return self._get_obs(), self._info(with_goal=True)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.step_dynamics(action)
        info = self._info()
        # Dense reward for RL baselines; planners here use goal images or oracle_cost instead.
        return self._get_obs(), -info["distance"], False, False, info

    def step_dynamics(self, action: np.ndarray) -> None:
        """`step` without rendering or info: planning on true dynamics (envs/common/oracle.py) steps
        thousands of candidate actions and reads positions only; the pixels are most of a step's
        cost at 64 px. The simulator ends in the same state as after `step`."""
        action = np.clip(
            np.nan_to_num(np.asarray(action, np.float64)),
            self.action_space.low,
            self.action_space.high,
        )
        self._apply_action(self.data, self._ctrl, action)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        return self._render(self.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ control
    def _apply_action(self, d: mujoco.MjData, ctrl: ControllerState, action: np.ndarray) -> None:
        """One control step on ``d``: IK once, then ramp + hold the joint target at physics rate."""
        ee_pos = d.site_xpos[self._ee]
        target_pos = np.clip(ee_pos + action[:3], self._ws_low, self._ws_high)
        if np.any(action[3:6]):
            ctrl.target_rot = mat_from_euler_xyz(action[3:6]) @ ctrl.target_rot
        ctrl.gripper_cmd = float(np.clip(ctrl.gripper_cmd + action[6], 0.0, 1.0))
        q_goal = self.ik.solve(d.qpos, target_pos, ctrl.target_rot)
        q_prev = ctrl.joint_target
        d.ctrl[self._gripper_act] = ctrl.gripper_cmd * self._gripper_scale
        n_ramp = max(1, round(self.n_substeps * self.cfg.interp_fraction))
        chunks = min(5, n_ramp)
        done = 0
        for k in range(1, chunks + 1):
            n = round(n_ramp * k / chunks) - done
            d.ctrl[self._arm_act] = q_prev + (q_goal - q_prev) * (k / chunks)
            mujoco.mj_step(self.model, d, nstep=n)
            done += n
        if self.n_substeps > done:
            mujoco.mj_step(self.model, d, nstep=self.n_substeps - done)
        ctrl.joint_target = q_goal
        # site_xpos after mj_step lags one kinematics pass; refresh for obs and the next IK.
        mujoco.mj_kinematics(self.model, d)

    def _place_robot(self, d: mujoco.MjData, q_arm: np.ndarray, opening: float) -> None:
        d.qpos[self._arm_qadr] = q_arm
        d.qpos[self._finger_qadr] = opening * FINGER_MAX
        d.qvel[:] = 0.0
        d.ctrl[self._arm_act] = q_arm
        d.ctrl[self._gripper_act] = opening * self._gripper_scale

    def _set_cube(self, d: mujoco.MjData, pos: np.ndarray) -> None:
        d.qpos[self._cube_qadr : self._cube_qadr + 3] = pos
        d.qpos[self._cube_qadr + 3 : self._cube_qadr + 7] = (1.0, 0.0, 0.0, 0.0)
        d.qvel[self._cube_dadr : self._cube_dadr + 6] = 0.0

    def cube_pos(self, d: mujoco.MjData | None = None) -> np.ndarray:
        """Cube centre (3,) m in the base frame."""
        d = self.data if d is None else d
        return d.xpos[self._cube_body].copy()

    def ee_pos(self, d: mujoco.MjData | None = None) -> np.ndarray:
        """TCP position (3,) m in the base frame."""
        d = self.data if d is None else d
        return d.site_xpos[self._ee].copy()

    def task_positions(self) -> np.ndarray:
        """End-effector and cube xyz (2, 3) m: what state goals compare
        (envs/common/distance.py)."""
        return np.stack([self.ee_pos(), self.cube_pos()])

    # ------------------------------------------------------------------ observations
    def _state(self, d: mujoco.MjData) -> np.ndarray:
        rot = d.site_xmat[self._ee].reshape(3, 3)
        opening = np.clip(d.qpos[self._finger_qadr].sum() / (2 * FINGER_MAX), 0.0, 1.0)
        return np.concatenate([d.site_xpos[self._ee], euler_xyz_from_mat(rot), [opening]]).astype(
            np.float32
        )  # (7,)

    def _render(self, d: mujoco.MjData) -> np.ndarray:
        if self._renderer is None:  # lazily, so workers (spawn) own their GL context
            size = self.cfg.image_size
            self._renderer = mujoco.Renderer(self.model, size, size)
            close_at_exit(self)
        self._renderer.update_scene(d, camera=self._camera)
        return self._renderer.render().copy()  # (H, W, 3) uint8

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self._render(self.data), "state": self._state(self.data)}

    def _current_distance(self) -> float:
        return self._distance(self.data)

    def _render_goal(self) -> None:
        """Pose a scratch copy of the scene as the task wants it; render it and read its state."""
        g = self._goal_data
        mujoco.mj_copyData(g, self.model, self.data)
        ee, opening, cube = self._goal_config()
        q = self.ik.solve(g.qpos, ee, np.eye(3))
        self._place_robot(g, q, opening)
        self._set_cube(g, cube)
        mujoco.mj_forward(self.model, g)
        self.goal_state = self._state(g)
        self.goal_pixels = self._render(g)

    # ------------------------------------------------------------------ sim state / oracle
    def get_sim_state(self) -> np.ndarray:
        """Flat float64 copy of physics (mjSTATE_INTEGRATION) + controller memory (17)."""
        size = mujoco.mj_stateSize(self.model, self._state_spec)
        phys = np.empty(size)
        mujoco.mj_getState(self.model, self.data, phys, self._state_spec)
        return np.concatenate([phys, self._ctrl.pack()])

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore a `get_sim_state` vector (same task instance: the goal is not part of it)."""
        self._load_state(self.data, np.asarray(state, np.float64))
        self._ctrl = ControllerState.unpack(state[-17:])

    def _load_state(self, d: mujoco.MjData, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, d, state[:-17], self._state_spec)
        mujoco.mj_forward(self.model, d)

    def oracle_cost(self, actions: np.ndarray) -> np.ndarray:
        """Task distance (S,) m after executing each candidate (S, H, 7) from the current state.

        Privileged reference for planners: no rendering, the live simulator is not touched.
        """
        actions = np.clip(
            np.nan_to_num(np.asarray(actions, np.float64)),
            self.action_space.low,
            self.action_space.high,
        )
        if actions.ndim != 3 or actions.shape[-1] != 7:
            raise ValueError(f"actions must be (S, H, 7), got {actions.shape}")
        start = self.get_sim_state()
        d = self._oracle_data
        costs = np.empty(actions.shape[0])
        for s, plan in enumerate(actions):
            self._load_state(d, start)
            ctrl = ControllerState.unpack(start[-17:])
            for a in plan:
                self._apply_action(d, ctrl, a)
            costs[s] = self._distance(d)
        return costs
