"""Data-collection policies: scripted experts (privileged simulator state) and random exploration.

A policy is a callable ``(obs, info) -> action (7,) float32``. Experts are stateless waypoint
controllers that read the true cube / TCP / target positions from the unwrapped env every step,
so they recover from their own mistakes; ``noise`` adds Gaussian noise with standard deviation
``noise * bound`` per action dimension (bounds from ``env.action_space``). Around noise 0.3-0.5
the Push/PickPlace experts fail a good share of episodes, which is what a DROID-like mix of good
and failed attempts needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from envs.foreign.env_hooks import hooks_for
from envs.panda.model import CUBE_HALF

BehaviourPolicy = Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray]
"""What acts while data is collected or a replay goal is made: ``(obs, info) -> action``.
Not the agent's `Policy` (agent/policy.py), which takes a goal image and acts on pixels."""

HOVER = 0.08  # m above the cube centre when approaching from above
PUSH_Z = 0.025  # m, TCP height while pushing (pads 1.5 cm above the table)
PUSH_STEP = 0.04  # m per step while in contact: faster pushes fling the cube


def make_policy(
    name: str, env: gym.Env, noise: float = 0.0, seed: int | None = None
) -> BehaviourPolicy:
    """Build a policy for ``env`` (wrapped or not).

    ``random`` (uniform in the bounds) and ``smooth`` (random, temporally correlated) work for
    any Box action; ``expert`` only for the wm/* envs in `EXPERT_ENVS` (for wm/OGBenchCube-v0
    it is OGBench's Markov oracle) and envs whose `envs.foreign.env_hooks.EnvHooks` entry has
    one (gym-pusht's Push-T: a scripted pusher, envs/foreign/pusht.py); ``ogbench_plan`` /
    ``ogbench_markov`` are OGBench's cube oracles chaining tasks (envs/ogbench/oracle.py);
    ``module:callable`` is a user factory called as ``callable(env, seed=seed, noise=noise)``
    returning the policy.
    """
    if noise < 0:
        raise ValueError(f"noise={noise}: must be >= 0")
    if ":" in name:
        from envs.common.distance import load_callable

        return load_callable(name)(env, seed=seed, noise=noise)
    space = env.action_space
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    rng = np.random.default_rng(seed)
    if name == "random":
        return lambda obs, info: rng.uniform(low, high).astype(np.float32)
    if name == "smooth":
        return _smooth_random(low, high, rng)
    if name in ("ogbench_plan", "ogbench_markov"):  # OGBench's scripted cube oracles
        from envs.ogbench.oracle import make_oracle_policy

        return make_oracle_policy(env, name.removeprefix("ogbench_"), noise=noise, seed=seed)
    if name != "expert":
        raise ValueError(
            f"policy {name!r}: expected 'expert', 'random', 'smooth' or 'module:callable'"
        )
    base = env.unwrapped
    hooks = hooks_for(env)
    if hooks is not None and hooks.expert is not None:
        return hooks.expert(env, rng, noise)
    if type(getattr(base, "cfg", None)).__name__ == "OGBenchCubeConfig":  # OGBench's oracle
        from envs.ogbench.oracle import make_oracle_policy

        return make_oracle_policy(env, "markov", noise=noise, seed=seed, chain_tasks=False)
    cfg = getattr(base, "cfg", None)
    expert = _EXPERTS.get(f"{type(cfg).__name__}:{getattr(cfg, 'task', '')}")
    if expert is None:
        raise ValueError(
            f"no scripted expert for {env.spec.id if env.spec else type(base).__name__}: "
            f"experts exist for {', '.join(EXPERT_ENVS)}, gym_pusht/PushT-v0 and "
            "pusht/PushTRelative-v0; use a random, smooth or module:callable behaviour policy, "
            "or the oracle as the reference"
        )

    def policy(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        action = expert(base, obs, high)
        action = action + rng.normal(size=action.shape) * noise * high
        return np.clip(action, low, high).astype(np.float32)

    return policy


def _smooth_random(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> BehaviourPolicy:
    """Ornstein-Uhlenbeck-like exploration: each action keeps 80 % of the last one plus fresh
    uniform noise, so pushes persist over ~5 steps (pumps a pendulum, moves an arm across the
    workspace) where white noise mostly jitters in place."""
    centre, half = (high + low) / 2, (high - low) / 2
    last = np.zeros_like(low)

    def policy(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        nonlocal last
        last = np.clip(0.8 * last + 0.6 * rng.uniform(-1, 1, size=low.shape), -1, 1)
        return (centre + last * half).astype(np.float32)

    return policy


def _toward(current: np.ndarray, waypoint: np.ndarray, max_step: np.ndarray | float) -> np.ndarray:
    return np.clip(waypoint - current, -max_step, max_step)


def _action(delta_xyz: np.ndarray, dgripper: float) -> np.ndarray:
    return np.r_[delta_xyz, 0.0, 0.0, 0.0, dgripper]


def _reach(env: Any, obs: dict[str, np.ndarray], high: np.ndarray) -> np.ndarray:
    return _action(_toward(env.ee_pos(), env.goal_pos, high[:3]), 0.0)


def _push(env: Any, obs: dict[str, np.ndarray], high: np.ndarray) -> np.ndarray:
    ee, cube, target = env.ee_pos(), env.cube_pos(), env.goal_pos
    to_target = target[:2] - cube[:2]
    if np.linalg.norm(to_target) < 0.015:  # on target: hold still rather than fiddle
        return _action(np.zeros(3), -1.0)
    direction = to_target / max(np.linalg.norm(to_target), 1e-6)  # (2,) push direction
    rel = ee[:2] - cube[:2]
    along = rel @ direction  # < 0 when the TCP is behind the cube
    lateral = abs(rel[0] * direction[1] - rel[1] * direction[0])
    standoff = cube[:2] - direction * (CUBE_HALF + 0.04)
    aligned = along < -(CUBE_HALF + 0.005) and lateral < 0.025
    if ee[2] > 0.05:  # above the cube's height: line up behind it, then descend
        if np.linalg.norm(ee[:2] - standoff) > 0.02:
            return _action(_toward(ee, np.r_[standoff, max(ee[2], HOVER)], high[:3]), -1.0)
        return _action(_toward(ee, np.r_[standoff, PUSH_Z], high[:3]), -1.0)
    if not aligned:  # low but off the push line: lift before moving sideways
        return _action(_toward(ee, np.r_[ee[:2], HOVER + 0.01], high[:3]), -1.0)
    # Aim at a point on the cube's centre line a step ahead: corrects lateral drift while pushing.
    # Scale (not clip per axis) so the motion keeps the push direction.
    contact = cube[:2] - direction * (CUBE_HALF + 0.012)
    remaining = np.linalg.norm(target[:2] - cube[:2])
    delta = np.r_[contact + direction * min(PUSH_STEP, remaining) - ee[:2], PUSH_Z - ee[2]]
    delta *= min(1.0, PUSH_STEP / max(np.linalg.norm(delta), 1e-9))
    return _action(np.clip(delta, -high[:3], high[:3]), -1.0)


def _pick_place(env: Any, obs: dict[str, np.ndarray], high: np.ndarray) -> np.ndarray:
    ee, cube, target = env.ee_pos(), env.cube_pos(), env.goal_pos
    opening = float(obs["state"][6])
    grasped = np.linalg.norm(cube - ee) < 0.025 and 0.3 < opening < 0.75
    if grasped:  # carry: stay high until above the target, then settle onto it
        above = np.linalg.norm(ee[:2] - target[:2]) > 0.02
        waypoint = np.r_[target[:2], max(target[2], HOVER)] if above else target
        return _action(_toward(ee, waypoint, high[:3]), -1.0)
    xy_err = np.linalg.norm(ee[:2] - cube[:2])
    if opening < 0.9 and xy_err > 0.015:  # missed or dropped: open while rising
        return _action(_toward(ee, np.r_[ee[:2], cube[2] + HOVER], high[:3]), 1.0)
    if xy_err > 0.03:  # far: approach from above so the fingers clear the cube
        return _action(_toward(ee, np.r_[cube[:2], max(ee[2], cube[2] + HOVER)], high[:3]), 1.0)
    if xy_err > 0.012:  # close in xy: centre over the cube without descending further
        return _action(_toward(ee, np.r_[cube[:2], ee[2]], high[:3]), 1.0)
    if ee[2] - cube[2] > 0.008:  # descend around the cube with open fingers
        return _action(_toward(ee, cube, high[:3]), 1.0)
    return _action(np.zeros(3), -1.0)  # close


def _dmc_reacher(env: Any, obs: dict[str, np.ndarray], high: np.ndarray) -> np.ndarray:
    # Joint-space PD towards the analytic IK solution; wrap the shoulder error to [-pi, pi].
    q, qd = env.physics.data.qpos[:2], env.physics.data.qvel[:2]
    err = env.goal_qpos() - q
    err[0] = (err[0] + np.pi) % (2 * np.pi) - np.pi  # the shoulder is unlimited, the wrist not
    return np.r_[np.clip(3.0 * err - 0.3 * qd, -1, 1), np.zeros(len(high) - 2)]


def _dmc_point_mass(env: Any, obs: dict[str, np.ndarray], high: np.ndarray) -> np.ndarray:
    q, qd = env.physics.data.qpos[:2], env.physics.data.qvel[:2]
    return np.r_[np.clip(20.0 * (env.goal_qpos() - q) - 4.0 * qd, -1, 1), np.zeros(len(high) - 2)]


EXPERT_ENVS = (
    "wm/PandaReach-v0",
    "wm/PandaPush-v0",
    "wm/PandaPickPlace-v0",
    "wm/DMCReacherEasy-v0",
    "wm/DMCPointMassEasy-v0",
    "wm/OGBenchCube-v0",
)
_EXPERTS = {
    "DMCEnvConfig:reacher_easy": _dmc_reacher,
    "DMCEnvConfig:point_mass_easy": _dmc_point_mass,
    "PandaEnvConfig:reach": _reach,
    "PandaEnvConfig:push": _push,
    "PandaEnvConfig:pick_place": _pick_place,
}
