"""Reference agents that bracket the learned model: random (floor), expert and oracle (ceiling).

The oracle runs the *same* planner as the learned agent but scores candidates with the true
dynamics (the simulator state copied per candidate), so the gap between the two is the price of
the learned model, not of the planner. Goals given as a state (replay / dataset goals,
envs/goals/goal_state.py) are planned towards through envs/common/oracle.py, which works for
any env whose state envs/common/sim_state.py can save; the wm/* envs' own goals through their
``oracle_cost``.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from agent.mpc import BaseAgent, PlanningAgent, clip_action
from planners.base import Planner


class RandomAgent(BaseAgent):
    """Uniform actions inside the bounds: the floor any planner must beat."""

    def __init__(self, action_low: np.ndarray, action_high: np.ndarray, seed: int = 0) -> None:
        super().__init__(action_low, action_high)
        self._rng = np.random.default_rng(seed)

    def set_goal(self, goal: object) -> None:  # the random agent ignores goals
        del goal

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        action = self._rng.uniform(self.action_low, self.action_high)
        self._record(0.0, float("nan"), False)
        return action.astype(np.float32)


class PolicyAgent(BaseAgent):
    """Wraps an `envs.common.experts` policy `(obs, info) -> action` (privileged simulator
    state)."""

    def __init__(self, policy: Callable, action_low: np.ndarray, action_high: np.ndarray) -> None:
        super().__init__(action_low, action_high)
        self.policy = policy
        self._info: dict = {}

    def set_goal(self, goal: object) -> None:
        del goal

    def observe_privileged(self, info: dict) -> None:
        """The scripted expert reads the simulator's truth (goal pose, cube) from ``info``."""
        self._info = info

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        action = self.policy({"pixels": pixels, "state": state}, self._info)
        self._record(0.0, float("nan"), False)
        return clip_action(action, self.action_low, self.action_high).astype(np.float32)


class OracleAgent(PlanningAgent):
    """The learned agent's planner on true dynamics (see the module docstring)."""

    def __init__(
        self,
        env: gym.Env,
        planner: Planner,
        action_low: np.ndarray,
        action_high: np.ndarray,
        execute_steps: int = 1,
        action_block: int = 1,
        energy_reduce: str = "last",
    ) -> None:
        super().__init__(planner, action_low, action_high, execute_steps, action_block)
        self.env = env
        self._oracle_cost = oracle_cost_fn(env, energy_reduce)

    def set_goal(self, goal: object) -> None:
        del goal  # the oracle reads the goal from the simulator
        self._queue.clear()
        self.planner.reset()

    def cost_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        oracle_cost = self._oracle_cost
        action_dim = self.action_low.size

        def cost_fn(actions: torch.Tensor) -> torch.Tensor:
            e, s, h, _ = actions.shape  # [E=1, S, H, k * A]: H blocks of k control steps
            flat = actions.reshape(e * s, -1, action_dim).detach().cpu().numpy()  # [E*S, H*k, A]
            cost = np.asarray(oracle_cost(flat), dtype=np.float64)  # [E*S]
            return torch.as_tensor(cost, dtype=actions.dtype, device=actions.device).reshape(e, s)

        return cost_fn


def oracle_cost_fn(env: gym.Env, reduce: str = "last") -> Callable[[np.ndarray], np.ndarray]:
    """``plans (S, H, A) -> cost (S,)`` on true dynamics towards the env's current goal.

    ``reduce`` mirrors the learned agent's ``energy_reduce`` (last | sum over the plan) for
    state goals; the wm/* envs' own ``oracle_cost`` always scores the end of the plan.
    """
    from envs.common.oracle import state_oracle_cost
    from envs.common.sim_state import get_sim_state, state_kind

    if _has_wrapper_attr(env, "goal_features"):  # a goal given as a state (replay, dataset)

        def cost(actions: np.ndarray) -> np.ndarray:
            goal = env.get_wrapper_attr("goal_features")
            dist = env.get_wrapper_attr("task_distance")
            return state_oracle_cost(env, actions, dist, goal, reduce)

        if state_kind(env) == "deepcopy":  # the one way that can fail: now, not mid-episode
            get_sim_state(env)
        return cost
    if hasattr(env.unwrapped, "oracle_cost"):
        return env.unwrapped.oracle_cost
    raise TypeError(
        f"{env.spec.id if env.spec else type(env.unwrapped).__name__} has no goal state for the "
        "oracle: set env.protocol=replay (replay goals) or env.protocol=dataset"
    )


def _has_wrapper_attr(env: gym.Env, name: str) -> bool:
    try:
        env.get_wrapper_attr(name)
    except AttributeError:
        return False
    return True
