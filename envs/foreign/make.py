"""Any registered Gymnasium env that renders ``rgb_array``, behind the wm/* interface.

    wm-collect env.id=Reacher-v5 policy.name=random
    wm-collect env=gym env.id=my_package:MyEnv-v0 env.camera_name=top env.image_size=64

``id`` is a registered Gymnasium id, or ``module:id`` for a package that registers its envs
when imported (Gymnasium imports ``module`` first, e.g. ``ogbench:cube-single-v0``). Render
size and camera are passed to ``gym.make`` where the env takes them (Gymnasium's MuJoCo envs:
``width``, ``height``, ``camera_id``, ``camera_name``), so frames are rendered at
``image_size`` instead of resized from 480 px. Square classic-control envs (Pendulum's
``screen_dim``, Acrobot's ``SCREEN_DIM``) get their screen size set before the first render
(Pendulum: 21 -> 109 steps/s); other envs (Box2D, rectangular screens) are resized.
``fast_render`` turns off MuJoCo shadows, reflections and multisampling: 3.5x faster at 64 px
on a CPU and the arms read better at that size. ``simple_geoms`` draws mesh-heavy MuJoCo
scenes with their collision primitives, ``free_camera`` frames MuJoCo's free camera
(envs/foreign/mujoco_render.py; both change the pixels, so they are recorded with the dataset).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from envs.foreign.adapter import PixelStateAdapter
from envs.foreign.mujoco_render import check_free_camera


@dataclass
class FreeCamera:
    """MuJoCo's free camera for a foreign env (envs/foreign/mujoco_render.py); unset keeps the
    env's."""

    fit: bool = False
    """Look at the scene's geoms from the distance at which they fill the frame (first frame)."""
    distance: float = 0.0
    """Metres from ``lookat``; 0 = the env's (or ``fit``'s)."""
    azimuth: float | None = None
    """Degrees about the vertical axis; None = the env's."""
    elevation: float | None = None
    """Degrees, negative looks down (-90: top-down); None = the env's."""
    lookat: list[float] = field(default_factory=list)
    """``[x, y, z]`` metres; empty = the env's (or ``fit``'s)."""

    def __post_init__(self) -> None:
        check_free_camera(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """The keys that are set, as `make_gym_env` takes them (JSON-able)."""
        out: dict[str, Any] = {"fit": True} if self.fit else {}
        out.update({"distance": float(self.distance)} if self.distance else {})
        for key in ("azimuth", "elevation"):
            if getattr(self, key) is not None:
                out[key] = float(getattr(self, key))
        if self.lookat:
            out["lookat"] = [float(v) for v in self.lookat]
        return out


@dataclass
class GymEnvEntry:
    """A foreign Gymnasium env to collect from or evaluate on (Hydra group entry ``env=gym``)."""

    id: str = "Reacher-v5"
    """Registered Gymnasium id, or ``module:id`` for packages that register on import."""
    task: str = ""
    """Short name for default output files; empty = derived from ``id``."""
    image_size: int = 64
    """Square frame size in pixels (rendered at this size where the env allows it)."""
    camera_id: int = -1
    """MuJoCo camera index; -1 = the env's default camera."""
    camera_name: str = ""
    """MuJoCo camera name (takes precedence over ``camera_id``); empty = default."""
    fast_render: bool = True
    """MuJoCo only: no shadows, reflections or multisampling (3.5x faster at 64 px). Applies
    to envs drawn by Gymnasium's MujocoRenderer; anywhere else it does nothing, and the
    dataset records ``fast_render: false`` (what was drawn)."""
    simple_geoms: bool = False
    """MuJoCo only: collision primitives in place of visual meshes, no textures or skybox
    (mesh-heavy scenes: several times faster; changes the pixels, envs/foreign/mujoco_render.py)."""
    free_camera: FreeCamera = field(default_factory=lambda: FreeCamera())
    """MuJoCo's free camera (``env.free_camera.fit=true``); all unset = the env's camera."""
    max_episode_steps: int = 0
    """Episode length in env steps; 0 keeps the registered default."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """More ``gym.make`` keywords (e.g. ``default_camera_config`` for MuJoCo envs)."""

    def __post_init__(self) -> None:
        if not self.id or self.id.startswith("wm/"):
            raise ValueError(f"id={self.id!r}: a foreign Gymnasium id (wm/* ids use env=<name>)")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size={self.image_size}: expected 16..256")
        if self.max_episode_steps < 0:
            raise ValueError(f"max_episode_steps={self.max_episode_steps}: must be >= 0")
        if not self.task:
            self.task = task_name(self.id)
        if isinstance(self.free_camera, dict):  # built by hand rather than by Hydra
            self.free_camera = FreeCamera(**self.free_camera)

    def make_kwargs(self) -> dict[str, Any]:
        """What `make_gym_env` takes besides the id (JSON-able, stored in dataset attrs)."""
        return {
            "image_size": self.image_size,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "fast_render": self.fast_render and draws_with_mujoco_renderer(self.id),
            **({"simple_geoms": True} if self.simple_geoms else {}),
            **({"free_camera": self.free_camera.as_dict()} if self.free_camera.as_dict() else {}),
            **dict(self.kwargs),
        }


def task_name(env_id: str) -> str:
    """``"mod:Reacher-v5"`` -> ``"reacher_v5"`` (file-name friendly)."""
    return re.sub(r"[^a-z0-9]+", "_", env_id.split(":")[-1].lower()).strip("_")


def registered_id(env_id: str) -> str:
    """``module:id`` -> ``id`` after importing ``module`` (which registers it); ids pass through."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(
                f"env id {env_id!r}: cannot import {module!r} ({exc}); install it, or drop the "
                "'module:' prefix for an id Gymnasium already knows"
            ) from exc
    return name


def _creator(env_id: str) -> Any:
    creator = gym.spec(registered_id(env_id)).entry_point
    return load_env_creator(creator) if isinstance(creator, str) else creator


def draws_with_mujoco_renderer(env_id: str) -> bool:
    """Whether the env is a Gymnasium MujocoEnv, drawn by its MujocoRenderer: the viewer
    ``fast_render`` and ``simple_geoms`` set up. An env that renders through its own
    ``mujoco.Renderer`` (or no MuJoCo at all) draws as it always does."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    creator = _creator(env_id)
    return inspect.isclass(creator) and issubclass(creator, MujocoEnv)


def takes_render_size(env_id: str) -> bool:
    """Whether the env's constructor accepts ``width`` / ``height`` (all Gymnasium MuJoCo envs)."""
    if draws_with_mujoco_renderer(env_id):
        return True
    creator = _creator(env_id)
    params = inspect.signature(creator.__init__ if inspect.isclass(creator) else creator).parameters
    return "width" in params and "height" in params


def make_gym_env(
    env_id: str,
    image_size: int = 64,
    camera_id: int = -1,
    camera_name: str = "",
    fast_render: bool = True,
    max_episode_steps: int = 0,
    simple_geoms: bool = False,
    free_camera: dict[str, Any] | None = None,
    **kwargs: Any,
) -> PixelStateAdapter:
    """``gym.make`` a foreign id in ``rgb_array`` mode and wrap it in `PixelStateAdapter`."""
    if free_camera and (camera_name or camera_id >= 0):
        raise ValueError(
            f"{env_id}: free_camera sets MuJoCo's free camera; drop camera_name/camera_id "
            f"({camera_name or camera_id}) to use it"
        )
    make_kwargs = dict(kwargs)
    if takes_render_size(env_id):
        make_kwargs.update(width=image_size, height=image_size)
        if camera_name:
            make_kwargs["camera_name"] = camera_name
        elif camera_id >= 0:
            make_kwargs["camera_id"] = camera_id
    elif camera_name or camera_id >= 0:
        raise ValueError(
            f"{env_id}: camera_id/camera_name are MuJoCo make() options this env does not take"
        )
    if max_episode_steps:
        make_kwargs["max_episode_steps"] = max_episode_steps
    env = gym.make(registered_id(env_id), render_mode="rgb_array", **make_kwargs)
    base = env.unwrapped
    if type(base).__module__.startswith("gymnasium.envs.classic_control"):
        for attr in ("screen_dim", "SCREEN_DIM"):  # pygame draws everything scaled to it
            if isinstance(getattr(base, attr, None), int):
                setattr(base, attr, image_size)
    return PixelStateAdapter(
        env,
        image_size,
        fast_render=fast_render,
        simple_geoms=simple_geoms,
        free_camera=free_camera,
    )
