"""What this repo needs from an env it does not own, registered by the env's class.

A foreign env (e.g. gym-pusht's ``PushTEnv``) knows how to put itself back into a state, what
its task is and how it scores it, but under names this repo cannot guess. An `EnvHooks` entry
says it once, per env class; every layer that needs it reads the same entry:

- ``get_state`` / ``set_state``: envs/common/sim_state.py (oracle, replay goals,
  protocol=dataset, the simulator states ``wm-collect`` records). States are flat float arrays.
- ``measure``: envs/common/distance.py, how close the env is to a goal given as a state, in the
  env's own units and with its own success test.
- ``goal``: envs/foreign/adapter.py, the goal image and state of the env's own task
  (protocol=task).
- ``task_info``: envs/foreign/adapter.py, ``success`` and ``distance`` of the env's own task
  each step.
- ``render``: envs/foreign/adapter.py, a frame at the requested size as the env's own pixel
  observation draws it.
- ``expert``: envs/common/experts.py, a scripted policy for ``policy.name=expert`` (play data).
- ``step_dynamics``: envs/common/oracle.py, the physics of one control step without the rest.

Entries are looked up along the class's MRO, by ``"module.QualName"``. Built-in entries are
imported only when an env of that class shows up (`BUILTIN`), so this module imports no
simulator. A user plugs in an env with `register_env_hooks`, e.g. in the package that
registers the env (``wm-collect env.id=my_pkg:MyEnv-v0`` imports ``my_pkg`` first); an env
that defines ``get_sim_state`` / ``set_sim_state`` itself needs no entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class TaskMeasure:
    """How close an env is to a goal state, in the env's own terms.

    ``features(env)`` reads (K, D) task parts from the unwrapped env; ``distance(a, b)`` is the
    scalar compared with ``threshold`` (success below it); ``part_distances(a, b)`` is (K,), one
    per part on the same scale, for "did this part move" questions (the moving subset).
    """

    features: Callable[[gym.Env], np.ndarray]
    distance: Callable[[np.ndarray, np.ndarray], float]
    part_distances: Callable[[np.ndarray, np.ndarray], np.ndarray]
    threshold: float
    unit: str
    label: str


@dataclass(frozen=True)
class EnvHooks:
    """One env class's entry; every field is optional (None = the generic way applies)."""

    get_state: Callable[[gym.Env], np.ndarray] | None = None
    """Unwrapped env -> flat float64 array of everything its next ``step`` depends on."""
    set_state: Callable[[gym.Env, np.ndarray], None] | None = None
    """Put the unwrapped env back into a ``get_state`` array (same env instance)."""
    measure: TaskMeasure | None = None
    """Distance to a goal given as a state (replay and dataset goals)."""
    goal: Callable[[gym.Env, int], tuple[np.ndarray, np.ndarray]] | None = None
    """``(unwrapped env, image size) -> (goal pixels (S, S, 3) uint8, goal state (7,))`` of
    the env's own task, called after each reset."""
    task_info: Callable[[gym.Env, dict[str, Any]], dict[str, Any]] | None = None
    """``(unwrapped env, info) -> {"success": bool, "distance": float}`` for the own task."""
    task_description: dict[str, Any] | None = None
    """What results record about ``task_info``: ``distance``, ``unit``, ``threshold``."""
    render: Callable[[gym.Env, int], np.ndarray] | None = None
    """``(unwrapped env, size) -> (size, size, 3) uint8`` frame."""
    expert: Callable[[gym.Env, np.random.Generator, float], Callable] | None = None
    """``(env, rng, noise) -> policy (obs, info) -> action`` for the env's own task."""
    step_dynamics: Callable[[gym.Env, np.ndarray], None] | None = None
    """``(unwrapped env, native action)``: the control step's physics only, no observation,
    reward or info (the oracle steps thousands of candidate plans); must equal ``step``'s."""
    terminates_on_success: bool = False
    """The env's ``terminated`` means only "own task solved" (Push-T: T on the target), so
    goals given as a state ignore it instead of ending the episode."""


# Env classes whose entries ship with this repo: "module.QualName" -> "module:attribute".
BUILTIN = {"gym_pusht.envs.pusht.PushTEnv": "envs.foreign.pusht:HOOKS"}
_REGISTRY: dict[str, EnvHooks] = {}


def class_key(cls: type) -> str:
    """``"module.QualName"``, the registry key of an env class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_env_hooks(env_class: type | str, hooks: EnvHooks) -> None:
    """Use ``hooks`` for ``env_class`` and its subclasses (a class or ``"module.QualName"``)."""
    if not isinstance(hooks, EnvHooks):
        raise TypeError(f"hooks must be an EnvHooks, got {type(hooks).__name__}")
    if (hooks.get_state is None) != (hooks.set_state is None):
        raise ValueError("EnvHooks: give both get_state and set_state, or neither")
    _REGISTRY[env_class if isinstance(env_class, str) else class_key(env_class)] = hooks


def hooks_for(env: gym.Env) -> EnvHooks | None:
    """The entry of ``env.unwrapped``'s class (or its nearest registered base), else None."""
    for cls in type(env.unwrapped).__mro__:
        key = class_key(cls)
        if key not in _REGISTRY and key in BUILTIN:
            module, _, attr = BUILTIN[key].partition(":")
            _REGISTRY[key] = getattr(importlib.import_module(module), attr)
        if key in _REGISTRY:
            return _REGISTRY[key]
    return None
