"""Success benchmark: the learned agent against random, expert and oracle, fixed step budgets.

    python -m bench success --episodes 50 \
        --cell reach:learned:checkpoints/reach_lewm --cell reach:random --cell reach:expert \
        --cell reach:oracle

Each cell is `task:agent[:checkpoint]`; every cell runs `agent.evaluate.evaluate` (the same
code as `wm-eval`) with configs/eval.yaml plus `--override`s. Writes
bench/results/success.{json,md} through `bench.store` (a re-run row replaces its key and the
old row goes to bench/results/archive/success.*). A learned cell that names its checkpoint
gets its own row per checkpoint and per agent setting (any override beyond the checkpoint and
the planner budget), so ablations sit side by side. Every success rate comes with its 95 %
Wilson interval, and every row with its command, commit, machine, data and model recipe.

`--protocol dataset` (DINO-WM / LeWM) starts each episode from a held-out recorded state
with the goal the recorded frame `horizon x k` control steps later and a budget of twice that.
The held-out set is `python -m bench heldout --task <task>`'s (data/<task>_heldout.h5; pick-
place: data/pick_heldout.h5); `--dataset PATH` uses another for every cell, `--dataset
task=PATH` (repeatable) for one task's cells. Pass `agent.checkpoint=` in an `--override` so
the oracle / random / expert rows use the learned row's horizon in steps:

    python -m bench heldout --task push
    python -m bench success --protocol dataset --episodes 50 \
        --cell push:learned:checkpoints/push_lewm --cell push:random \
        --override agent.checkpoint=checkpoints/push_lewm
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module

from agent.checkpoint import run_checkpoint
from agent.config import AGENT_KINDS, env_overrides, eval_config, register_configs
from agent.evaluate import evaluate
from agent.stats import wilson_interval
from bench import store
from bench.heldout import heldout_path

register_configs()

TASKS = {
    "reach": ("wm/PandaReach-v0", 20),
    "reach1": ("wm/PandaReach-v1", 20),  # targets anywhere in the workspace
    "push": ("wm/PandaPush-v0", 40),
    "pickplace": ("wm/PandaPickPlace-v0", 40),
}
OUT = store.RESULTS


def run_cell(
    cell: str, episodes: int, overrides: list[str], protocol: str = "task", dataset: str = ""
) -> dict:
    task, kind, *rest = cell.split(":")
    env_id, max_steps = TASKS[task]
    protocol_args = []
    if protocol == "dataset":
        protocol_args = [
            "env.protocol=dataset",
            f"env.dataset={dataset or heldout_path(task)}",
        ]
    args = [
        f"env.id={env_id}",
        f"env.max_steps={max_steps}",
        f"agent.kind={kind}",
        f"episodes={episodes}",
        "videos=0",
        "seed=100000",
        *protocol_args,
        *overrides,
    ]
    if rest:
        args.append(f"agent.checkpoint={rest[0]}")
    with initialize_config_module("configs", version_base="1.3"):
        cfg = eval_config(compose("eval", overrides=env_overrides(args)))
    checkpoint = run_checkpoint(cfg)  # config.json, read once
    if protocol == "dataset":  # budget 2k, k = the goal offset (the horizon in control steps)
        offset = cfg.env.goal_offset or cfg.planner.horizon * checkpoint.action_block
        cfg.env.max_steps = 2 * offset
    with tempfile.TemporaryDirectory() as tmp:
        summary = evaluate(cfg, Path(tmp), checkpoint, progress=True)
    keep = ("success_rate", "success_any_rate", "episodes", "mean_final_distance")
    row = {k: summary[k] for k in keep}
    row.update(plan_ms_p50=summary["plan_ms_p50"], plan_ms_p95=summary["plan_ms_p95"])
    row.update(task=task, agent=kind, checkpoint=rest[0] if rest else None, overrides=overrides)
    wins = round(summary["success_rate"] * summary["episodes"])
    row.update(wilson95=list(wilson_interval(wins, summary["episodes"])), protocol=protocol)
    row["max_steps"] = cfg.env.max_steps
    steps = sum(e["steps"] for e in summary["per_episode"])
    row["plan_ms_per_step"] = summary["plan_ms_total"] / max(steps, 1)  # per executed step
    row["wall_s"] = summary["wall_s"]
    # The model, where it shapes the row: the learned / oracle planner, or the horizon in
    # steps that a named checkpoint sets for the others (eval.yaml's default does not count).
    named = bool(rest) or any(o.startswith("agent.checkpoint=") for o in overrides)
    uses_model = named or kind in ("learned", "oracle")
    row["provenance"] = store.provenance(
        dataset=(dataset or heldout_path(task)) if protocol == "dataset" else None,
        checkpoint=cfg.agent.checkpoint if uses_model and cfg.agent.checkpoint else None,
    )
    for key in ("moving_episodes", "moving_success_rate", "moving_success_any_rate"):
        if key in summary:
            row[key] = summary[key]
    return row


def moving_cell(row: dict) -> str:
    """`n: end / any` on the protocol=dataset episodes whose goal moves every task position."""
    n = row.get("moving_episodes")
    if n is None:
        return "-"
    if n == 0:
        return "0"
    return f"{n}: {row['moving_success_rate']:.2f} / {row['moving_success_any_rate']:.2f}"


def extra_overrides(row: dict) -> list[str]:
    """The row's eval overrides other than the checkpoint and the planner budget most lewm rows
    share (CEM 128 x 3 over 5 blocks): what makes two rows of one checkpoint differ."""
    common = ("planner.horizon=5", "planner.num_samples=128", "planner.iterations=3")
    return [
        o
        for o in row.get("overrides", [])
        if not o.startswith("agent.checkpoint=") and o not in common
    ]


def to_markdown(rows: dict[str, dict], machine: str) -> str:
    lines = [
        "# Closed-loop success (fixed step budgets; protocol=task: reach 20, push / pick-place 40"
        " steps; protocol=dataset: twice the goal offset)",
        "",
        f"Machines: {machine}. Rows measured since 2026-12-04 carry their command, commit, "
        "machine and data / model recipe (`provenance` in success.json); `python -m bench "
        "success --help`. Superseded rows: archive/success.md.",
        "",
        "success (any step) is the anchors' count: LeWM and DINO-WM evaluate with"
        " stable-worldmodel's `World.evaluate_from_dataset`, which ORs the env's success over"
        " the budget. success (end) is stricter: the goal must still hold at the last step.",
        "",
        "object moves (protocol=dataset): the episodes whose goal puts every task position"
        " (Panda: end effector and cube) farther than the success threshold from the start, so"
        " the cube must be moved; `n: end / any`. Rows from before the column show `-`.",
        "",
        "| protocol | task | agent | checkpoint | episodes | success (end) | 95 % Wilson "
        "| success (any step) | 95 % Wilson (any) | object moves | final dist (cm) | plan p50 ms "
        "| plan p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        n = row["episodes"]
        lo, hi = row.get("wilson95") or wilson_interval(round(row["success_rate"] * n), n)
        lo_any, hi_any = wilson_interval(round(row["success_any_rate"] * n), n)
        lines.append(
            f"| {row.get('protocol', 'task')} | {row['task']} | {row['agent']} "
            f"| {' '.join([row.get('checkpoint') or '-', *extra_overrides(row)])} | {n} "
            f"| {row['success_rate']:.2f} | [{lo:.2f}, {hi:.2f}] | {row['success_any_rate']:.2f} "
            f"| [{lo_any:.2f}, {hi_any:.2f}] | {moving_cell(row)} "
            f"| {row['mean_final_distance'] * 100:.1f} | {row['plan_ms_p50']:.0f} "
            f"| {row['plan_ms_p95']:.0f} |"
        )
    lines += store.archive_notes(rows.values())
    return "\n".join(lines) + "\n"


def render(data: dict[str, Any]) -> str:
    return to_markdown(data["rows"], store.machines(data))


def row_key(row: dict[str, Any]) -> str:
    """`[dataset:]task:agent[:checkpoint:settings]`: one row per model and agent setting."""
    key = f"{row['task']}:{row['agent']}"
    if row["agent"] == "learned" and row["checkpoint"]:
        key += f":{row['checkpoint']}:{' '.join(extra_overrides(row))}".rstrip(":")
    return key if row["protocol"] == "task" else f"dataset:{key}"


def dataset_for(task: str, specs: list[str]) -> str:
    """The held-out set of `task` from `--dataset` values: `task=PATH` for one task, a bare
    `PATH` for every task; "" = the task's own (bench.heldout)."""
    chosen = ""
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name in TASKS:
            if name == task:
                return path
        elif sep:
            raise ValueError(f"--dataset {spec}: {name!r} is not a task ({', '.join(TASKS)})")
        else:
            chosen = spec
    return chosen


def check_cells(cells: list[str], episodes: int) -> None:
    """Refuse a bad `--cell` or `--episodes` by name before the first episode runs."""
    if episodes < 1:
        raise ValueError(f"--episodes {episodes}: must be >= 1")
    for cell in cells:
        task, kind, *_ = [*cell.split(":"), ""]
        if task not in TASKS or kind not in AGENT_KINDS:
            raise ValueError(
                f"--cell {cell}: expected task:agent[:checkpoint], task one of {list(TASKS)}, "
                f"agent one of {list(AGENT_KINDS)}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", action="append", required=True, help="task:agent[:checkpoint]")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--override", action="append", default=[], help="extra eval override")
    parser.add_argument("--protocol", choices=("task", "dataset"), default="task")
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        help="held-out .h5 for every cell, or task=PATH for one task (default: bench heldout's)",
    )
    args = parser.parse_args(argv)
    check_cells(args.cell, args.episodes)
    store.check("success", OUT)  # an unwritable store fails now, not after the episodes
    for cell in args.cell:
        dataset = dataset_for(cell.split(":")[0], args.dataset)
        t0 = time.perf_counter()
        row = run_cell(cell, args.episodes, args.override, args.protocol, dataset)
        store.merge("success", {row_key(row): row}, render, OUT, archive_render=render)
        print(f"{cell}: success {row['success_rate']:.2f} ({time.perf_counter() - t0:.0f} s)")
