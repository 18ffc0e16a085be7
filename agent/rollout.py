"""Run an agent in an env for a fixed step budget and keep what evaluation needs.

The simulator's success signal is only *recorded* here; it never reaches the planner
(ANCHORS, lesson 4), and by default the episode runs its whole budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from agent.policy import Policy
from agent.video import compose_frame


@dataclass
class EpisodeResult:
    """Outcome of one episode; distances in metres, latencies in milliseconds."""

    seed: int
    success: bool
    """Success at the end of the budget (the arm must reach and stay)."""
    success_any: bool
    """Success at any step of the episode."""
    final_distance: float
    steps: int
    planner_errors: int = 0
    """Steps acted on a fallback plan (agent `stats.error` set: non-finite energies)."""
    plan_ms: list[float] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    every_position_moves: bool | None = None
    """protocol=dataset: the goal has every task position (e.g. the cube, not only the arm)
    farther than the success threshold from the start; None for other goals."""


def run_episode(
    env: gym.Env,
    agent: Policy,
    seed: int,
    max_steps: int,
    record_video: bool = False,
    goal_fn=None,
) -> EpisodeResult:
    """One closed-loop episode. `goal_fn(env, seed, obs, info)` may replace the env's goal
    image (sub-goals from a demonstration); it returns what `agent.set_goal` takes."""
    obs, info = env.reset(seed=seed)
    agent.reset()
    if goal_fn is None and "goal_pixels" not in info:
        raise ValueError(
            f"{env.spec.id if env.spec else env} has no goal image of its own: set "
            "env.protocol=replay env.goal_offset=K (goal = where a random policy gets in K steps), or take "
            "start and goal from a recorded dataset (envs/goals/dataset_goal.py, protocol=dataset)"
        )
    goal = goal_fn(env, seed, obs, info) if goal_fn else info["goal_pixels"]
    agent.set_goal(goal)
    agent.observe_privileged(info)  # only the scripted expert reads it
    goal_image = goal if isinstance(goal, np.ndarray) else goal[-1]
    result = EpisodeResult(seed, False, False, float(info.get("distance", np.nan)), 0)
    result.every_position_moves = info.get("every_position_moves")
    agent.trace_imagined = record_video  # one extra rollout per plan, only for videos
    block = agent.action_block
    if record_video:
        result.frames.append(compose_frame(obs["pixels"], goal_image, [], max_steps))
    for _ in range(max_steps):
        action = agent.act(obs["pixels"], obs["state"])
        obs, _, terminated, truncated, info = env.step(action)
        agent.observe_privileged(info)
        result.steps += 1
        if agent.stats.replanned:
            result.plan_ms.append(agent.stats.plan_ms)
        result.energies.append(agent.stats.energy)
        result.planner_errors += bool(agent.stats.error)
        result.distances.append(float(info["distance"]))
        result.success_any |= bool(info["success"])
        if record_video:
            imagined = agent.stats.imagined
            result.frames.append(
                compose_frame(
                    obs["pixels"], goal_image, result.energies, max_steps, 192, imagined, block
                )
            )
        if terminated or truncated:
            break
    result.success = bool(info["success"])
    result.final_distance = float(info["distance"])
    return result
