"""Close offscreen renderers before MuJoCo's EGL teardown at interpreter exit.

Renderers left to the garbage collector at exit print ``EGL_NOT_INITIALIZED ...
eglDestroyContext`` tracebacks: ``mujoco.egl`` has already called ``eglTerminate`` from its own
atexit hook. `close_at_exit(env)` is called right after an env's first render, so our hook is
registered after mujoco's, and atexit runs hooks last-in first-out: envs close first.
"""

from __future__ import annotations

import atexit
import weakref

import gymnasium as gym

_LIVE: weakref.WeakSet = weakref.WeakSet()
_HOOKED: list[bool] = []


def _close_live() -> None:
    for env in list(_LIVE):
        env.close()


def close_at_exit(env: gym.Env) -> None:
    """Close ``env`` at exit (if still alive) before the GL platform is torn down."""
    if not _HOOKED:
        atexit.register(_close_live)
        _HOOKED.append(True)
    _LIVE.add(env)
