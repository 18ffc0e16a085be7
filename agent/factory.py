"""Build envs and agents: the one place where the layers are wired.

There are exactly two ways to get an agent: `make_agent(cfg, env)` (any kind, from an
`EvalConfig`) and `load_agent(checkpoint, ...)` (the learned agent, for scripts and the ROS 2
node). Both check the checkpoint's env contract against the env before the first action.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the wm/* ids)
from agent.baselines import OracleAgent, PolicyAgent, RandomAgent
from agent.blocks import action_block, make_block_planner
from agent.checkpoint import CheckpointInfo, read_checkpoint, run_checkpoint
from agent.config import AgentConfig, EvalConfig, with_recommended
from agent.mpc import BaseAgent, MPCAgent
from agent.true_dynamics import TrueDynamicsAgent
from envs.common.contract import EnvContract
from envs.common.distance import DistanceConfig
from envs.common.experts import make_policy
from envs.foreign.make import make_gym_env
from envs.goals.replay_goal import ReplayGoal
from planners import PlannerConfig, planner_config
from planners.config import CONFIGS


def make_env(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    protocol: str = "task",
    goal_offset: int = 0,
    distance: DistanceConfig | None = None,
    dataset: str = "",
):
    """A pixels/state env; foreign Gymnasium ids go through the pixel adapter. Goals per
    `protocol` (agent/config.py EnvSection): the env's own (task), the recorded frame
    `goal_offset` control steps ahead in `dataset` (envs/goals/dataset_goal.py), or where a
    behaviour policy gets in `goal_offset` steps from the same seed (replay)."""
    kwargs = dict(kwargs or {})
    # Foreign ids are rendered at image_size where the env allows it (envs/foreign/make.py).
    make = gym.make if env_id.startswith("wm/") else make_gym_env
    env = make(env_id, **kwargs)
    if protocol == "replay":
        env = ReplayGoal(env, goal_offset, distance=distance)
    if protocol == "dataset":
        from envs.goals.dataset_goal import DatasetGoal

        env = DatasetGoal(env, dataset, offset=goal_offset, distance=distance)
    return env


def env_from_config(cfg: EvalConfig, checkpoint: CheckpointInfo | None = None) -> gym.Env:
    """The env of an eval config; the default goal offset (protocol=dataset / replay) is the
    planning horizon in control steps (planner.horizon x the checkpoint's action block)."""
    checkpoint = checkpoint or run_checkpoint(cfg)
    offset = cfg.env.goal_offset or cfg.planner.horizon * checkpoint.action_block
    env = cfg.env
    return make_env(env.id, env.kwargs, env.protocol, offset, env.distance, env.dataset)


def load_agent(
    checkpoint: str | Path | CheckpointInfo,
    planner: str | PlannerConfig | Any = "cem",
    device: str = "cpu",
    env: gym.Env | None = None,
    agent_cfg: AgentConfig | None = None,
    recommended: bool = True,
    **planner_overrides: Any,
) -> MPCAgent:
    """The learned agent from a checkpoint directory, bounded by the env it was trained on.

    `planner` is a name ("cem" / "mppi") or a planner config; `planner_overrides` replace its
    fields (e.g. `num_samples=64`). The action bounds are the checkpoint's env contract
    (`config.json` "env"); a planner config's own bounds may narrow them. With `env`, its
    contract must fit the checkpoint's (same id, rate, image size, dims; bounds not wider),
    else ValueError naming both values.

    With `recommended` and no `agent_cfg`, the checkpoint's `extra.recommended_eval` settings
    apply as they do in `wm-eval` (agent/config.py `with_recommended`), except the planner
    fields `planner_overrides` set. That way a lewm checkpoint deployed over ROS 2 plans over
    the blocks it was trained for instead of the CEM default of one step. A planner *config*
    is taken as given.
    """
    from world_model.heads.actor import load_actor
    from world_model.heads.reachability import load_head

    path = checkpoint.path if isinstance(checkpoint, CheckpointInfo) else Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(
            f"agent.checkpoint={path} does not exist; train one with wm-train or use a "
            "shipped one (checkpoints/reach_lewm for wm/PandaReach-v0)"
        )
    info = read_checkpoint(checkpoint)
    world_model = info.load_model(device)
    contract = world_model.env_contract
    if contract is None:
        raise ValueError(
            f"{path} records no env contract (it was saved without training data), so the "
            'action bounds and control rate are unknown; retrain with wm-train "data=[...]"'
        )
    if env is not None:
        where = f"checkpoint {path} on env {contract.env_id if env.spec is None else env.spec.id}"
        allow = agent_cfg is not None and agent_cfg.allow_contract_change
        contract.check_compatible(EnvContract.from_env(env), where, allow_render_change=allow)
    cfg = CONFIGS[planner]() if isinstance(planner, str) else planner_config(planner)
    cfg = dataclasses.replace(cfg, **planner_overrides)
    if recommended and agent_cfg is None and isinstance(planner, str):
        given = {f"planner.{k}" for k in planner_overrides}
        agent_cfg, cfg, _ = with_recommended(AgentConfig(), cfg, info.recommended, given)
    low, high = (
        (env.action_space.low, env.action_space.high)
        if env is not None
        else (
            contract.action_low,
            contract.action_high,
        )
    )
    # The planner plans blocks of the model's k control steps (agent/blocks.py); k = 1 is plain.
    planner_obj = make_block_planner(cfg, low, high, action_block(world_model), device)
    a = len(low)  # the agent clips each control step to the planner's (possibly narrowed) box
    low, high = planner_obj.cfg.action_low[:a], planner_obj.cfg.action_high[:a]
    wants_head = agent_cfg is not None and agent_cfg.reachability_weight > 0
    head = load_head(path, device) if wants_head else None
    actor = load_actor(path, device) if cfg.proposal != "none" else None
    if cfg.proposal != "none" and actor is None:
        raise ValueError(
            f"planner.proposal={cfg.proposal!r} (planner=direct) needs an "
            f"action head, and {path} has none; add one: python -m world_model.heads.actor "
            f"checkpoint={path} data=[<its training .h5>]"
        )
    return MPCAgent(world_model, planner_obj, low, high, agent_cfg, head, actor)


def make_agent(
    cfg: EvalConfig, env: gym.Env, checkpoint: CheckpointInfo | None = None
) -> BaseAgent:
    """The agent named by `cfg.agent.kind`, bounded by the env's action space; `checkpoint` is
    `cfg.agent.checkpoint` already read (agent/checkpoint.py), else it is read here."""
    low, high = env.action_space.low, env.action_space.high
    kind = cfg.agent.kind
    if kind == "random":
        return RandomAgent(low, high, seed=cfg.seed)
    if kind == "expert":
        if _has_attr(env, "replay_action"):  # protocol=dataset: the recorded actions
            return PolicyAgent(env.get_wrapper_attr("replay_action"), low, high)
        policy = make_policy("expert", env, seed=cfg.seed)
        return PolicyAgent(policy, low, high)
    if kind == "oracle":
        # Same planner, horizon and blocks as the learned agent of agent.checkpoint.
        k = (checkpoint or run_checkpoint(cfg)).action_block
        planner = make_block_planner(cfg.planner, low, high, k)  # the simulator is on the CPU
        return OracleAgent(
            env,
            planner,
            low,
            high,
            cfg.agent.execute_steps,
            k,
            energy_reduce=cfg.agent.energy_reduce,  # same cost shape as the learned agent
        )
    if kind == "learned":
        return load_agent(
            checkpoint or cfg.agent.checkpoint, cfg.planner, cfg.device, env, cfg.agent
        )
    if kind == "true_dynamics":  # the learned energy on rendered frames (agent/true_dynamics.py)
        learned = load_agent(
            checkpoint or cfg.agent.checkpoint, cfg.planner, cfg.device, env, cfg.agent
        )
        return TrueDynamicsAgent(env, learned)
    raise ValueError(f"agent.kind={kind!r}")


def _has_attr(env: gym.Env, name: str) -> bool:
    try:
        env.get_wrapper_attr(name)
    except AttributeError:
        return False
    return True
