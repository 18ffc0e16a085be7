"""Typed configs for the environments, mirrored by the Hydra group ``configs/env/*.yaml``.

An env built with ``gym.make(id, **kwargs)`` takes any field below as a keyword; unknown keywords
raise ``TypeError`` (no silent ``**kwargs`` sinks). Derived values (substeps per control step,
action bounds) are computed by the env, never written back here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PANDA_TASKS = ("reach", "push", "pick_place")
DMC_TASKS = ("reacher_easy", "point_mass_easy")


@dataclass
class PandaEnvConfig:
    """Franka tabletop tasks (``wm/PandaReach-v0``, ``wm/PandaPush-v0``, ``wm/PandaPickPlace-v0``)."""

    task: str = "reach"
    """One of ``reach``, ``push``, ``pick_place``."""
    image_size: int = 64
    """Square render size in pixels for ``obs["pixels"]`` and ``info["goal_pixels"]`` (16..256)."""
    control_hz: float = 5.0
    """Policy rate; ``ctrl_dt = 1 / control_hz`` seconds per action (DROID/V-JEPA 2-AC: 4-5 Hz)."""
    sim_dt: float = 0.002
    """Physics time step in seconds; ``ctrl_dt`` must be a whole multiple of it."""
    pos_bound: float = 0.075
    """Per-axis bound on the end-effector translation per action, metres (V-JEPA 2-AC's 0.075)."""
    rot_bound: float = 0.0
    """Per-axis bound on the Euler delta per action, radians; 0 freezes the gripper orientation."""
    gripper_bound: float = 1.0
    """Bound on the gripper-opening delta per action (opening lives in [0, 1], 1 = open)."""
    success_threshold: float = 0.05
    """Success when the task distance (m) is below this: ee-target (reach), cube-target (others)."""
    robot: str = "simplified"
    """``simplified`` (capsule Panda, fast) or ``menagerie`` (needs ``MENAGERIE_ROOT``)."""
    camera_pos: tuple[float, float, float] = (1.15, -0.68, 0.78)
    """Exocentric camera position in the base frame, metres (front-right, like DROID's left cam)."""
    camera_target: tuple[float, float, float] = (0.38, 0.0, 0.3)
    """Point the camera looks at, metres."""
    camera_fovy: float = 50.0
    """Vertical field of view, degrees."""
    start_jitter: float = 0.05
    """Half-width (m) of the box the start end-effector position is sampled in around home."""
    interp_fraction: float = 0.5
    """Fraction of ``ctrl_dt`` over which the joint target ramps to the IK solution (then holds)."""
    workspace_low: tuple[float, float, float] = (0.2, -0.45, 0.015)
    """Lower corner (m) the commanded end-effector position is clipped to."""
    workspace_high: tuple[float, float, float] = (0.8, 0.45, 0.6)
    """Upper corner (m) of that box."""

    def __post_init__(self) -> None:
        if self.task not in PANDA_TASKS:
            raise ValueError(f"task={self.task!r}: expected one of {PANDA_TASKS}")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size={self.image_size}: expected 16..256")
        if self.control_hz <= 0 or self.sim_dt <= 0:
            raise ValueError(f"control_hz={self.control_hz}, sim_dt={self.sim_dt}: must be > 0")
        n_sub = 1.0 / (self.control_hz * self.sim_dt)
        if abs(n_sub - round(n_sub)) > 1e-6 or round(n_sub) < 1:
            raise ValueError(
                f"1/control_hz={1 / self.control_hz}s is not a whole multiple of sim_dt={self.sim_dt}"
            )
        for name in ("pos_bound", "rot_bound", "gripper_bound", "success_threshold"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        if self.robot not in ("simplified", "menagerie"):
            raise ValueError(f"robot={self.robot!r}: expected 'simplified' or 'menagerie'")
        if not 0.0 < self.interp_fraction <= 1.0:
            raise ValueError(f"interp_fraction={self.interp_fraction}: expected (0, 1]")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError(f"workspace_low={self.workspace_low} must be < workspace_high")
        self.camera_pos = tuple(float(v) for v in self.camera_pos)
        self.camera_target = tuple(float(v) for v in self.camera_target)
        self.workspace_low = tuple(float(v) for v in self.workspace_low)
        self.workspace_high = tuple(float(v) for v in self.workspace_high)

    def action_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-dimension (low, high) of ``[dx, dy, dz, droll, dpitch, dyaw, dgripper]``."""
        high = (self.pos_bound,) * 3 + (self.rot_bound,) * 3 + (self.gripper_bound,)
        return tuple(-h for h in high), high


@dataclass
class DMCEnvConfig:
    """dm_control suite tasks from pixels (``wm/DMCReacherEasy-v0``, ``wm/DMCPointMassEasy-v0``)."""

    task: str = "reacher_easy"
    """One of ``reacher_easy``, ``point_mass_easy``."""
    image_size: int = 64
    """Square render size in pixels."""
    action_repeat: int = 4
    """Suite control steps (0.02 s each) per env step: 0.08 s per action (DINO-WM uses 5)."""
    camera_id: int = 0
    """dm_control camera index (0 is the suite's fixed overview camera)."""
    success_threshold: float = -1.0
    """Success distance (m); a negative value uses the suite's own radius (target + finger size)."""
    action_dim: int = field(default=7)
    """Width of the padded action; the task's own action fills the first dims, the rest bound 0."""
    arm_scale: float = 1.0
    """Reacher: draw the arm and hand capsules this many times thicker (rendering only; physics,
    reward and success are the suite's). At 64 px the suite's 1 cm radius is 1-2 px wide and an
    encoder trained from pixels ignores it (wm/DMCReacherEasy-v1 uses 3)."""

    def __post_init__(self) -> None:
        if self.task not in DMC_TASKS:
            raise ValueError(f"task={self.task!r}: expected one of {DMC_TASKS}")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size={self.image_size}: expected 16..256")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat={self.action_repeat}: must be >= 1")
        if self.action_dim < 2:
            raise ValueError(f"action_dim={self.action_dim}: must be >= 2")
        if not 0.5 <= self.arm_scale <= 10:
            raise ValueError(f"arm_scale={self.arm_scale}: expected 0.5..10")
