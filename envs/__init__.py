"""Simulated robots for the world model: Franka tabletop tasks and dm_control tasks from pixels.

``import envs`` registers the Gymnasium ids below (namespace ``wm``), and
``pusht/PushTRelative-v0`` (gym-pusht's Push-T with relative actions, a foreign env made
through envs/foreign/make.py like gym-pusht's own id). Every wm/* env returns
``{"pixels": uint8 (H, W, 3), "state": float32 (7,)}`` observations, takes float32 (7,) actions
and reports ``success`` / ``distance`` in every ``info``; ``reset()`` info also carries
``goal_pixels`` / ``goal_state`` (the unwrapped env keeps them as attributes too).
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

# Headless offscreen rendering unless the user chose a backend (glfw needs a display).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# pygame (classic-control rendering) runs SDL, which by default turns SIGTERM into a quit event
# nobody reads: collect workers then ignore Pool.terminate() and the merge hangs. Headless too.
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
from gymnasium.envs.registration import register, registry  # noqa: E402

# Our -v0 / -v1 ids are sibling tasks (PandaReach-v1: targets anywhere in the workspace;
# DMCReacherEasy-v1: the arm drawn thicker), not revisions, so Gymnasium's "-v0 is out of
# date, consider v1" would send users to a different task.
warnings.filterwarnings(
    "ignore", message=r".*environment wm/\w+-v0 is out of date", category=DeprecationWarning
)

# Bumped whenever the simulated scene or controller changes what an action or a frame means
# (recorded in every dataset as ``env_revision``): 1 = 4 cm cube, IK to 0.1 mm, noslip 2;
# 2 = 5 cm cube, IK to 1 mm, no noslip.
ENV_REVISION = 2

ENV_IDS = (
    "wm/PandaReach-v0",
    "wm/PandaReach-v1",
    "wm/PandaPush-v0",
    "wm/PandaPickPlace-v0",
    "wm/DMCReacherEasy-v0",
    "wm/DMCReacherEasy-v1",
    "wm/DMCPointMassEasy-v0",
    "wm/OGBenchCube-v0",
)
MAX_EPISODE_STEPS = {
    "wm/PandaReach-v0": 25,
    "wm/PandaReach-v1": 25,
    "wm/PandaPush-v0": 40,
    "wm/PandaPickPlace-v0": 40,
    "wm/DMCReacherEasy-v0": 50,
    "wm/DMCReacherEasy-v1": 50,
    "wm/DMCPointMassEasy-v0": 50,
    "wm/OGBenchCube-v0": 200,  # OGBench's visual-cube-single episode length
}
_ENTRY_POINTS = {
    "wm/PandaReach-v0": ("envs.panda.tasks:PandaReachEnv", {}),
    # v1: targets anywhere in the reachable workspace (v0: near the start pose only).
    "wm/PandaReach-v1": ("envs.panda.tasks:PandaReachWorkspaceEnv", {}),
    "wm/PandaPush-v0": ("envs.panda.tasks:PandaPushEnv", {}),
    "wm/PandaPickPlace-v0": ("envs.panda.tasks:PandaPickPlaceEnv", {}),
    "wm/DMCReacherEasy-v0": ("envs.dmc:DMCEnv", {"task": "reacher_easy"}),
    # v1: the same task with the arm drawn 3x thicker (rendering only), visible at 64 px.
    "wm/DMCReacherEasy-v1": ("envs.dmc:DMCEnv", {"task": "reacher_easy", "arm_scale": 3.0}),
    "wm/DMCPointMassEasy-v0": ("envs.dmc:DMCEnv", {"task": "point_mass_easy"}),
    "wm/OGBenchCube-v0": ("envs.ogbench.cube:OGBenchCubeEnv", {}),
}

for _id, (_entry, _kwargs) in _ENTRY_POINTS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point=_entry,
            kwargs=_kwargs,
            max_episode_steps=MAX_EPISODE_STEPS[_id],
            disable_env_checker=True,  # checked by tests/test_envs.py instead of every make()
        )


# gym-pusht's Push-T with the anchors' relative actions (envs/foreign/pusht.py): a foreign
# env behind the pixel adapter like gym-pusht's own id, so outside the wm/ namespace. The
# entry point is a string: gym-pusht (the [pusht] extra) is imported only when it is made.
PUSHT_RELATIVE_ID = "pusht/PushTRelative-v0"
if PUSHT_RELATIVE_ID not in registry:
    register(
        id=PUSHT_RELATIVE_ID,
        entry_point="envs.foreign.pusht:PushTRelativeEnv",
        kwargs={"obs_type": "state"},
        max_episode_steps=300,  # gym-pusht's
    )


def make_vec(
    env_id: str, num_envs: int, context: str = "spawn", **kwargs: Any
) -> gym.vector.AsyncVectorEnv:
    """``num_envs`` copies of a wm/* env in worker processes.

    ``spawn`` (or ``forkserver``), never ``fork``: a forked child inherits the parent's GL state
    and hangs once the parent has rendered. Workers make ``"envs:<id>"``, which imports this
    package (and so registers the ids) in the fresh interpreter before ``gym.make``.
    """
    if context == "fork":
        raise ValueError(
            "context='fork' hangs once the parent has rendered; use spawn or forkserver"
        )
    factory = functools.partial(gym.make, f"envs:{env_id}", **kwargs)
    return gym.vector.AsyncVectorEnv([factory] * num_envs, context=context, shared_memory=True)


__all__ = ["ENV_IDS", "ENV_REVISION", "MAX_EPISODE_STEPS", "PUSHT_RELATIVE_ID", "make_vec"]
