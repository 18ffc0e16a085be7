"""Success benchmark: the learned agent against random, expert and oracle, fixed step budgets.

    .venv/bin/python -m bench.success --episodes 50 \
        --cell reach:learned:checkpoints/reach_tiny --cell reach:random --cell reach:expert \
        --cell reach:oracle

Each cell is `task:agent[:checkpoint]`; every cell runs `agent.evaluate.evaluate` (the same
code as `wm-eval`) with configs/eval.yaml plus `--override`s. Writes
bench/results/success.{json,md}; cells already in the JSON are kept unless re-run.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from agent.config import eval_config, register_configs
from agent.evaluate import evaluate

register_configs()

TASKS = {
    "reach": ("wm/PandaReach-v0", 20),
    "push": ("wm/PandaPush-v0", 40),
    "pickplace": ("wm/PandaPickPlace-v0", 40),
}
OUT = Path(__file__).resolve().parent / "results"


def run_cell(cell: str, episodes: int, overrides: list[str]) -> dict:
    task, kind, *rest = cell.split(":")
    env_id, max_steps = TASKS[task]
    args = [
        f"env.id={env_id}",
        f"env.max_steps={max_steps}",
        f"agent.kind={kind}",
        f"episodes={episodes}",
        "videos=0",
        "energy_plot=false",
        "seed=100000",
        *overrides,
    ]
    if rest:
        args.append(f"agent.checkpoint={rest[0]}")
    with initialize_config_module("configs", version_base="1.3"):
        cfg = eval_config(compose("eval", overrides=args))
    with tempfile.TemporaryDirectory() as tmp:
        summary = evaluate(cfg, Path(tmp), progress=True)
    keep = ("success_rate", "success_any_rate", "episodes", "mean_final_distance")
    row = {k: summary[k] for k in keep}
    row.update(plan_ms_p50=summary["plan_ms_p50"], plan_ms_p95=summary["plan_ms_p95"])
    row.update(task=task, agent=kind, checkpoint=rest[0] if rest else None, overrides=overrides)
    row["wall_s"] = summary["wall_s"]
    return row


def to_markdown(rows: dict[str, dict], machine: str) -> str:
    lines = [
        "# Closed-loop success (fixed step budgets; reach 20, push / pick-place 40 steps)",
        "",
        f"Machine: {machine}. Command: `python -m bench.success` (module docstring).",
        "",
        "| task | agent | episodes | success (end) | success (any step) | final dist (cm) "
        "| plan p50 ms | plan p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        lines.append(
            f"| {row['task']} | {row['agent']} | {row['episodes']} | {row['success_rate']:.2f} "
            f"| {row['success_any_rate']:.2f} | {row['mean_final_distance'] * 100:.1f} "
            f"| {row['plan_ms_p50']:.0f} | {row['plan_ms_p95']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", action="append", required=True, help="task:agent[:checkpoint]")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--override", action="append", default=[], help="extra eval override")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / "success.json"
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, no GPU"
    for cell in args.cell:
        t0 = time.perf_counter()
        row = run_cell(cell, args.episodes, args.override)
        # Re-read just before writing: another bench run may have added rows meanwhile.
        data = json.loads(path.read_text()) if path.exists() else {"rows": {}}
        data["rows"][f"{row['task']}:{row['agent']}"] = row
        print(f"{cell}: success {row['success_rate']:.2f} ({time.perf_counter() - t0:.0f} s)")
        data["machine"] = machine
        path.write_text(json.dumps(data, indent=2))
        (OUT / "success.md").write_text(to_markdown(data["rows"], machine))


if __name__ == "__main__":
    main()
