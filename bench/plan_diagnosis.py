"""Why a plan fails: the world model's energy, or the planner's search?

On protocol=dataset episodes (start = a held-out recorded state, goal = the frame `offset`
control steps later) the recorded actions reach the goal by construction. For each episode this
scores one batch of candidate plans with BOTH the learned energy and the true dynamics
(envs/common/oracle.py, the simulator restored to the start):

* the recorded (expert) plan, the planner's own plan, the expert plus noise at three scales,
  and uniform random plans;
* `spearman`: rank correlation between learned energy and true final distance over them.
  Near 1: the energy orders plans as the task does; near 0: planning on it is blind;
* `expert_rank`: fraction of candidates the energy prefers to the expert (0 = expert best);
* `plan_beats_expert`: the planner found a plan with lower learned energy than the expert's.
  If that plan is also far from the goal in truth, the *model* is wrong (more search would
  not help); if the expert has lower energy than the plan, the *search* fell short.
* `spearman_true_latent`: the same correlation when the energy is computed on the encoder's
  latent of each candidate's *real* final frame (simulated, rendered, encoded) instead of the
  predictor's imagined one. It splits a low `spearman` in two: if this one is high, the latent
  metric is fine and the *predictor* is what is wrong; if it is low too, the goal-image distance
  in this latent space does not order plans as the task does, whatever the predictor does.

    python -m bench plan_diagnosis --task push --checkpoint checkpoints/push_lewm \
        --episodes 20 --override planner.horizon=5 --override planner.num_samples=128

`--task cube` / `--task reacher` diagnose the anchors' tasks on bench.anchors' held-out sets.
`--moving-only` keeps the starts whose goal moves every task position (the cube must be
pushed, not only the arm placed): the subset the protocol's headline mostly leaves out.

Writes bench/results/plan_diagnosis.{json,md} (one row per task:checkpoint, kept across runs).
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import json
import time

import numpy as np
import torch
from hydra import compose, initialize_config_module
from scipy.stats import spearmanr

from agent.baselines import oracle_cost_fn
from agent.checkpoint import run_checkpoint
from agent.config import env_overrides, eval_config, register_configs
from agent.factory import env_from_config, make_agent
from bench import store
from bench.anchors import TASKS as ANCHOR_TASKS
from bench.heldout import heldout_path
from bench.success import TASKS
from envs.common.oracle import replay_plans

register_configs()
OUT = store.RESULTS
NOISE_SCALES = (0.1, 0.3, 0.6)  # expert + N(0, scale x half-range) per action dim
# env id and held-out set of every task: ours (bench.success) and the anchors' (bench.anchors);
# `python -m bench heldout --task <task>` builds each set
ENVS = {task: (env_id, heldout_path(task)) for task, (env_id, _) in TASKS.items()}
ENVS |= {task: (ANCHOR_TASKS[task], heldout_path(task)) for task in ("cube", "reacher")}


def candidates(
    expert: np.ndarray, low: np.ndarray, high: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Expert `(T, A)` -> candidate plans `(n * (1 + len(NOISE_SCALES)), T, A)`: noisy experts
    at each scale, then uniform random plans, all inside the bounds."""
    half = (high - low) / 2
    noisy = [expert + rng.normal(0, s, (n, *expert.shape)) * half for s in NOISE_SCALES]
    rand = rng.uniform(low, high, (n, *expert.shape))
    return np.clip(np.concatenate([*noisy, rand]), low, high)


def final_frames(env, plans: np.ndarray) -> np.ndarray:
    """The real frame `(S, H, W, 3)` after each plan `(S, T, A)` from the env's current state,
    which is restored afterwards (the oracle's replay, one render at each plan's end)."""
    return np.stack(replay_plans(env, plans, env.unwrapped.render))


@torch.no_grad()
def true_latent_energy(agent, frames: np.ndarray) -> np.ndarray:
    """The agent's energy `(S,)` of the encoded real final frames, towards its current goal."""
    z = torch.stack([agent.encode_image(f) for f in frames])  # [S, N, D]
    goal = agent._current_goal()  # [1, N, D]
    return agent.plan_energy(z[None, :, None], goal)[0, :, -1].double().cpu().numpy()


def ranking(energy: np.ndarray, true: np.ndarray, threshold: float) -> dict:
    """How an energy `(S,)` ranks candidate plans against their true final distances `(S,)`:
    `spearman` (NaN when either is constant), the true distance of the energy's favourite
    (`dist_energy_argmin`) and of the best candidate (`dist_best`), and whether the energy's
    favourite fails for real (`energy_argmin_fails`: farther than the task's `threshold`)."""
    favourite = float(true[np.argmin(energy)])
    constant = np.ptp(energy) == 0 or np.ptp(true) == 0
    return {
        "spearman": float("nan") if constant else float(spearmanr(energy, true).statistic),
        "dist_energy_argmin": favourite,
        "dist_best": float(true.min()),
        "energy_argmin_fails": bool(favourite > threshold),
    }


def diagnose_episode(env, agent, seed: int, n: int, moving_only: bool = False) -> dict | None:
    """One protocol=dataset start: learned energy vs true distance over the candidates (None
    with `moving_only` when the goal leaves some task position, e.g. the cube, in place)."""
    obs, info = env.reset(seed=seed)
    if moving_only and not info["every_position_moves"]:
        return None
    agent.reset()
    agent.set_goal(info["goal_pixels"])
    agent.observe(obs["pixels"], obs["state"])
    k, a = agent.action_block, agent.action_low.size
    steps = agent.planner.cfg.horizon * k
    recorded = env.get_wrapper_attr("recorded_plan")[:steps]  # (<= steps, A)
    expert = np.zeros((steps, a), np.float32)
    expert[: len(recorded)] = recorded  # hold still after the recording, as the expert row
    cost_fn = agent.cost_function()
    plan = agent.planner.plan(cost_fn, num_envs=1)[0].cpu().numpy().reshape(steps, a)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(seed)
    cands = np.concatenate([expert[None], plan[None], candidates(expert, low, high, n, rng)])
    blocks = torch.as_tensor(cands.reshape(len(cands), -1, k * a), dtype=torch.float32)[None]
    energy = cost_fn(blocks)[0].double().cpu().numpy()  # (S,)
    true = oracle_cost_fn(env)(cands)  # (S,) metres
    energy_real = true_latent_energy(agent, final_frames(env, cands))
    threshold = float(env.get_wrapper_attr("task_distance").threshold)
    ranked = ranking(energy, true, threshold)
    return {
        "seed": seed,
        "spearman": ranked["spearman"],
        "spearman_true_latent": float(spearmanr(energy_real, true).statistic),
        # the expert's real final frame is the goal frame itself: leave it out of the argmin
        "dist_true_latent_argmin": float(true[1:][np.argmin(energy_real[1:])]),
        "expert_rank": float(np.mean(energy[2:] < energy[0])),
        "plan_beats_expert": bool(energy[1] < energy[0]),
        "energy_expert": float(energy[0]),
        "energy_plan": float(energy[1]),
        "dist_expert": float(true[0]),
        "dist_plan": float(true[1]),
        "dist_energy_argmin": ranked["dist_energy_argmin"],
        "dist_best": ranked["dist_best"],
        "dist_start": float(info["distance"]),
    }


def run(
    task: str,
    checkpoint: str,
    episodes: int,
    n: int,
    overrides: list[str],
    moving_only: bool = False,
) -> dict:
    env_id, dataset = ENVS[task]
    args = [
        f"env.id={env_id}",
        "env.protocol=dataset",
        f"env.dataset={dataset}",
        "agent.kind=learned",
        f"agent.checkpoint={checkpoint}",
        *overrides,
    ]
    with initialize_config_module("configs", version_base="1.3"):
        cfg = eval_config(compose("eval", overrides=env_overrides(args)))
    checkpoint = run_checkpoint(cfg)
    env = env_from_config(cfg, checkpoint)
    agent = make_agent(cfg, env, checkpoint)
    t0 = time.perf_counter()
    rows, seed = [], 100000
    while len(rows) < episodes:  # moving_only: the next starts whose goal moves the cube
        if seed - 100000 > 50 * episodes:
            raise ValueError(f"fewer than {episodes} starts in {50 * episodes} move every position")
        row = diagnose_episode(env, agent, seed, n, moving_only)
        rows += [row] if row else []
        seed += 1
    env.close()
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "seed"}
    return {
        "task": task,
        "checkpoint": checkpoint,
        "overrides": overrides,
        "episodes": episodes,
        "moving_only": moving_only,
        "candidates": len(NOISE_SCALES) * n + n + 2,
        "threshold_m": float(env.get_wrapper_attr("task_distance").threshold),
        "mean": mean,
        "per_episode": rows,
        "wall_s": time.perf_counter() - t0,
        "provenance": store.provenance(dataset=dataset, checkpoint=checkpoint),
    }


def fmt(mean: dict, key: str, scale: float) -> str:
    """A mean `* scale`, or blank for rows measured before the column existed."""
    return f"{mean[key] * scale:.{1 if scale > 1 else 2}f}" if key in mean else ""


def to_markdown(rows: dict[str, dict]) -> str:
    lines = [
        "# Plan diagnosis: learned energy vs true distance (protocol=dataset starts)",
        "",
        "Command: `python -m bench plan_diagnosis` (module docstring says what each column "
        "means; rows since 2026-12-04 carry `provenance` in the JSON). Distances in cm, means over "
        "episodes.",
        "",
        "`spearman (real frames)`: the energy of the encoded real final frame instead of the "
        "imagined latent (blank: not measured in that run); `dist real-argmin`: the true "
        "distance of the candidate that energy prefers (the expert, whose real final frame is "
        "the goal frame itself, left out).",
        "",
        "| task | checkpoint | overrides | episodes | spearman | spearman (real frames) "
        "| expert rank | plan beats expert | dist start | dist plan | dist energy-argmin "
        "| dist real-argmin | dist best candidate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        m = r["mean"]
        lines.append(
            f"| {r['task']}{' (object moves)' if r.get('moving_only') else ''} "
            f"| {r['checkpoint']} | {' '.join(r['overrides']) or '-'} "
            f"| {r['episodes']} | {m['spearman']:.2f} | {fmt(m, 'spearman_true_latent', 1)} "
            f"| {m['expert_rank']:.2f} | {m['plan_beats_expert']:.2f} "
            f"| {m['dist_start'] * 100:.1f} | {m['dist_plan'] * 100:.1f} "
            f"| {m['dist_energy_argmin'] * 100:.1f} | {fmt(m, 'dist_true_latent_argmin', 100)} "
            f"| {m['dist_best'] * 100:.1f} |"
        )
    return "\n".join(lines) + "\n"


def render(data: dict) -> str:
    return to_markdown(data["rows"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(ENVS), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--noisy", type=int, default=16, help="candidates per noise scale")
    parser.add_argument("--override", action="append", default=[], help="extra eval override")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--moving-only",
        action="store_true",
        help="only starts whose goal moves every task position (the cube, not only the arm)",
    )
    args = parser.parse_args(argv)
    row = run(
        args.task, args.checkpoint, args.episodes, args.noisy, args.override, args.moving_only
    )
    print(json.dumps(row["mean"], indent=1))
    if args.no_write:
        return
    key = f"{args.task}:{args.checkpoint}:{' '.join(args.override)}"
    key += ":moving" if args.moving_only else ""
    store.merge("plan_diagnosis", {key: row}, render, OUT, archive_render=render)
