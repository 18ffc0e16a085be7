"""A pure-NumPy env that registers itself on import, for the ``module:id`` and deepcopy paths.

``gym.make("tests.toy_point_env:ToyPoint-v0")`` imports this module first (Gymnasium's
``module:id`` form), which registers the id.
"""

from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register, registry


class ToyPointEnv(gym.Env):
    """A point in the unit square moved by velocity commands; drawn as a white dot."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = "rgb_array", unpicklable: bool = False) -> None:
        self.render_mode = render_mode
        self.action_space = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)
        self.observation_space = gym.spaces.Box(0, 1, (2,), np.float32)
        self.pos = np.zeros(2)
        self.dt = 0.1
        if unpicklable:  # stands in for a C++ simulator handle (e.g. a Box2D world)
            self.world = threading.Lock()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(0.2, 0.8, 2)
        return self.pos.astype(np.float32), {}

    def step(self, action):
        self.pos = np.clip(self.pos + np.clip(action, -0.1, 0.1), 0, 1)
        return self.pos.astype(np.float32), 0.0, False, False, {}

    def render(self):
        frame = np.zeros((32, 32, 3), np.uint8)
        i, j = (self.pos * 31).astype(int)
        frame[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2] = 255
        return frame


class OwnRendererEnv(ToyPointEnv):
    """A MuJoCo scene drawn through its own ``mujoco.Renderer`` (shadows on), as pip-installed
    arm envs do, rather than Gymnasium's MujocoRenderer: ``fast_render`` cannot reach it."""

    XML = """<mujoco><worldbody><light pos="0 0 2" castshadow="true"/>
      <geom type="plane" size="1 1 .1"/><body name="ball" pos="0 0 .1"><freejoint/>
      <geom type="sphere" size=".05" rgba="1 0 0 1"/></body></worldbody></mujoco>"""

    def __init__(self, render_mode: str | None = "rgb_array", width: int = 32) -> None:
        import mujoco

        super().__init__(render_mode)
        self.model = mujoco.MjModel.from_xml_string(self.XML)
        self.data = mujoco.MjData(self.model)
        self.width, self._renderer = width, None

    def render(self):
        import mujoco

        from envs.common.render_exit import close_at_exit

        if self._renderer is None:  # as envs/panda/env.py: closed before EGL's teardown
            self._renderer = mujoco.Renderer(self.model, self.width, self.width)
            close_at_exit(self)
        self.data.qpos[:2] = self.pos - 0.5
        mujoco.mj_forward(self.model, self.data)
        self._renderer.update_scene(self.data)
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


if "ToyPoint-v0" not in registry:
    register("ToyPoint-v0", entry_point=ToyPointEnv, max_episode_steps=20)
if "OwnRenderer-v0" not in registry:
    register("OwnRenderer-v0", entry_point=OwnRendererEnv, max_episode_steps=5)


def position(env: gym.Env) -> np.ndarray:
    """User distance function for ``env.distance.fn``: the point's position (1, 2)."""
    return env.unwrapped.pos[None].copy()


def hold_still(env: gym.Env, seed: int | None = None, noise: float = 0.0):
    """User behaviour-policy factory for ``policy.name``: zero actions."""
    return lambda obs, info: np.zeros(env.action_space.shape, np.float32)
