"""The anchors' own tasks under their protocol: OGBench cube and dm_control reacher, our agents
next to the published LeWM / DINO-WM / PLDM / RC-aux figures.

    python -m bench heldout --task reacher     # the eval set (recipes: bench/heldout.py)
    python -m bench anchors --task reacher --agent random --dataset data/reacher_eval.h5
    # the oracle with the learned row's planner: its blocks come from --checkpoint (k = 5)
    python -m bench anchors --task cube --agent oracle \
        --dataset data/ogbench_cube_eval.h5 --checkpoint runs/cube_k5/world_model \
        --override planner.horizon=5 --override planner.num_samples=300 \
        --override planner.num_elites=30 --override planner.iterations=5 \
        --override agent.energy_reduce=sum --override planner.select=best
    python -m bench anchors --task reacher --agent learned \
        --dataset data/reacher_eval.h5 --checkpoint runs/reacher_wm/world_model \
        --train-data data/reacher_train.h5 --train-time "..."
    python -m bench anchors --table    # markdown from the JSON only

The learned rows: scripts/anchor_cube_learned.sh and scripts/anchor_reacher_learned.sh (the
lewm recipe with train.sigreg_within=1; `--label` rows are its data-size and steps variants).

The held-out eval sets are built by `python -m bench heldout --task
cube|reacher|reacher1|pusht|pusht_abs` (pusht: the anchors' relative actions, pusht_abs:
gym-pusht's absolute targets; the recipes are in bench/heldout.py; their per-episode starts
are in anchors.json, and re-running the random row on a rebuilt set reproduces them exactly).
Without a checkpoint the oracle plans single control steps (k = 1) over the protocol's 25:
for CEM, which samples every step of every block independently and executes all 25 before
replanning, that is the same search as 5 blocks of k = 5.

Protocol (LeWM, arXiv 2603.19312; DINO-WM): `envs.goals.dataset_goal.DatasetGoal` (protocol=dataset,
the one implementation) starts each episode from a recorded state of a held-out trajectory and
takes as the goal image the frame 25 control steps later; 50 control steps of budget, 50
episodes (seeds 100000+). Success is the env's own test on the goal frame's positions
(`task_positions` / `task_threshold`): OGBench cube, cube centre within 0.04 m of where it is in
the goal frame; reacher, fingertip within the suite's 0.06 m (target + finger radius) of the goal
frame's fingertip. Headline: reached at any step within the budget (their episodes end at
success); success at the end of the budget is kept too. Cube rows also carry the strict test of
the CLEAR-LeWM audit: the cube within 3 cm *and* 15 degrees of yaw (modulo its quarter-turn
symmetry) of the goal frame's, both read from the simulator (the goal's from its recorded
state), on all starts and on those not met at the start (at 4 cm: the cube must move). The
planner is CEM over 25 control steps (the anchors' 5 blocks of 5), all executed before
replanning; its sample budget is a flag.
Writes bench/results/anchors.{json,md}; rows already in the JSON are kept unless re-run.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import json
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
from hydra import compose, initialize_config_module

from agent.checkpoint import run_checkpoint
from agent.config import EvalConfig, env_overrides, eval_config, register_configs
from agent.factory import make_agent, make_env
from agent.rollout import run_episode
from agent.stats import wilson_interval
from bench import store
from envs.data import open_dataset
from envs.goals.dataset_goal import DatasetGoal

OUT = store.RESULTS
GOAL_OFFSET = 25  # control steps between start and goal frame (the anchors' protocol)
BUDGET = 50  # control steps per episode
SEED = 100_000
STRICT_M, STRICT_DEG = 0.03, 15.0  # the CLEAR-LeWM audit's strict cube test
STRICT_RAD = np.deg2rad(STRICT_DEG)
TASKS = {
    "cube": "wm/OGBenchCube-v0",
    "reacher": "wm/DMCReacherEasy-v0",
    # The same task with the arm drawn 3x thicker: at 64 px the suite's arm is 2 px wide. Kept
    # as a rendering ablation: with train.sigreg_within the end-to-end encoder sees the thin
    # arm too (probe R^2 0.71 on the fingertip), and reacher itself is the headline row.
    "reacher1": "wm/DMCReacherEasy-v1",
    # gym-pusht (pip install -e ".[pusht]"); success: DINO-WM's / LeWM's goal-state test,
    # envs/foreign/pusht.py. pusht takes the anchors' relative actions (target = agent + 100 px
    # x action); pusht_abs gym-pusht's own absolute targets, whose rows were measured as
    # `--task pusht` before Push-T moved to relative actions.
    "pusht": "pusht/PushTRelative-v0",
    "pusht_abs": "gym_pusht:gym_pusht/PushT-v0",
}
# What the table says beside a task's id.
TASK_NOTES = {"pusht": "relative actions", "pusht_abs": "absolute actions"}
# Published success (%), quoted as published: LeWM paper arXiv 2603.19312 (LeWM, and its
# third-party DINO-WM / PLDM figures), RC-aux arXiv 2605.07278 (its own LeWM baseline in brackets).
PUBLISHED = {
    "cube": {
        "LeWM": "74",
        "DINO-WM": "slightly above LeWM (third-party, LeWM paper)",
        "PLDM": "not reported",
        "RC-aux": "76 (its LeWM: 72)",
    },
    "reacher": {
        "LeWM": "86",
        "DINO-WM": "79 (third-party, LeWM paper)",
        "PLDM": "78 (LeWM paper)",
        "RC-aux": "87 (its LeWM: 81)",
    },
}
PUBLISHED["pusht"] = {
    "LeWM": "96 (from a summary of the paper; not checked against its figure)",
    "DINO-WM": "see LeWM paper (not quoted here)",
    "PLDM": "see LeWM paper (not quoted here)",
    "RC-aux": "not quoted here",
}
PUBLISHED["pusht_abs"] = dict.fromkeys(PUBLISHED["pusht"], "as pusht (theirs: relative actions)")
PUBLISHED["reacher1"] = {k: f"{v}; suite rendering" for k, v in PUBLISHED["reacher"].items()}
# Tasks that differ only in pixels: the oracle and random rows (which never see pixels) of one
# hold for the other when both eval sets record the same states. data/reacher1_eval.h5 and
# data/reacher_eval.h5 do (same seeds, policy and actions; compared when they were made).
SAME_PHYSICS = {"reacher1": "reacher"}
THEIR_DATA = (
    "LeWM: 10k episodes x ~200 steps per task (frameskip 5), end-to-end training for hours "
    "on one GPU"
)


class _StartInfo(gym.Wrapper):
    """Keeps the reset info: was the goal already met at the start (a trivial instance)? On
    the cube (an env with `cube_pose_error`), also the strict test after every step: met at
    some step (`strict_any`), met at the last (`strict_end`); None elsewhere."""

    solved_at_start = False
    strict_any: bool | None = None
    strict_end: bool | None = None

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.solved_at_start = bool(info["success"])
        self._pose_error = getattr(self.env.unwrapped, "cube_pose_error", None)
        self._goal_state = self.get_wrapper_attr("goal_sim_state")
        self.strict_any = self.strict_end = False if self._pose_error else None
        return obs, info

    def step(self, action: Any):
        out = self.env.step(action)
        if self._pose_error is not None:
            metres, yaw = self._pose_error(self._goal_state)
            self.strict_end = bool(metres <= STRICT_M and yaw <= STRICT_RAD)
            self.strict_any = self.strict_any or self.strict_end
        return out


def protocol_config(
    task: str, kind: str, checkpoint: str | None, overrides: list[str]
) -> EvalConfig:
    """configs/eval.yaml with the protocol's budget and planner horizon."""
    return env_protocol_config(TASKS[task], kind, checkpoint, overrides)


def env_protocol_config(
    env_id: str,
    kind: str,
    checkpoint: str | None,
    overrides: list[str],
    offset: int = GOAL_OFFSET,
    budget: int = BUDGET,
) -> EvalConfig:
    """`protocol_config` for any env id (wm-improve), with its goal offset and budget."""
    args = [
        f"env.id={env_id}",
        f"env.max_steps={budget}",
        f"agent.kind={kind}",
        f"agent.execute_steps={offset}",
        f"planner.horizon={offset}",
        f"seed={SEED}",
        *overrides,
    ]
    if checkpoint:
        args.append(f"agent.checkpoint={checkpoint}")
    register_configs()
    with initialize_config_module("configs", version_base="1.3"):
        return eval_config(compose("eval", overrides=env_overrides(args)))


def run_row(args: argparse.Namespace) -> dict[str, Any]:
    """Episodes ``first .. first + episodes - 1``; each is merged into the JSON row as it ends,
    so chunks may run in parallel processes and an interrupted run keeps what it finished."""
    cfg = protocol_config(args.task, args.agent, args.checkpoint, args.override)
    env = _StartInfo(DatasetGoal(make_env(cfg.env.id), args.dataset, offset=GOAL_OFFSET))
    agent = make_agent(cfg, env, run_checkpoint(cfg))
    setup = {
        "task": args.task,
        "env_id": TASKS[args.task],
        "agent": args.agent,
        "distance": env.get_wrapper_attr("task_distance").describe(),
        "dataset": args.dataset,
        "dataset_size": _dataset_size(args.dataset),
        "checkpoint": args.checkpoint,
        "train_data": _dataset_size(args.train_data) if args.train_data else None,
        "train_time": args.train_time,
        "overrides": args.override,
        "label": args.label,
        "planner": {
            k: getattr(cfg.planner, k) for k in ("num_samples", "iterations", "num_elites")
        },
    }
    row: dict[str, Any] = {}
    provenance = store.provenance(dataset=args.dataset, checkpoint=args.checkpoint)
    for i in range(args.first, args.first + args.episodes):
        t0 = time.perf_counter()
        r = run_episode(env, agent, SEED + i, BUDGET)
        episode = {
            "seed": SEED + i,
            "start": [int(x) for x in env.get_wrapper_attr("start")],
            "trivial": env.solved_at_start,
            "success_any": r.success_any,
            "success_end": r.success,
            "final_distance": r.final_distance,
            "plan_ms": [ms for ms in r.plan_ms if ms > 0],
            "wall_s": time.perf_counter() - t0,
        }
        if env.strict_any is not None:
            episode |= {"strict_any": env.strict_any, "strict_end": env.strict_end}
        row = save_episode(setup, episode, provenance)
        print(f"{args.task} {args.agent} ep {i}: any {r.success_any} end {r.success}", flush=True)
    env.close()
    return row


def save_episode(
    setup: dict[str, Any], episode: dict[str, Any], provenance: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge one episode into the row of the same setup (another setup replaces the row).

    Chunks of a row run in parallel processes: `bench.store.update` holds the result's lock
    over the read-modify-write and replaces the files atomically. `provenance` (the chunk's
    command, commit, machine) goes on the row; it is not part of the setup compared."""
    key = f"{setup['task']}:{setup['agent']}"
    key += f":{setup['label']}" if setup.get("label") else ""

    def change(data: dict[str, Any]) -> None:
        old = data["rows"].get(key, {})
        same = all(old.get(k) == v for k, v in setup.items()) and all(
            "seed" in e for e in old.get("per_episode", [])
        )  # rows of an older layout are replaced
        episodes = {e["seed"]: e for e in old.get("per_episode", [])} if same else {}
        episodes[episode["seed"]] = episode
        row = aggregate(setup, sorted(episodes.values(), key=lambda e: e["seed"]))
        if provenance:
            row["provenance"] = provenance
        data["rows"][key] = row

    return store.update("anchors", change, to_markdown, OUT)["rows"][key]


def aggregate(setup: dict[str, Any], episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A table row from per-episode records."""
    n = len(episodes)
    hits = sum(e["success_any"] for e in episodes)
    hard = [e for e in episodes if not e["trivial"]]
    plan_ms = [ms for e in episodes for ms in e["plan_ms"]]
    return {
        **setup,
        "episodes": n,
        "success_any": hits / n,
        "success_any_ci95": wilson_interval(hits, n),
        "success_end": sum(e["success_end"] for e in episodes) / n,
        "solved_at_start": sum(e["trivial"] for e in episodes) / n,
        "success_any_not_at_start": (
            sum(e["success_any"] for e in hard) / len(hard) if hard else None
        ),
        "episodes_not_at_start": len(hard),
        "mean_final_distance_m": float(np.mean([e["final_distance"] for e in episodes])),
        "plan_ms_median": float(np.median(plan_ms)) if plan_ms else 0.0,
        # what a deployment pays: planning time spread over every executed control step
        "plan_ms_per_step": float(np.sum(plan_ms)) / (n * BUDGET),
        "wall_s": float(sum(e["wall_s"] for e in episodes)),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **_strict_rates(episodes),
        "per_episode": episodes,
    }


def _strict_rates(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The strict cube test over all episodes and those not met at the start; nothing when
    an episode lacks it (not the cube, or measured before the test existed)."""
    if not episodes or not all("strict_any" in e for e in episodes):
        return {}
    n, hits = len(episodes), sum(e["strict_any"] for e in episodes)
    hard = [e["strict_any"] for e in episodes if not e["trivial"]]
    return {
        "strict_any": hits / n,
        "strict_any_ci95": wilson_interval(hits, n),
        "strict_end": sum(e["strict_end"] for e in episodes) / n,
        "strict_any_not_at_start": sum(hard) / len(hard) if hard else None,
    }


def _dataset_size(path: str) -> dict[str, Any]:
    with open_dataset(path) as reader:
        steps = sum(int(reader.episode_attrs(i)["num_samples"]) for i in range(len(reader)))
        return {"path": path, "episodes": len(reader), "steps": steps}


def to_markdown(data: dict[str, Any]) -> str:
    rows = data["rows"]
    lines = [
        "# The anchors' tasks under their protocol",
        "",
        "protocol=dataset: start at a recorded state of a held-out trajectory, goal = the frame "
        f"{GOAL_OFFSET} control steps later, {BUDGET}-step budget, seeds {SEED}+; success = the "
        "env's own test on the goal frame's positions. Our cells: reached within the budget "
        "[95 % Wilson interval] / met at the end of the budget, %. Published cells as published "
        "(reached within the budget). The headline learned and oracle rows plan as the "
        "anchors do: CEM 300 samples x 5 iterations, top 30, over 5 blocks of 5 control steps, "
        "all 25 executed before replanning; the oracle's cost is the distance of the task "
        "positions on true dynamics. `bench/anchors.py` says how each row was made. "
        f"Machines: {store.machines(data)}; shared with other jobs. Rows measured since 2026-12-04 "
        "carry their command, commit and data / model recipe (`provenance` in anchors.json).",
        "",
        "| task | ours: learned | ours: oracle | ours: random | LeWM | DINO-WM | PLDM | RC-aux |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        cells = []
        for kind in ("learned", "oracle", "random"):
            row = rows.get(f"{task}:{kind}")
            twin = SAME_PHYSICS.get(task)
            if row is None and kind != "learned" and twin and f"{twin}:{kind}" in rows:
                cells.append(f"as {twin} (same recorded states; pixels only differ)")
                continue
            cells.append(_cell(row) if row else "not run")
        pub = PUBLISHED[task]
        env = f"{TASKS[task]}; {TASK_NOTES[task]}" if task in TASK_NOTES else TASKS[task]
        lines.append(
            f"| {task} ({env}) | {' | '.join(cells)} | {pub['LeWM']} | {pub['DINO-WM']} "
            f"| {pub['PLDM']} | {pub['RC-aux']} |"
        )
    lines += [
        "",
        "Every row; a labelled one (`task:agent:label`) is a variant kept beside the headline "
        "row: a data-size or training-steps point, another recipe.",
        "",
        "| row | reached [95 %] / end, % | episodes | goal met at start "
        "| success when not met at start "
        f"| strict ({100 * STRICT_M:.0f} cm, {STRICT_DEG:.0f} deg) [95 %] / when not met at start "
        "| final dist (m) "
        "| planner (samples x iterations, elites) | plan ms (median) | plan ms per step "
        "| wall s | eval data |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in rows.items():
        p = row["planner"]
        planner = (
            "-"
            if row["agent"] == "random"
            else f"{p['num_samples']} x {p['iterations']}, {p['num_elites']}"
        )
        ds = row["dataset_size"]
        lines.append(
            f"| {key} | {_cell(row)} | {row['episodes']} | "
            f"{row['solved_at_start']:.2f} | {_hard(row)} | {_strict(row)} | "
            f"{row['mean_final_distance_m']:.3f} | {planner} | "
            f"{row['plan_ms_median']:.0f} | {_per_step(row)} | {row['wall_s']:.0f} | "
            f"{ds['episodes']} ep x "
            f"{ds['steps'] // max(ds['episodes'], 1)} steps |"
        )
    lines += ["", "## Data and training, ours vs theirs", "", f"- Theirs: {THEIR_DATA}."]
    for task in TASKS:
        if f"{task}:learned" not in rows:
            lines.append(f"- Ours ({task}): no learned model evaluated yet.")
    for key, row in rows.items():
        if row.get("train_data"):
            td = row["train_data"]
            lines.append(
                f"- Ours ({key}): {td['episodes']} episodes, {td['steps']} control steps; "
                f"{row.get('train_time') or 'training time not recorded'}."
            )
    return "\n".join(lines) + "\n"


def _per_step(row: dict[str, Any]) -> str:
    """Planning ms per executed control step; rows from before the column show `-`."""
    value = row.get("plan_ms_per_step")
    return "-" if value is None else f"{value:.1f}"


def _hard(row: dict[str, Any]) -> str:
    """Success over the episodes whose goal was not already met at the start."""
    rate, n = row.get("success_any_not_at_start"), row.get("episodes_not_at_start", 0)
    return "-" if rate is None else f"{rate:.2f} of {n}"


def _strict(row: dict[str, Any]) -> str:
    """The strict cube test reached within the budget, % [95 % interval], and as a fraction
    of the starts not met at the start; `-` for rows without it."""
    if row.get("strict_any") is None:
        return "-"
    lo, hi = row["strict_any_ci95"]
    hard = row["strict_any_not_at_start"]
    subset = "-" if hard is None else f"{hard:.2f} of {row['episodes_not_at_start']}"
    return f"{100 * row['strict_any']:.0f} [{100 * lo:.0f}, {100 * hi:.0f}] / {subset}"


def _cell(row: dict[str, Any]) -> str:
    """Reached within the budget [95 % interval] / still there at the end of the budget (%)."""
    lo, hi = row["success_any_ci95"]
    return (
        f"{100 * row['success_any']:.0f} [{100 * lo:.0f}, {100 * hi:.0f}] / "
        f"{100 * row['success_end']:.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS))
    parser.add_argument("--agent", choices=("learned", "oracle", "random"))
    parser.add_argument("--dataset", help="held-out HDF5 recorded by wm-collect")
    parser.add_argument("--checkpoint", default=None, help="world model, for --agent learned")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--first", type=int, default=0, help="first episode (chunked runs)")
    parser.add_argument("--override", action="append", default=[], help="extra eval override")
    parser.add_argument("--train-data", default=None, help="the learned model's training data")
    parser.add_argument("--train-time", default=None, help="how long training took, and where")
    parser.add_argument(
        "--label",
        default=None,
        help="keep this row beside the task's headline row (e.g. a data-size point)",
    )
    parser.add_argument("--table", action="store_true", help="only rewrite the markdown")
    args = parser.parse_args(argv)
    if args.table:
        store.update("anchors", lambda data: None, to_markdown, OUT)
        return
    if not (args.task and args.agent and args.dataset):
        parser.error("--task, --agent and --dataset are required unless --table")
    row = run_row(args)
    print(json.dumps({k: row[k] for k in ("task", "agent", "episodes", "success_any")}))
