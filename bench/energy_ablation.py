"""Energy ablation: latent distance only / reachability head only / both.

    python -m bench energy_ablation --checkpoint runs/push --env wm/PandaPush-v0 --steps 40 \
        --episodes 50 --rows distance,head,both --horizon 5 --samples 64 --iters 3

The budget of protocol=dataset is the caller's `--steps` (the anchors use 2 x horizon x k).

Same checkpoint, planner, horizon and budget in every row; only the energy changes. One goal
image per episode (protocol=task), or `--dataset held_out.h5` for protocol=dataset (goal =
the recorded frame `horizon x block` control steps ahead). Writes
bench/results/energy_ablation.{json,md}, rows merged by (env, protocol, row), with 95 % Wilson
intervals.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from agent.blocks import action_block, make_block_planner
from agent.mpc import AgentConfig, MPCAgent
from agent.rollout import run_episode
from agent.stats import wilson_interval
from bench import store
from planners import CEMConfig

OUT = store.RESULTS
ROWS = {
    "distance": {"distance_weight": 1.0, "reachability_weight": 0.0},
    "head": {"distance_weight": 0.0, "reachability_weight": 1.0},
    "both": {"distance_weight": 1.0, "reachability_weight": 1.0},
}


def build(args: argparse.Namespace, row: str, env, wm) -> MPCAgent:
    """The learned agent of one ablation row (a fresh planner, same seed, every row)."""
    from world_model.heads.reachability import load_head

    cfg = CEMConfig(
        horizon=args.horizon,
        num_samples=args.samples,
        iterations=args.iters,
        num_elites=max(1, args.samples // 8),
    )
    low, high = env.action_space.low, env.action_space.high
    planner = make_block_planner(cfg, low, high, action_block(wm))
    agent_cfg = AgentConfig(execute_steps=args.execute, **ROWS[row])
    head = load_head(args.checkpoint) if ROWS[row]["reachability_weight"] > 0 else None
    return MPCAgent(wm, planner, low, high, agent_cfg, head)


def run_row(args: argparse.Namespace, row: str) -> dict:
    import gymnasium as gym

    import envs  # noqa: F401
    from world_model import load_world_model

    wm = load_world_model(args.checkpoint, device="cpu")
    env = gym.make(args.env)
    if args.dataset:
        from envs.goals.dataset_goal import DatasetGoal

        # Goal k control steps ahead, k = the planning horizon in control steps (LeWM: 5 x 5).
        env = DatasetGoal(env, args.dataset, offset=args.horizon * action_block(wm))
    agent = build(args, row, env, wm)
    results, t0 = [], time.perf_counter()
    for i in range(args.episodes):
        results.append(run_episode(env, agent, args.seed + i, args.steps))
        print(f"{row} episode {i}: success {results[-1].success}", flush=True)
    env.close()
    wins = sum(r.success for r in results)
    lo, hi = wilson_interval(wins, len(results))
    plan_ms = np.concatenate([r.plan_ms for r in results]) if results else np.zeros(0)
    steps = sum(r.steps for r in results)
    return {
        "env": args.env,
        "protocol": "dataset" if args.dataset else "task",
        "row": row,
        "episodes": len(results),
        "success": wins / len(results),
        "wilson95": [lo, hi],
        "final_distance_m": float(np.mean([r.final_distance for r in results])),
        "plan_ms_p50": float(np.median(plan_ms)) if plan_ms.size else 0.0,
        "plan_ms_per_step": float(plan_ms.sum() / max(steps, 1)),
        "checkpoint": args.checkpoint,
        "planner": f"CEM {args.samples}x{args.iters}, horizon {args.horizon}",
        "execute_steps": args.execute,
        "max_steps": args.steps,
        "wall_s": time.perf_counter() - t0,
        "provenance": store.provenance(dataset=args.dataset or None, checkpoint=args.checkpoint),
    }


def to_markdown(rows: dict) -> str:
    lines = [
        "# Energy ablation (same model, planner and budget; only the energy changes)",
        "",
        "Command: `python -m bench energy_ablation` (rows since 2026-12-04 carry `provenance` in "
        "the JSON; bench/results/archive/energy_ablation_notes.md says how the first rows, on "
        "the retired push_tiny, were made).",
        "",
        "| env | protocol | energy | episodes | success | 95 % Wilson | final dist (cm) "
        "| plan p50 ms | plan ms / step | planner |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        lo, hi = r["wilson95"]
        lines.append(
            f"| {r['env']} | {r['protocol']} | {r['row']} | {r['episodes']} | {r['success']:.2f} "
            f"| [{lo:.2f}, {hi:.2f}] | {r['final_distance_m'] * 100:.1f} | {r['plan_ms_p50']:.0f} "
            f"| {r['plan_ms_per_step']:.0f} | {r['planner']} |"
        )
    lines += store.archive_notes(rows.values())
    return "\n".join(lines) + "\n"


def render(data: dict) -> str:
    """Rows were stored at the top level before the store; both layouts render."""
    return to_markdown(data["rows"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--env", default="wm/PandaPush-v0")
    parser.add_argument("--dataset", default="", help="held-out HDF5: protocol=dataset")
    parser.add_argument("--rows", default="distance,head,both")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40, help="control-step budget")
    parser.add_argument("--horizon", type=int, default=5, help="planned blocks")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--execute", type=int, default=1, help="control steps per plan")
    parser.add_argument("--seed", type=int, default=100000)
    args = parser.parse_args(argv)
    for row in args.rows.split(","):
        result = run_row(args, row)
        key = f"{result['env']}:{result['protocol']}:{row}"
        store.merge("energy_ablation", {key: result}, render, OUT, archive_render=render)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
