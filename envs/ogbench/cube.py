"""OGBench ``visual-cube-single-v0`` behind the wm/* interface: ``wm/OGBenchCube-v0``.

OGBench's UR5e + Robotiq 2F-85 picks a 4 cm cube (``ogbench.manipspace``, the package's own
model, controller and physics, unchanged). This class only adapts the interface:

* action (7,): OGBench's 5-D ``[dx, dy, dz, dyaw, dgripper]`` in [-1, 1] (its env scales
  them to 5 cm, 5 cm, 5 cm, 0.3 rad and a full gripper stroke per step), padded with two
  zero-width dims so every wm/* env takes the same action shape;
* obs ``pixels`` (S, S, 3) uint8 from OGBench's ``front_pixels`` camera, drawn by
  `envs.ogbench.render.SceneRenderer` (fast primitive mode by default, ``fast_render=False``
  draws OGBench's meshes); ``state`` (7,) float32 from OGBench's proprio: pinch-site xyz (m),
  cos / sin of the gripper yaw, gripper opening in [0, 1], pad contact in [0, 1];
* instances follow OGBench's data-collection sampling (random arm pose, cube and target on the
  table); the goal image shows the cube at its target, the arm where it starts;
* distance = |cube - target| (m, 3-D) and success = distance <= 0.04 m, OGBench's own test;
  `cube_pose_error` also gives the yaw error a stricter test reads (the CLEAR-LeWM audit's
  3 cm and 15 degrees, bench/anchors.py);
* control at 20 Hz (OGBench's 0.05 s: 25 physics steps of 2 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from ogbench.manipspace.envs.cube_env import CubeEnv

from envs.common.render_exit import close_at_exit
from envs.goals.goal_env import GoalImageEnv
from envs.ogbench.render import SceneRenderer

OGBENCH_ACTION_DIM = 5
GRIPPER_STROKE = 0.8  # rad of the Robotiq driver joint at full closure (OGBench's scale)
CONTACT_SCALE = 50.0  # N: OGBench maps the pad's contact force to [0, 1] with this


@dataclass
class OGBenchCubeConfig:
    """``wm/OGBenchCube-v0`` (OGBench visual-cube-single)."""

    image_size: int = 64
    """Square render size in pixels (OGBench's visual tasks use 64)."""
    fast_render: bool = True
    """Primitive stand-ins for the meshes (envs/ogbench/render.py); False draws OGBench's."""
    success_threshold: float = 0.04
    """Success when the cube centre is within this many metres of its target (OGBench: 0.04)."""
    action_dim: int = 7
    """Width of the padded action; OGBench's 5 dims come first, the rest have zero width."""

    def __post_init__(self) -> None:
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size={self.image_size}: expected 16..256")
        if not self.success_threshold > 0:
            raise ValueError(f"success_threshold={self.success_threshold}: must be > 0")
        if self.action_dim < OGBENCH_ACTION_DIM:
            raise ValueError(f"action_dim={self.action_dim}: must be >= {OGBENCH_ACTION_DIM}")


class _CubeSim(CubeEnv):
    """OGBench's cube env minus its own observation render (frames are drawn by this module)."""

    def compute_observation(self) -> None:
        return None


class OGBenchCubeEnv(GoalImageEnv):
    """OGBench's single-cube pick-and-place from pixels, with goal images and an oracle cost."""

    @staticmethod
    def default_config() -> OGBenchCubeConfig:
        return OGBenchCubeConfig()

    def __init__(self, render_mode: str | None = "rgb_array", **kwargs: Any) -> None:
        self.cfg = OGBenchCubeConfig(**kwargs)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: only 'rgb_array' is supported")
        self.render_mode = render_mode
        size = self.cfg.image_size
        # ob_type="pixels" builds OGBench's pixel-task model (purple gripper, transparent arm);
        # "data_collection" samples cube and target anywhere, as OGBench's datasets do.
        self.ogbench_env = _CubeSim(
            env_type="single",
            ob_type="pixels",
            mode="data_collection",
            visualize_info=False,
            terminate_at_goal=False,
            width=size,
            height=size,
        )
        self.ogbench_env.reset(seed=0)  # compiles OGBench's model
        self.model, self.data = self.ogbench_env.model, self.ogbench_env.data
        self.ctrl_dt = self.ogbench_env.control_timestep()
        self.sim_dt = self.ogbench_env.physics_timestep()
        self.n_substeps = round(self.ctrl_dt / self.sim_dt)
        self.control_hz = 1.0 / self.ctrl_dt
        self.metadata = {**self.metadata, "render_fps": self.control_hz}
        self._cache_ids()

        low = np.zeros(self.cfg.action_dim, np.float32)
        high = np.zeros(self.cfg.action_dim, np.float32)
        low[:OGBENCH_ACTION_DIM], high[:OGBENCH_ACTION_DIM] = -1.0, 1.0
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )
        self._renderer = SceneRenderer(self.model, size, fast=self.cfg.fast_render)
        self._goal_data = mujoco.MjData(self.model)
        self._pose_data = mujoco.MjData(self.model)  # recorded states decoded by cube_pose
        self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.goal_state = np.zeros(7, np.float32)
        self.goal_pixels = np.zeros((size, size, 3), np.uint8)

    def _cache_ids(self) -> None:
        m = self.model
        self._pinch = m.site("ur5e/robotiq/pinch").id
        self._gripper_qadr = m.joint("ur5e/robotiq/right_driver_joint").qposadr[0]
        self._pad_body = m.body("ur5e/robotiq/right_pad").id
        self._cube_qadr = m.joint("object_joint_0").qposadr[0]
        self._target_mocap = m.body("object_target_0").mocapid[0]

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.ogbench_env.reset(seed=int(self.np_random.integers(2**31)))
        while self._success(
            self._distance(self.data)
        ):  # a task solved at the start teaches nothing
            self.ogbench_env.set_new_target(return_info=False)
        mujoco.mj_rnePostConstraint(self.model, self.data)  # pad contact force for the state
        self._render_goal()
        return self._get_obs(), self._info(with_goal=True)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self._advance(action)
        info = self._info()
        return self._get_obs(), float(info["success"]), False, False, info

    def render(self) -> np.ndarray | None:
        return None if self.render_mode is None else self._render(self.data)

    def close(self) -> None:
        self._renderer.close()

    # ------------------------------------------------------------------ control
    def _advance(self, action: np.ndarray) -> None:
        """One 50 ms control step of OGBench's own controller (IK to a pinch pose, PD joints)."""
        action = np.clip(np.nan_to_num(np.asarray(action, np.float64)), -1.0, 1.0)
        self.ogbench_env.set_control(action[:OGBENCH_ACTION_DIM])
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        mujoco.mj_rnePostConstraint(self.model, self.data)  # contact forces, as OGBench does

    # ------------------------------------------------------------------ observations
    def cube_pos(self, d: mujoco.MjData | None = None) -> np.ndarray:
        """Cube centre (3,) m."""
        d = self.data if d is None else d
        return d.qpos[self._cube_qadr : self._cube_qadr + 3].copy()

    def cube_pose(self, sim_state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cube centre (3,) m and orientation quaternion (4,) (w, x, y, z), now or in a recorded
        `get_sim_state` vector (read into a scratch copy; the live state is untouched)."""
        d = self.data
        if sim_state is not None:
            d = self._pose_data
            mujoco.mj_setState(self.model, d, np.asarray(sim_state, np.float64), self._state_spec)
        q = self._cube_qadr
        return d.qpos[q : q + 3].copy(), d.qpos[q + 3 : q + 7].copy()

    def cube_pose_error(self, goal_sim_state: np.ndarray) -> tuple[float, float]:
        """The cube now against its pose in a recorded state: centre distance (m) and yaw error
        (rad, modulo the quarter-turn symmetry, `cube_yaw_error`)."""
        (pos, quat), (goal_pos, goal_quat) = self.cube_pose(), self.cube_pose(goal_sim_state)
        return float(np.linalg.norm(pos - goal_pos)), cube_yaw_error(quat, goal_quat)

    def target_pos(self) -> np.ndarray:
        """Where the cube should go (3,) m."""
        return self.data.mocap_pos[self._target_mocap].copy()

    def _state(self, d: mujoco.MjData) -> np.ndarray:
        rot = d.site_xmat[self._pinch].reshape(3, 3)
        heading = rot[:2, 0] / max(np.linalg.norm(rot[:2, 0]), 1e-9)  # (cos yaw, sin yaw)
        opening = np.clip(d.qpos[self._gripper_qadr] / GRIPPER_STROKE, 0.0, 1.0)
        contact = np.clip(np.linalg.norm(d.cfrc_ext[self._pad_body]) / CONTACT_SCALE, 0.0, 1.0)
        return np.concatenate([d.site_xpos[self._pinch], heading, [opening, contact]]).astype(
            np.float32
        )  # (7,)

    def _render(self, d: mujoco.MjData) -> np.ndarray:
        frame = self._renderer.render(d)  # (S, S, 3) uint8; the GL context exists from here
        close_at_exit(self)  # after mujoco's own EGL hook, so renderers close before it runs
        return frame

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self._render(self.data), "state": self._state(self.data)}

    def _distance(self, d: mujoco.MjData) -> float:
        return float(np.linalg.norm(self.cube_pos(d) - d.mocap_pos[self._target_mocap]))

    def _success(self, distance: float) -> bool:
        return bool(distance <= self.cfg.success_threshold)

    def _current_distance(self) -> float:
        return self._distance(self.data)

    def _render_goal(self) -> None:
        """The current scene with the cube resting at its target (pose and yaw)."""
        g = self._goal_data
        mujoco.mj_copyData(g, self.model, self.data)
        q = self._cube_qadr
        g.qpos[q : q + 3] = self.data.mocap_pos[self._target_mocap]
        g.qpos[q + 3 : q + 7] = self.data.mocap_quat[self._target_mocap]
        mujoco.mj_forward(self.model, g)
        self.goal_state = self._state(g)
        self.goal_pixels = self._render(g)

    # ------------------------------------------------------------------ OGBench hooks
    def ogbench_info(self) -> dict[str, Any]:
        """OGBench's proprio + privileged info dict (what its scripted oracles read)."""
        return self.ogbench_env.compute_ob_info()

    def new_target(self) -> None:
        """Draw a new target as OGBench's data collection does after each finished task."""
        self.ogbench_env.set_new_target(return_info=False)
        self._render_goal()

    # ------------------------------------------------------------------ state goals
    def task_positions(self) -> np.ndarray:
        """Cube centre (1, 3) m: what state goals compare (envs/common/distance.py,
        protocol=dataset)."""
        return self.cube_pos()[None]

    def task_threshold(self) -> float:
        """OGBench's own success radius for the cube (m)."""
        return self.cfg.success_threshold

    def step_dynamics(self, action: np.ndarray) -> None:
        """`step` without the frame and info: the oracle's fast path (envs/common/oracle.py)."""
        self._advance(action)

    # ------------------------------------------------------------------ sim state / oracle
    def get_sim_state(self) -> np.ndarray:
        """Flat float64 mjSTATE_INTEGRATION: qpos, qvel, warm start, ctrl, target (mocap)."""
        size = mujoco.mj_stateSize(self.model, self._state_spec)
        state = np.empty(size)
        mujoco.mj_getState(self.model, self.data, state, self._state_spec)
        return state

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore a `get_sim_state` vector (OGBench's controller keeps no other memory)."""
        state = np.asarray(state, np.float64)
        size = mujoco.mj_stateSize(self.model, self._state_spec)
        if state.shape != (size,):
            raise ValueError(f"sim state must be ({size},) float64, got {state.shape}")
        mujoco.mj_setState(self.model, self.data, state, self._state_spec)
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_rnePostConstraint(self.model, self.data)

    def oracle_cost(self, actions: np.ndarray) -> np.ndarray:
        """Cube-target distance (S,) m after executing each candidate (S, H, A) from now.

        True dynamics, no rendering; about 2-3 ms of CPU per candidate step (IK + 25 physics
        steps), so 300 candidates x 25 steps cost ~20 s. The live state is restored after.
        """
        actions = np.asarray(actions, np.float64)
        if actions.ndim != 3 or actions.shape[-1] != self.action_space.shape[0]:
            raise ValueError(
                f"actions must be (S, H, {self.action_space.shape[0]}), got {actions.shape}"
            )
        start = self.get_sim_state()
        costs = np.empty(actions.shape[0])
        for s, plan in enumerate(actions):
            self.set_sim_state(start)
            for a in plan:
                self._advance(a)
            costs[s] = self._distance(self.data)
        self.set_sim_state(start)
        return costs


def cube_yaw_error(quat: np.ndarray, goal_quat: np.ndarray) -> float:
    """Yaw error (rad, in [0, pi/4]) between two cube orientations, quaternions (w, x, y, z),
    modulo the cube's 90-degree symmetry: a cube turned by a quarter turn looks the same.

    Yaw is the heading of a horizontal face normal about the vertical, whichever face the cube
    rests on, so a cube tipped onto another face compares by its heading too."""
    half_pi = np.pi / 2
    gap = (_cube_heading(quat) - _cube_heading(goal_quat)) % half_pi
    return float(min(gap, half_pi - gap))


def _cube_heading(quat: np.ndarray) -> float:
    """Heading (rad) of one of the cube's horizontal face normals; defined modulo pi / 2."""
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, np.asarray(quat, np.float64))
    axes = rot.reshape(3, 3)  # columns: the cube's axes in the world frame
    up = int(np.argmax(np.abs(axes[2])))  # the axis nearest the vertical
    side = axes[:, (up + 1) % 3]  # a face normal about horizontal
    return float(np.arctan2(side[1], side[0]))
