"""Close offscreen renderers before MuJoCo's EGL teardown at interpreter exit.

Renderers left to the garbage collector at exit print ``EGL_NOT_INITIALIZED ...
eglDestroyContext`` tracebacks: ``mujoco.egl`` has already called ``eglTerminate`` from its own
atexit hook. `close_at_exit(env)` is called right after an env's first render and moves our
hook after mujoco's; atexit runs hooks last-in first-out, so envs close first.
"""

from __future__ import annotations

import atexit
import weakref

import gymnasium as gym

_LIVE: weakref.WeakSet = weakref.WeakSet()


def _close_live() -> None:
    for env in list(_LIVE):
        env.close()


def close_at_exit(env: gym.Env) -> None:
    """Close ``env`` at exit (if still alive) before the GL platform is torn down.

    The hook moves to the end of the atexit list on every call: mujoco registers its
    ``eglTerminate`` at the first GL context, which can come after an earlier env's first
    frame (classic-control envs draw without GL), and the hook must still run before it."""
    atexit.unregister(_close_live)
    atexit.register(_close_live)
    _LIVE.add(env)
