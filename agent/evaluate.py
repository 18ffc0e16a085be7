"""The evaluation loop behind `wm-eval` and `wm-demo`: episodes, summary, videos, TensorBoard."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agent.checkpoint import CheckpointInfo
from agent.config import EvalConfig
from agent.factory import env_from_config, make_agent
from agent.policy import Policy
from agent.replay import expert_subgoals
from agent.rollout import EpisodeResult, run_episode
from agent.stats import wilson_interval
from agent.video import write_video
from envs.common.contract import EnvContract
from envs.data.storage import atomic_write
from envs.goals.goal_state import distance_info


def moving_subset(results: list[EpisodeResult]) -> dict[str, Any]:
    """protocol=dataset: success on the episodes whose goal moves every task position (the
    cube must be pushed, not only the arm placed); empty for other goal sources."""
    moving = [r for r in results if r.every_position_moves]
    if all(r.every_position_moves is None for r in results):
        return {}
    hits = sum(r.success for r in moving)
    return {
        "moving_episodes": len(moving),
        "moving_success_rate_ci95": list(wilson_interval(hits, len(moving))) if moving else None,
        "moving_success_rate": float(np.mean([r.success for r in moving])) if moving else None,
        "moving_success_any_rate": (
            float(np.mean([r.success_any for r in moving])) if moving else None
        ),
    }


def summarize(results: list[EpisodeResult], wall_s: float) -> dict[str, Any]:
    """The numbers results.json promises (docs: README 'Results')."""
    plan_ms = np.asarray([ms for r in results for ms in r.plan_ms], dtype=np.float64)
    has_plans = plan_ms.size > 0
    n, hits = len(results), sum(r.success for r in results)
    hits_any = sum(r.success_any for r in results)
    return {
        **moving_subset(results),
        "success_rate": hits / n,
        "success_rate_ci95": list(wilson_interval(hits, n)),
        "success_any_rate": hits_any / n,
        "success_any_rate_ci95": list(wilson_interval(hits_any, n)),
        "episodes": len(results),
        "mean_final_distance": float(np.mean([r.final_distance for r in results])),
        "plan_ms_p50": float(np.percentile(plan_ms, 50)) if has_plans else 0.0,
        "plan_ms_p95": float(np.percentile(plan_ms, 95)) if has_plans else 0.0,
        "plans": int(plan_ms.size),
        "plan_ms_total": float(plan_ms.sum()),
        "planner_errors": int(sum(r.planner_errors for r in results)),
        "wall_s": wall_s,
        "per_episode": [
            {
                "seed": r.seed,
                "success": r.success,
                "success_any": r.success_any,
                "every_position_moves": r.every_position_moves,
                "final_distance": r.final_distance,
                "steps": r.steps,
                "planner_errors": r.planner_errors,
                "distances": r.distances,
                "energies": [e if np.isfinite(e) else None for e in r.energies],
            }
            for r in results
        ],
    }


def contract_changes(agent: Any, env: Any) -> list[str]:
    """The camera / physics-step differences between the checkpoint's env contract and the
    env that `agent.allow_contract_change` let through (empty for other agents)."""
    contract = getattr(agent, "contract", None)
    return contract.render_changes(EnvContract.from_env(env)) if contract is not None else []


@dataclass
class Rollouts:
    """What the episode loop produced: one result per episode and the videos it wrote."""

    results: list[EpisodeResult]
    videos: list[str]
    wall_s: float


def run_episodes(
    cfg: EvalConfig, env: gym.Env, agent: Policy, out_dir: Path, writer: Any, progress: bool
) -> Rollouts:
    """The loop: `cfg.episodes` episodes from seeds `cfg.seed + i`, the first `cfg.videos`
    recorded as mp4 under `out_dir/videos`, per-episode scalars to TensorBoard."""
    fps = EnvContract.from_env(env).control_hz  # videos play at the rate the actions were taken
    goal_fn = None
    if cfg.agent.subgoal_capture_steps and cfg.agent.kind == "learned":
        steps = list(cfg.agent.subgoal_capture_steps)

        def goal_fn(env, seed, obs, info):
            return expert_subgoals(env, seed, steps)

    results, videos = [], []
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.episodes), desc=f"{cfg.agent.kind} on {cfg.env.id}", disable=not progress)
    for i in bar:
        record = i < cfg.videos
        r = run_episode(env, agent, cfg.seed + i, cfg.env.max_steps, record, goal_fn)
        results.append(r)
        if record:
            videos.append(
                str(write_video(out_dir / "videos" / f"episode_{i:03d}.mp4", r.frames, fps))
            )
            r.frames.clear()
        writer.add_scalar("episode/success", float(r.success), i)
        writer.add_scalar("episode/final_distance_m", r.final_distance, i)
        if r.plan_ms:
            writer.add_scalar("episode/plan_ms_median", float(np.median(r.plan_ms)), i)
        bar.set_postfix(success=f"{np.mean([x.success for x in results]):.2f}")
    return Rollouts(results, videos, time.perf_counter() - t0)


def write_outputs(summary: dict[str, Any], out_dir: Path, writer: Any) -> None:
    """results.json (atomically; a full disk names the file) and the run's TensorBoard total."""
    writer.add_scalar("eval/success_rate", summary["success_rate"], 0)
    atomic_write(out_dir / "results.json", json.dumps(summary, indent=2).encode())


def evaluate(
    cfg: EvalConfig, out_dir: Path, checkpoint: CheckpointInfo, progress: bool = True
) -> dict[str, Any]:
    """Run `cfg.episodes` episodes and write results.json, videos/ and tb/ under `out_dir`.

    `checkpoint` is the run's checkpoint as read once (agent/checkpoint.py `run_checkpoint`):
    the env's goal offset and the agent come from it.
    """
    from torch.utils.tensorboard import SummaryWriter

    out_dir.mkdir(parents=True, exist_ok=True)
    env = env_from_config(cfg, checkpoint)
    agent = make_agent(cfg, env, checkpoint)
    for change in contract_changes(agent, env):  # allowed by agent.allow_contract_change
        print(f"wm-eval: warning: {change} (agent.allow_contract_change=true)")
    writer = SummaryWriter(str(out_dir / "tb"))
    rollouts = run_episodes(cfg, env, agent, out_dir, writer, progress)
    summary = summarize(rollouts.results, rollouts.wall_s)
    summary["contract_changes"] = contract_changes(agent, env)
    if summary["planner_errors"]:
        print(
            f"wm-eval: {summary['planner_errors']} steps held still because every candidate's "
            "energy was non-finite (broken world model?); see planner_errors in results.json"
        )
    summary.update(
        distance=distance_info(env),  # measure, unit and success threshold
        env_id=cfg.env.id,
        agent=cfg.agent.kind,
        max_steps=cfg.env.max_steps,
        videos=rollouts.videos,
        config=dataclasses.asdict(cfg),
    )
    if cfg.videos and cfg.agent.kind == "learned" and cfg.env.id.startswith("wm/Panda"):
        from agent.energy import landscape_for_env

        summary["energy_plot"] = str(
            landscape_for_env(agent, env, cfg.seed, out_dir / "energy.png")
        )
    write_outputs(summary, out_dir, writer)
    writer.close()
    env.close()
    return summary
