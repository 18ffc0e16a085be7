"""Task distance with units, for goals given as a simulator state (replay and dataset goals).

A goal is "reached" when task-relevant positions are close to where they were in the goal
state. ``TaskDistance.features(env)`` reads those positions; ``distance(a, b)`` is the largest
Euclidean error over them. Which positions, first match wins:

1. ``fn="module:callable"``: the user's ``callable(env) -> array (K, D)`` of positions in
   metres (or any unit the user states with ``unit``).
2. The env's own ``task_positions() -> (K, D)`` in metres (wm/Panda*: end-effector and cube).
3. A `TaskMeasure` registered for the env's class (envs/foreign/env_hooks.py): the env's own parts,
   distance, unit and success threshold (gym-pusht's Push-T: DINO-WM's and LeWM's goal-state
   test, envs/foreign/pusht.py).
4. MuJoCo / dm_control envs: centres of mass of named bodies (``bodies``; default every body
   except the world), metres. Centres of mass, not body frames: a hinged pole's frame never
   moves while its centre of mass does.
5. Known classic-control envs: Pendulum's tip, CartPole's cart and pole tip, Acrobot's tip,
   MountainCar's car, in the env's own length units (metres for Pendulum and Acrobot links
   of 1 m).
6. Fallback, labelled ``state norm (mixed units)``: the flattened sim state. Angles and lengths
   mix here; set ``fn`` for a real measure.

Thresholds default to the env's own ``task_threshold()`` (metres, with ``task_positions``;
OGBench cube: 0.04, its success test), else per measure (``DEFAULT_THRESHOLDS``); they are
printed with every result.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np

from envs.common.sim_state import get_sim_state, mujoco_handles
from envs.foreign.env_hooks import hooks_for

DEFAULT_THRESHOLDS = {
    "body_com": 0.05,  # m: a few link widths for Gymnasium's MuJoCo arms (Reacher links 0.1 m)
    "classic": 0.1,  # env length units: 0.1 of Pendulum's 1 m pole ~ 6 degrees
    "user": 0.05,
    "state_norm": 0.1,  # the old replay threshold; mixed units
}


@dataclass
class DistanceConfig:
    """How replay / dataset goals are scored (``env.distance.*`` in wm-eval)."""

    fn: str = ""
    """``module:callable`` taking the env and returning positions (K, D); empty = automatic."""
    bodies: list[str] = field(default_factory=list)
    """MuJoCo body names whose centres of mass are compared; empty = every body but the world."""
    threshold: float = 0.0
    """Success below this distance; 0 = the measure's default (DEFAULT_THRESHOLDS)."""
    unit: str = "m"
    """Unit of a user ``fn``'s positions (for the printed results)."""

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError(f"distance.threshold={self.threshold}: must be >= 0")
        if self.fn and ":" not in self.fn:
            raise ValueError(f"distance.fn={self.fn!r}: expected 'module:callable'")


def load_callable(spec: str) -> Callable:
    """Import ``module:attr`` (dots allowed in attr); errors name what is missing."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{spec!r}: expected 'module:callable'")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj


class TaskDistance:
    """Positions of the task-relevant parts of an env, and the distance between two readings."""

    def __init__(self, env: gym.Env, cfg: DistanceConfig | None = None) -> None:
        cfg = cfg or DistanceConfig()
        base = env.unwrapped
        handles = mujoco_handles(env)
        hooks = hooks_for(env)
        measure = hooks.measure if hooks is not None else None
        self._distance = _max_norm
        self._parts = _part_norms
        if cfg.fn:
            user = load_callable(cfg.fn)
            self.kind, self.unit = "user", cfg.unit
            self.label = f"{cfg.fn} ({cfg.unit})"
            self._read: Callable[[], np.ndarray] = lambda: np.asarray(user(env), np.float64)
        elif callable(getattr(base, "task_positions", None)):
            self.kind, self.unit = "user", "m"
            self.label = f"max error over {type(base).__name__}.task_positions() (m)"
            self._read = lambda: np.asarray(base.task_positions(), np.float64)
        elif measure is not None:
            self.kind, self.unit, self.label = "env", measure.unit, measure.label
            self._read = lambda: np.asarray(measure.features(base), np.float64)
            self._distance, self._parts = measure.distance, measure.part_distances
        elif handles is not None:
            model, data = handles
            ids = _body_ids(model, cfg.bodies, env)
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in ids]
            self.kind, self.unit = "body_com", "m"
            self.label = f"max centre-of-mass error over bodies {names} (m)"
            self._read = lambda: np.array(data.xipos[ids], np.float64)  # (K, 3)
        elif type(base).__name__ in CLASSIC_POSITIONS:
            fn = CLASSIC_POSITIONS[type(base).__name__]
            self.kind, self.unit = "classic", "env length units"
            self.label = f"{fn.__doc__.strip()} (env length units)"
            self._read = lambda: fn(base)
        else:
            self.kind, self.unit = "state_norm", "mixed units"
            self.label = "state norm (mixed units: set env.distance.fn for a real measure)"
            self._read = lambda: _flat_state(env)
        own = getattr(base, "task_threshold", None)  # the env's own success radius, if it has one
        own = float(own()) if callable(own) and self.kind == "user" and not cfg.fn else 0.0
        if measure is not None and self.kind == "env":
            own = measure.threshold
        self.threshold = cfg.threshold or own or DEFAULT_THRESHOLDS[self.kind]

    def features(self) -> np.ndarray:
        """Positions (K, D) of the env as it is now."""
        return np.atleast_2d(self._read()).copy()

    def __call__(self, current: np.ndarray, goal: np.ndarray) -> float:
        """Distance between two `features` readings: the largest per-part Euclidean error, or
        the registered measure's own."""
        return float(self._distance(current, goal))

    def part_distances(self, current: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(K,) per-part distances on the threshold's scale (which parts moved)."""
        return np.asarray(self._parts(current, goal), np.float64)

    def describe(self) -> dict[str, object]:
        """What results.json records about the measure."""
        return {"distance": self.label, "unit": self.unit, "threshold": self.threshold}


def _max_norm(current: np.ndarray, goal: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(current - goal, axis=-1)))


def _part_norms(current: np.ndarray, goal: np.ndarray) -> np.ndarray:
    return np.linalg.norm(current - goal, axis=-1)


def _flat_state(env: gym.Env) -> np.ndarray:
    """The sim state as one row (1, N); numeric attributes only for ``deepcopy`` states."""
    state = get_sim_state(env)
    if isinstance(state, dict):
        parts = [np.ravel(v) for _, v in sorted(state.items()) if _numeric(v)]
        state = np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(state, np.float64).reshape(1, -1)


def _numeric(value: object) -> bool:
    return (
        isinstance(value, int | float | np.ndarray)
        and not isinstance(value, bool)
        and (not isinstance(value, np.ndarray) or np.issubdtype(value.dtype, np.number))
    )


def _body_ids(model: mujoco.MjModel, names: list[str], env: gym.Env) -> list[int]:
    if not names:
        return list(range(1, model.nbody))
    ids = []
    for name in names:
        i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if i < 0:
            known = [
                mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(model.nbody)
            ]
            raise ValueError(f"distance.bodies: {name!r} is not a body of {env.spec}; have {known}")
        ids.append(i)
    return ids


def pendulum_tip(base: gym.Env) -> np.ndarray:
    """pendulum tip position"""
    theta = base.state[0]
    return np.array([[np.sin(theta), np.cos(theta)]]) * getattr(base, "l", 1.0)


def cartpole_points(base: gym.Env) -> np.ndarray:
    """cart and pole-tip positions"""
    x, _, theta, _ = base.state
    tip = [x + 2 * base.length * np.sin(theta), 2 * base.length * np.cos(theta)]
    return np.array([[x, 0.0], tip])


def acrobot_tip(base: gym.Env) -> np.ndarray:
    """acrobot tip position"""
    t1, t2 = base.state[0], base.state[1]
    l1, l2 = base.LINK_LENGTH_1, base.LINK_LENGTH_2
    p1 = np.array([l1 * np.sin(t1), -l1 * np.cos(t1)])
    return np.array([p1, p1 + [l2 * np.sin(t1 + t2), -l2 * np.cos(t1 + t2)]])


def mountain_car_position(base: gym.Env) -> np.ndarray:
    """car position"""
    return np.array([[base.state[0]]])


CLASSIC_POSITIONS = {
    "PendulumEnv": pendulum_tip,
    "CartPoleEnv": cartpole_points,
    "AcrobotEnv": acrobot_tip,
    "Continuous_MountainCarEnv": mountain_car_position,
    "MountainCarEnv": mountain_car_position,
}
