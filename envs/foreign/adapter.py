"""Turn any Gymnasium env that renders ``rgb_array`` into a wm/* data source.

``PixelStateAdapter(env)`` returns ``{"pixels": (S, S, 3) uint8, "state": (7,) float32}``:
pixels are ``env.render()`` resized to ``image_size``; the state is ``state_fn(env, obs)`` or, by
default, the env's own observation flattened and zero-padded / truncated to 7 numbers. A Box
action with at most 7 dims is padded to 7 with zero-width bounds (the extra dims are ignored),
so data from any source has the same shapes. ``info`` always carries ``success`` (from the
env's ``success`` / ``is_success`` info key, else False) and ``distance`` (``distance`` key, else
inf: unknown). Without ``goal_fn`` there is no goal image: `envs.collect.rollout.record_episode`
then stores the episode's final frame as its goal (hindsight relabelling).

An env class with an `envs.foreign.env_hooks.EnvHooks` entry (gym-pusht's Push-T) is drawn,
scored and given its own goal image by that entry: ``render`` replaces ``env.render()``,
``task_info`` sets ``success`` / ``distance``, ``goal`` gives the reset's goal image and state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from PIL import Image

from envs.common.render_exit import close_at_exit
from envs.foreign.env_hooks import hooks_for
from envs.foreign.mujoco_render import (
    apply_free_camera,
    check_free_camera,
    simple_geoms_model,
    simplify_scene,
)


class PixelStateAdapter(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Pixels + 7-d state observations and a (7,) action for an arbitrary rgb_array env."""

    def __init__(
        self,
        env: gym.Env,
        image_size: int = 64,
        state_fn: Callable[[gym.Env, Any], np.ndarray] | None = None,
        goal_fn: Callable[[gym.Env], tuple[np.ndarray, np.ndarray]] | None = None,
        action_dim: int = 7,
        fast_render: bool = False,
        simple_geoms: bool = False,
        free_camera: dict[str, Any] | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            image_size=image_size,
            state_fn=state_fn,
            goal_fn=goal_fn,
            action_dim=action_dim,
            fast_render=fast_render,
            simple_geoms=simple_geoms,
            free_camera=free_camera,
        )
        gym.Wrapper.__init__(self, env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"{env.spec.id if env.spec else env}: render_mode={env.render_mode!r}; "
                "create it with gym.make(..., render_mode='rgb_array')"
            )
        self.image_size, self.state_fn, self.goal_fn = image_size, state_fn, goal_fn
        self._rendered = False
        # MuJoCo viewer settings, applied once its viewer exists (envs/foreign/mujoco_render.py).
        self._viewer_setup = {
            "fast_render": fast_render,
            "simple_geoms": simple_geoms,
            "free_camera": dict(free_camera or {}),
        }
        self._viewer_pending = fast_render or simple_geoms or bool(free_camera)
        if (simple_geoms or free_camera) and getattr(
            env.unwrapped, "mujoco_renderer", None
        ) is None:
            raise ValueError(
                f"{env.spec.id if env.spec else env}: simple_geoms / free_camera need a "
                "Gymnasium MujocoEnv (its mujoco_renderer)"
            )
        if free_camera:
            check_free_camera(free_camera)
        self._hooks = hooks_for(env)
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )
        inner = env.action_space
        self._n_act = None
        if (
            isinstance(inner, gym.spaces.Box)
            and len(inner.shape) == 1
            and inner.shape[0] <= action_dim
        ):
            self._n_act = inner.shape[0]
            low = np.zeros(action_dim, np.float32)
            high = np.zeros(action_dim, np.float32)
            low[: self._n_act], high[: self._n_act] = inner.low, inner.high
            self.action_space = gym.spaces.Box(low, high, dtype=np.float32)

    @property
    def control_hz(self) -> float:
        """Actions per second: the env's own ``control_hz`` (Push-T, whose ``dt`` is the physics
        step), else ``1 / env.dt`` (MuJoCo, classic control), else ``render_fps``."""
        own = getattr(self.env.unwrapped, "control_hz", None)
        if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
            return float(own)
        dt = getattr(self.env.unwrapped, "dt", None)
        if isinstance(dt, int | float) and dt > 0:
            return 1.0 / float(dt)
        return float(self.env.metadata.get("render_fps") or 0.0)

    def render(self) -> np.ndarray:
        """The env's frame: its hooks' ``render`` at ``image_size`` where it has one."""
        if self._hooks is not None and self._hooks.render is not None:
            return self._hooks.render(self.env.unwrapped, self.image_size)
        return self.env.render()

    def _pixels(self) -> np.ndarray:
        if self._viewer_pending:
            self._viewer_pending = not _setup_mujoco_viewer(
                self.env.unwrapped, **self._viewer_setup
            )
        frame = np.asarray(self.render(), np.uint8)
        if not self._rendered:  # the GL context exists now: close it before EGL's teardown
            close_at_exit(self)
            self._rendered = True
        if frame.shape[:2] != (self.image_size, self.image_size):
            img = Image.fromarray(frame).resize((self.image_size, self.image_size), Image.BILINEAR)
            frame = np.asarray(img)
        return frame[..., :3].copy()  # (S, S, 3)

    def _state(self, obs: Any) -> np.ndarray:
        if self.state_fn is not None:
            flat = np.asarray(self.state_fn(self.env, obs), np.float32).ravel()
        else:
            flat = np.asarray(gym.spaces.flatten(self.env.observation_space, obs), np.float32)
        return np.pad(flat[:7], (0, max(0, 7 - flat[:7].size)))  # (7,)

    def _wrap(self, obs: Any, info: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        info = dict(info)
        if self._hooks is not None and self._hooks.task_info is not None:
            info.update(self._hooks.task_info(self.env.unwrapped, info))
        info["success"] = bool(info.get("success", info.get("is_success", False)))
        info["distance"] = float(info.get("distance", np.inf))
        if self.goal_fn is not None:
            info["goal_pixels"], info["goal_state"] = self.goal_fn(self.env)
        return {"pixels": self._pixels(), "state": self._state(obs)}, info

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        obs, info = self._wrap(obs, info)
        if self.goal_fn is None and self._hooks is not None and self._hooks.goal is not None:
            pixels, state = self._hooks.goal(self.env.unwrapped, self.image_size)
            info["goal_pixels"], info["goal_state"] = pixels, np.asarray(state, np.float32)
        return obs, info

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._n_act is not None:
            action = np.clip(action, self.action_space.low, self.action_space.high)[: self._n_act]
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._wrap(obs, info)
        return obs, float(reward), terminated, truncated, info


def _setup_mujoco_viewer(
    base: gym.Env, fast_render: bool, simple_geoms: bool, free_camera: dict[str, Any]
) -> bool:
    """Set up a Gymnasium MujocoEnv's offscreen viewer before its first frame.

    ``fast_render``: no shadows, reflections or multisampling, 3.5x faster at 64 px on a CPU
    (Reacher-v5: 72 -> 258 steps/s rendered). ``simple_geoms``: the viewer draws a
    rendering-only copy of the model with collision primitives for meshes;
    ``free_camera``: the free camera's pose (both envs/foreign/mujoco_render.py). Returns whether it
    applied (the viewer exists only after the first render), so the caller can stop trying.
    """
    renderer = getattr(base, "mujoco_renderer", None)
    if renderer is None:
        return True  # not a MuJoCo env: nothing to do, ever
    if getattr(renderer, "viewer", None) is None:
        if simple_geoms:  # the viewer is built from renderer.model: physics keeps base.model
            renderer.model = simple_geoms_model(base.model)
        if fast_render:
            renderer.model.vis.quality.offsamples = 0  # read when the GL context is made
        renderer.render(base.render_mode)  # creates the viewer
    viewer = renderer.viewer
    if fast_render or simple_geoms:
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            viewer.scn.flags[flag] = 0
    if simple_geoms:
        simplify_scene(viewer.scn, viewer.vopt)
    if free_camera:
        apply_free_camera(viewer.cam, free_camera, base.model, base.data)
    return True
