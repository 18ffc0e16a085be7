"""Save and restore the simulator behind any Gymnasium env: the one door for oracles and goals.

The oracle (true dynamics per candidate plan), replay goals and dataset goals all need to put
an env back into a state it was in. ``get_sim_state(env)`` / ``set_sim_state(env, state)``
pick the first way that is correct for ``env.unwrapped``:

1. ``protocol``: the env defines ``get_sim_state() -> state`` and ``set_sim_state(state)``
   itself (every wm/* env; any user env can opt in, which is the documented way for a
   simulator this module does not know). States should be flat float arrays so that datasets
   can store them.
2. ``hooks``: an `envs.foreign.env_hooks.EnvHooks` entry with ``get_state`` / ``set_state`` is
   registered for the env's class: the env's own way, for envs we do not own (gym-pusht's
   Push-T, envs/foreign/pusht.py; users: ``register_env_hooks``). Flat float arrays.
3. ``mujoco``: a Gymnasium ``MujocoEnv`` (``model``, ``data``) or a dm_control env
   (``physics``). The state is MuJoCo's ``mjSTATE_INTEGRATION`` vector: time, qpos, qvel, act,
   warm-start accelerations, ctrl, mocap poses, userdata and plugin state, i.e. everything
   ``mj_step`` reads, followed by ``mj_forward`` so derived positions match.
4. ``classic``: Gymnasium's classic-control envs keep their whole dynamic state in the
   ``state`` attribute (CartPole, Pendulum, MountainCar, Acrobot); it is copied as an array.
5. ``deepcopy``: any other pure-Python env; ``copy.deepcopy`` of its attributes except render
   handles (pygame surfaces, viewers), restored into the same object. States are dicts, so
   they work for the oracle and replay goals but cannot be stored in a dataset.

Anything else (e.g. a Box2D world, a C++ simulator) raises `SimStateError` naming the attribute
that could not be copied and the two ways to plug the env in.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from envs.data.episode import SIM_STATE_LIMIT
from envs.foreign.env_hooks import hooks_for

# mj_getState's full integration state: time, qpos, qvel, act, qacc_warmstart, ctrl,
# mocap_pos/quat, userdata, plugin state, eq_active.
MJ_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
# Attributes that hold rendering handles, never dynamics: shared, not copied, by `deepcopy`.
RENDER_ATTRS = frozenset(
    {
        "screen",
        "surf",
        "clock",
        "isopen",
        "viewer",
        "renderer",
        "_renderer",
        "mujoco_renderer",
        "window",
        "render_mode",
        "spec",
        "metadata",
        "action_space",
        "observation_space",
    }
)


class SimStateError(TypeError):
    """The env's simulator state cannot be saved and restored by any known means."""


def mujoco_handles(env: gym.Env) -> tuple[mujoco.MjModel, mujoco.MjData] | None:
    """``(MjModel, MjData)`` of a Gymnasium MuJoCo or dm_control env, else None."""
    base = env.unwrapped
    physics = getattr(base, "physics", None)  # dm_control (ours or a shimmy wrapper)
    if physics is not None and hasattr(physics, "model") and hasattr(physics.model, "ptr"):
        return physics.model.ptr, physics.data.ptr
    model, data = getattr(base, "model", None), getattr(base, "data", None)
    if isinstance(model, mujoco.MjModel) and isinstance(data, mujoco.MjData):
        return model, data
    return None


def state_kind(env: gym.Env) -> str:
    """Which way applies: ``protocol``, ``hooks``, ``mujoco``, ``classic`` or ``deepcopy``."""
    base = env.unwrapped
    if callable(getattr(base, "get_sim_state", None)) and callable(
        getattr(base, "set_sim_state", None)
    ):
        return "protocol"
    hooks = hooks_for(env)
    if hooks is not None and hooks.get_state is not None:
        return "hooks"
    if mujoco_handles(env) is not None:
        return "mujoco"
    if type(base).__module__.startswith("gymnasium.envs.classic_control") and isinstance(
        getattr(base, "state", None), np.ndarray | tuple | list
    ):
        return "classic"
    return "deepcopy"


def get_sim_state(env: gym.Env) -> Any:
    """A copy of everything the env's next ``step`` depends on (see the module docstring)."""
    kind, base = state_kind(env), env.unwrapped
    if kind == "protocol":
        return copy.deepcopy(base.get_sim_state())
    if kind == "hooks":
        return np.array(hooks_for(env).get_state(base), np.float64)
    if kind == "mujoco":
        model, data = mujoco_handles(env)
        state = np.empty(mujoco.mj_stateSize(model, MJ_STATE))
        mujoco.mj_getState(model, data, state, MJ_STATE)
        return state
    if kind == "classic":
        return np.array(base.state, np.float64)
    return _copy_attrs(base)


def set_sim_state(env: gym.Env, state: Any) -> None:
    """Put the env back into a state returned by `get_sim_state` (same env, same task).

    A flat state with a NaN (except through an env's hooks, which say themselves what may be
    missing: Push-T's last action) or a value past `SIM_STATE_LIMIT` is refused with a
    ValueError naming the index: no simulator restores it, and a NaN pose gives NaN
    distances, not an error."""
    kind, base = state_kind(env), env.unwrapped
    _check_state(env, state, nan_ok=kind == "hooks")
    if kind == "protocol":
        base.set_sim_state(copy.deepcopy(state))
    elif kind == "hooks":
        hooks_for(env).set_state(base, np.array(state, np.float64))
    elif kind == "mujoco":
        model, data = mujoco_handles(env)
        state = np.asarray(state, np.float64)
        if state.shape != (mujoco.mj_stateSize(model, MJ_STATE),):
            raise ValueError(
                f"{_name(env)}: sim state has shape {state.shape}, expected "
                f"({mujoco.mj_stateSize(model, MJ_STATE)},) (mjSTATE_INTEGRATION)"
            )
        mujoco.mj_setState(model, data, state, MJ_STATE)
        mujoco.mj_forward(model, data)
    elif kind == "classic":
        base.state = np.array(state, np.float64)
    else:
        base.__dict__.update(copy.deepcopy(state))


def _check_state(env: gym.Env, state: Any, nan_ok: bool) -> None:
    if isinstance(state, dict):
        return  # a deepcopy state: attributes, not numbers
    values = np.asarray(state)
    if values.dtype == object or not np.issubdtype(values.dtype, np.number):
        return
    values = values.reshape(-1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (np.abs(values) > SIM_STATE_LIMIT)
    if not nan_ok:
        bad |= np.isnan(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{_name(env)}: sim state holds {int(bad.sum())} values no simulator restores "
            f"(first at index {i}: {values[i]:g}; NaN, infinite or beyond {SIM_STATE_LIMIT:g})"
        )


def storable(env: gym.Env) -> bool:
    """True when states are flat float arrays a dataset can hold (all but ``deepcopy``)."""
    return state_kind(env) != "deepcopy"


def _copy_attrs(base: gym.Env) -> dict[str, Any]:
    out = {}
    for key, value in vars(base).items():
        if key in RENDER_ATTRS:
            continue
        try:
            out[key] = copy.deepcopy(value)
        except Exception as exc:  # noqa: BLE001  (re-raised with the fix)
            raise SimStateError(
                f"{type(base).__name__}: cannot save its simulator state: copy.deepcopy of "
                f"attribute {key!r} ({type(value).__name__}) failed ({exc}). Define "
                "get_sim_state() -> state and set_sim_state(state) on the env, or register "
                "EnvHooks(get_state=..., set_state=...) for its class (envs/foreign/env_hooks.py)"
            ) from exc
    return out


def _name(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__
