"""True-dynamics cost of candidate plans for any env whose state can be saved and restored.

The oracle agent runs the learned agent's planner on these costs, so the gap between the two
is the price of the learned model. For each candidate the simulator is put back to the state it
is in now (envs/common/sim_state.py), the plan is stepped through ``env.unwrapped.step`` (no
wrappers, no rendering in ``rgb_array`` mode), and the task distance to the goal positions is
read (envs/common/distance.py). The live env is left exactly as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from envs.common.distance import TaskDistance
from envs.common.sim_state import get_sim_state, set_sim_state
from envs.foreign.env_hooks import hooks_for


def native_action_dim(env: gym.Env) -> int:
    """Action width the unwrapped env takes (the adapter pads it to 7 for the world model)."""
    space = env.unwrapped.action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"{env.spec.id if env.spec else env}: oracle needs a 1-D Box action space")
    return int(space.shape[0])


def replay_plans(
    env: gym.Env,
    actions: np.ndarray,
    at_end: Callable[[], float | np.ndarray],
    at_step: Callable[[], float] | None = None,
) -> list:
    """Step each candidate plan (S, H, A) from the env's current state and return
    ``at_end()`` read after it (plus the sum of ``at_step()`` over its steps, when given).

    The simulator is put back to the start before each plan and after the last. ``A`` may be
    wider than the env's own action (padded dims are dropped); NaN counts as 0 and actions are
    clipped into the env's bounds, as the env itself would execute them.
    """
    actions = np.nan_to_num(np.asarray(actions, np.float64))
    if actions.ndim != 3:
        raise ValueError(f"actions must be (S, H, A), got {actions.shape}")
    base = env.unwrapped
    n_act = native_action_dim(env)
    low, high = base.action_space.low, base.action_space.high
    # Envs may offer ``step_dynamics(action)``: the control step without rendering or info
    # (wm/OGBenchCube-v0: 1.3 ms instead of 6 ms), or their hooks may (Push-T: 2.7x faster);
    # the result must equal ``step``'s.
    hooks = hooks_for(env)
    step = getattr(base, "step_dynamics", base.step)
    if hooks is not None and hooks.step_dynamics is not None:
        step = functools.partial(hooks.step_dynamics, base)
    start = get_sim_state(env)
    out = []
    try:
        for plan in actions:  # plan: (H, A)
            set_sim_state(env, start)
            total = 0.0
            for a in plan:
                step(np.clip(a[:n_act], low, high).astype(base.action_space.dtype))
                if at_step is not None:
                    total += at_step()
            out.append(total + at_end() if at_step is not None else at_end())
    finally:
        set_sim_state(env, start)
    return out


def state_oracle_cost(
    env: gym.Env,
    actions: np.ndarray,
    distance: TaskDistance,
    goal: np.ndarray,
    reduce: str = "last",
) -> np.ndarray:
    """Distance (S,) to ``goal`` positions after each candidate plan (S, H, A) from now.

    ``reduce="last"`` scores the end of the plan; ``"sum"`` sums the distance over its steps,
    which favours arriving early and staying (a terminal-only cost lets a receding horizon keep
    postponing the arrival on envs with momentum). Actions are executed as `replay_plans` says.
    """
    if reduce not in ("last", "sum"):
        raise ValueError(f"reduce={reduce!r}: expected 'last' or 'sum'")

    def dist() -> float:
        return distance(distance.features(), goal)

    if reduce == "sum":  # the last step's distance is in the sum already
        return np.asarray(replay_plans(env, actions, lambda: 0.0, dist), dtype=np.float64)
    return np.asarray(replay_plans(env, actions, dist), dtype=np.float64)
