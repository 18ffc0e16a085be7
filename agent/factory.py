"""Build envs and agents from an `EvalConfig`: the one place where the layers are wired."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the wm/* ids)
from agent.baselines import OracleAgent, PolicyAgent, RandomAgent
from agent.mpc import AgentConfig, MPCAgent
from agent.replay import ReplayGoal
from envs.experts import make_policy
from envs.foreign import make_gym_env
from planners import make_planner, planner_config


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, replay_goal_steps: int = 0):
    """A pixels/state env; foreign Gymnasium ids go through the pixel adapter."""
    kwargs = dict(kwargs or {})
    # Foreign ids are rendered at image_size where the env allows it (envs/foreign.py).
    make = gym.make if env_id.startswith("wm/") else make_gym_env
    env = make(env_id, **kwargs)
    if replay_goal_steps > 0:
        env = ReplayGoal(env, replay_goal_steps)
    return env


def _planner(planner_cfg: Any, env: gym.Env, device: str):
    cfg = dataclasses.replace(planner_config(planner_cfg), device=device)
    return make_planner(cfg, env.action_space.low, env.action_space.high)


def agent_config(section: Any) -> AgentConfig:
    return AgentConfig(
        execute_steps=section.execute_steps,
        context_frames=section.context_frames,
        energy_metric=section.energy_metric,
        energy_reduce=section.energy_reduce,
        subgoal_hold_steps=tuple(section.subgoal_hold_steps),
    )


def load_agent(
    checkpoint_dir: str | Path,
    planner: Any = "cem",
    device: str = "cpu",
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    agent_cfg: AgentConfig | None = None,
    **planner_overrides: Any,
) -> MPCAgent:
    """The learned agent from a checkpoint directory, for scripts and the ROS 2 node.

    `planner` is a name ("cem" / "mppi") or a planner config; bounds default to the
    wm/Panda* action space (+-7.5 cm, rotation frozen, gripper +-1).
    """
    from planners.config import CONFIGS
    from world_model import load_world_model

    cfg = CONFIGS[planner]() if isinstance(planner, str) else planner_config(planner)
    low = np.asarray(cfg.action_low if action_low is None else action_low, np.float32)
    high = np.asarray(cfg.action_high if action_high is None else action_high, np.float32)
    cfg = dataclasses.replace(cfg, device=device, **planner_overrides)
    world_model = load_world_model(checkpoint_dir, device=device)
    return MPCAgent(world_model, make_planner(cfg, low, high), low, high, agent_cfg)


def make_agent(cfg: Any, env: gym.Env):
    """The agent named by `cfg.agent.kind`, bounded by the env's action space."""
    low, high = env.action_space.low, env.action_space.high
    kind = cfg.agent.kind
    if kind == "random":
        return RandomAgent(low, high, seed=cfg.seed)
    if kind == "expert":
        policy = make_policy("expert", env, noise=cfg.agent.expert_noise, seed=cfg.seed)
        return PolicyAgent(policy, low, high)
    if kind == "oracle":
        return OracleAgent(
            env, _planner(cfg.planner, env, "cpu"), low, high, cfg.agent.execute_steps
        )
    if kind == "learned":
        from world_model import load_world_model

        path = Path(cfg.agent.checkpoint)
        if not path.exists():
            raise FileNotFoundError(
                f"agent.checkpoint={path} does not exist; train one with wm-train or use the "
                "shipped checkpoints/reach_tiny"
            )
        world_model = load_world_model(path, device=cfg.device)
        planner = _planner(cfg.planner, env, cfg.device)
        return MPCAgent(world_model, planner, low, high, agent_config(cfg.agent))
    raise ValueError(f"agent.kind={kind!r}")
