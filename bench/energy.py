"""The planning energy, measured two ways: what it sees in real configurations, and what each
energy does in closed loop with everything else fixed.

**Configurations** (`python -m bench energy_configs`): does the planning energy see the cube?
For each push task instance (protocol=task: the start and the task's goal image) the simulator
is posed in four real configurations, rendered, encoded, and scored by each energy towards the
goal image:

* `start`: the instance as reset;
* `arm_at_goal`: the arm at its goal pose, the cube not pushed (the trap: the greedy optimum of
  an energy that reads the arm);
* `cube_at_goal`: the cube on its target, the arm at its start;
* `standoff`: the arm lowered behind the cube on the push line, the cube not pushed yet (where
  the scripted expert goes first, a few steps from success).

Energies: `distance` (the agent's latent L1 distance), `head` (the checkpoint's reachability
head, in control steps) when the checkpoint has one. Reported per energy: each configuration's
energy as a fraction of the start's (`arm_at_goal` near 0 means the arm alone nearly zeroes
it), and `standoff_first`: the share of instances where the energy ranks the standoff (a few
steps from success) below the trap. 1.0 means the energy points the planner at the cube.

    python -m bench energy_configs --checkpoint checkpoints/push_lewm --instances 50

Writes bench/results/energy_configs.{json,md}, one row per checkpoint and energy.

**Ablation** (`python -m bench energy_ablation`): latent distance only / reachability head
only / both. Same checkpoint, planner, horizon and budget in every row; only the energy
changes. One goal image per episode (protocol=task), or `--dataset held_out.h5` for
protocol=dataset (goal = the recorded frame `horizon x block` control steps ahead; the budget
is the caller's `--steps`, the anchors use 2 x horizon x k).

    python -m bench energy_ablation --checkpoint runs/push --env wm/PandaPush-v0 --steps 40 \
        --episodes 50 --rows distance,head,both --horizon 5 --samples 64 --iters 3

Writes bench/results/energy_ablation.{json,md}, rows merged by (env, protocol, row), with 95 %
Wilson intervals.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import json
import time

import gymnasium as gym
import mujoco
import numpy as np
import torch

import envs  # noqa: F401  (registers the wm/* ids)
from agent.blocks import action_block, make_block_planner
from agent.mpc import AgentConfig, MPCAgent
from agent.rollout import run_episode
from agent.stats import wilson_interval
from bench import store
from envs.common.experts import PUSH_Z
from envs.goals.dataset_goal import DatasetGoal
from envs.panda.model import CUBE_HALF
from planners import CEMConfig
from world_model import load_world_model
from world_model.heads.reachability import load_head

OUT = store.RESULTS
CONFIGS_DOC = "Does the planning energy see the cube? Energies of real push configurations."
ABLATION_DOC = "Energy ablation: latent distance only / reachability head only / both."

# --- configurations: energies of real posed configurations ----------------------------------

CONFIGS = ("start", "arm_at_goal", "cube_at_goal", "standoff")


def posed_frames(env: gym.Env) -> dict[str, np.ndarray]:
    """The four configurations' frames `(H, W, 3)` of the env's current push instance, posed in
    the env's scratch copy of the scene (the live simulator is not touched)."""
    u = env.unwrapped
    d = u._goal_data
    goal_ee, goal_opening, goal_cube = u._goal_config()
    cube = u.cube_pos()
    direction = (goal_cube[:2] - cube[:2]) / np.linalg.norm(goal_cube[:2] - cube[:2])

    def pose(arm: np.ndarray | None, opening: float, cube_at: np.ndarray | None) -> np.ndarray:
        mujoco.mj_copyData(d, u.model, u.data)
        if arm is not None:
            u._place_robot(d, u.ik.solve(d.qpos, arm, np.eye(3)), opening)
        if cube_at is not None:
            u._set_cube(d, cube_at)
        mujoco.mj_forward(u.model, d)
        return u._render(d)

    standoff = np.r_[cube[:2] - direction * (CUBE_HALF + 0.012), PUSH_Z]
    return {
        "start": pose(None, 0.0, None),
        "arm_at_goal": pose(goal_ee, goal_opening, None),
        "cube_at_goal": pose(None, 0.0, goal_cube),
        "standoff": pose(standoff, 0.0, None),
    }


@torch.no_grad()
def measure_configs(checkpoint: str, env_id: str, instances: int, seed: int) -> list[dict]:
    """One row per energy of the checkpoint: energy fractions and `standoff_first`."""
    wm = load_world_model(checkpoint).eval()
    head = load_head(checkpoint)
    env = gym.make(env_id)

    def encode(frame: np.ndarray) -> torch.Tensor:
        return wm.encode(torch.as_tensor(frame).permute(2, 0, 1)[None, None])[0, 0]  # [N, D]

    energies: dict[str, list[list[float]]] = {"distance": []}
    if head is not None:
        energies["head"] = []
    for i in range(instances):
        env.reset(seed=seed + i)
        goal = encode(env.unwrapped.goal_pixels)
        z = {name: encode(frame) for name, frame in posed_frames(env).items()}
        energies["distance"].append([float(wm.energy(z[c], goal)) for c in CONFIGS])
        if head is not None:
            energies["head"].append([float(head(z[c], goal)) for c in CONFIGS])
    env.close()
    rows = []
    for name, values in energies.items():
        e = np.array(values)  # [instances, 4]
        frac = e / e[:, :1]
        rows.append(
            {
                "checkpoint": checkpoint,
                "env": env_id,
                "energy": name,
                "instances": instances,
                "seed": seed,
                "start": float(e[:, 0].mean()),
                **{f"{c}_over_start": float(frac[:, k].mean()) for k, c in enumerate(CONFIGS)},
                "standoff_first": float((e[:, 3] < e[:, 1]).mean()),
            }
        )
    return rows


def configs_markdown(rows: dict[str, dict]) -> str:
    lines = [
        "# Does the energy see the cube? (real configurations of push task instances)",
        "",
        "Command: `python -m bench energy_configs` (module docstring; rows since 2026-12-04 "
        "carry `provenance` in the JSON). Each configuration's energy towards the task's goal image, as a fraction "
        "of the start's; `standoff first`: share of instances where the arm lowered behind "
        "the cube (a few steps from success) scores better than the arm at its goal pose with "
        "the cube not pushed.",
        "",
        "| checkpoint | energy | instances | start | arm at goal, cube not | cube at goal, "
        "arm not | standoff | standoff first |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        lines.append(
            f"| {r['checkpoint']} | {r['energy']} | {r['instances']} | {r['start']:.3f} "
            f"| {r['arm_at_goal_over_start']:.2f} | {r['cube_at_goal_over_start']:.2f} "
            f"| {r['standoff_over_start']:.2f} | {r['standoff_first']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def render_configs(data: dict) -> str:
    return configs_markdown(data["rows"])


def main_configs(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=CONFIGS_DOC)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--env", default="wm/PandaPush-v0")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--label", default="", help="row label (default: the checkpoint)")
    args = parser.parse_args(argv)
    for row in measure_configs(args.checkpoint, args.env, args.instances, args.seed):
        row["checkpoint"] = args.label or row["checkpoint"]
        row["provenance"] = store.provenance(checkpoint=args.checkpoint)
        key = f"{row['checkpoint']}:{row['energy']}"
        store.merge(
            "energy_configs", {key: row}, render_configs, OUT, archive_render=render_configs
        )
        print(json.dumps(row), flush=True)


# --- ablation: same model and planner, only the energy changes -----------------------------

ABLATION_ROWS = {
    "distance": {"distance_weight": 1.0, "reachability_weight": 0.0},
    "head": {"distance_weight": 0.0, "reachability_weight": 1.0},
    "both": {"distance_weight": 1.0, "reachability_weight": 1.0},
}


def build_ablation_agent(args: argparse.Namespace, row: str, env, wm) -> MPCAgent:
    """The learned agent of one ablation row (a fresh planner, same seed, every row)."""
    cfg = CEMConfig(
        horizon=args.horizon,
        num_samples=args.samples,
        iterations=args.iters,
        num_elites=max(1, args.samples // 8),
    )
    low, high = env.action_space.low, env.action_space.high
    planner = make_block_planner(cfg, low, high, action_block(wm))
    agent_cfg = AgentConfig(execute_steps=args.execute, **ABLATION_ROWS[row])
    head = load_head(args.checkpoint) if ABLATION_ROWS[row]["reachability_weight"] > 0 else None
    return MPCAgent(wm, planner, low, high, agent_cfg, head)


def run_ablation_row(args: argparse.Namespace, row: str) -> dict:
    """One ablation row: `args.episodes` episodes of the agent with energy `row`."""
    wm = load_world_model(args.checkpoint, device="cpu")
    env = gym.make(args.env)
    if args.dataset:
        # Goal k control steps ahead, k = the planning horizon in control steps (LeWM: 5 x 5).
        env = DatasetGoal(env, args.dataset, offset=args.horizon * action_block(wm))
    agent = build_ablation_agent(args, row, env, wm)
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


def ablation_markdown(rows: dict) -> str:
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


def render_ablation(data: dict) -> str:
    """Rows were stored at the top level before the store; both layouts render."""
    return ablation_markdown(data["rows"])


def main_ablation(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=ABLATION_DOC)
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
        result = run_ablation_row(args, row)
        key = f"{result['env']}:{result['protocol']}:{row}"
        store.merge(
            "energy_ablation", {key: result}, render_ablation, OUT, archive_render=render_ablation
        )
        print(json.dumps(result), flush=True)
