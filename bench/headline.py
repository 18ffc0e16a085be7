"""The headline results: one row per task and protocol, read from the results store.

    python -m bench headline                      # the README's table, from the stored rows
    python -m bench headline --commands push-dataset   # the commands behind one row
    python -m bench headline --run push-dataset        # re-measure it (heldout set included)

Each headline row names the stored rows it shows (bench/results/success.json or
anchors.json): the very keys its `--run` writes, so a re-run replaces the cells the table
shows. It rebuilds, from those rows' own settings, the commands that measure them again on a
fresh clone: the held-out set (`bench heldout`), then one `bench success` or `bench anchors`
command per agent. A cell whose stored row carries no command and commit (measured before the
store recorded them) says "no provenance"; `--run` measures it again with them. Learned Panda rows use the shipped checkpoints (their
recipe: scripts/make_checkpoints.sh); learned anchor rows train first (scripts/anchor_*.sh).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import store

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("learned", "oracle", "random")
_LEWM = "agent.energy_reduce=sum planner.select=best agent.stay_if_better=true"
NO_PROVENANCE = "no provenance"  # a cell whose stored row predates command + commit


@dataclass(frozen=True)
class Headline:
    """One README row: the stored rows it shows and how to measure them again."""

    name: str  # --run / --commands name
    task: str  # as the table shows it
    protocol: str  # as the table shows it
    result: str  # "success" or "anchors"
    keys: dict[str, str]  # agent -> stored row key
    checkpoint: str = ""  # the model a fresh clone plans with (learned / oracle blocks)
    train: str = ""  # command that trains the learned model first, if it is not shipped
    published: str = "-"  # the anchors' published figure on this task
    heldout: str = ""  # bench heldout task (default: the row's task)
    notes: dict[str, str] = field(default_factory=dict)


HEADLINES = (
    Headline(
        "reach-dataset", "PandaReach", "dataset", "success",
        {"learned": f"dataset:reach:learned:checkpoints/reach_lewm:{_LEWM}",
         "oracle": "dataset:reach:oracle", "random": "dataset:reach:random"},
        checkpoint="checkpoints/reach_lewm",
    ),
    Headline(
        "push-dataset", "PandaPush", "dataset", "success",
        {"learned": f"dataset:push:learned:checkpoints/push_lewm:{_LEWM}",
         "oracle": "dataset:push:oracle", "random": "dataset:push:random"},
        checkpoint="checkpoints/push_lewm",
    ),
    Headline(
        "pickplace-dataset", "PandaPickPlace", "dataset", "success",
        {"learned": f"dataset:pickplace:learned:checkpoints/pickplace_lewm:{_LEWM}",
         "oracle": "dataset:pickplace:oracle", "random": "dataset:pickplace:random"},
        checkpoint="checkpoints/pickplace_lewm",
    ),
    Headline(
        "push-task", "PandaPush", "whole task", "success",
        {"learned": f"push:learned:checkpoints/push_lewm:{_LEWM}", "oracle": "push:oracle",
         "random": "push:random"},
        checkpoint="checkpoints/push_lewm",
    ),
    Headline(
        "pickplace-task", "PandaPickPlace", "whole task", "success",
        {"learned": f"pickplace:learned:checkpoints/pickplace_lewm:{_LEWM}",
         "oracle": "pickplace:oracle", "random": "pickplace:random"},
        checkpoint="checkpoints/pickplace_lewm",
    ),
    Headline(
        "reacher", "dm_control reacher-easy", "anchors'", "anchors",
        {"learned": "reacher:learned", "oracle": "reacher:oracle", "random": "reacher:random"},
        checkpoint="runs/reacher_k5/world_model",
        train="bash scripts/anchor_reacher_learned.sh",
        published="LeWM 86, RC-aux 87",
    ),
    Headline(
        "cube", "OGBench cube", "anchors'", "anchors",
        {"learned": "cube:learned:direct_shipped", "oracle": "cube:oracle",
         "random": "cube:random"},
        checkpoint="checkpoints/cube_lewm",
        published="LeWM 74, RC-aux 76",
        notes={"learned": "the shipped cube_lewm (scripts/make_cube_checkpoint.sh) with its "
                          "action head, planner=direct"},
    ),
    Headline(
        "pusht", "Push-T (relative actions)", "anchors'", "anchors",
        {"learned": "pusht:learned:direct", "oracle": "pusht:oracle", "random": "pusht:random"},
        checkpoint="runs/pusht_k5_joint/world_model",
        train="bash scripts/anchor_pusht_learned.sh",
        published="LeWM 96, DINO-WM 92",
        notes={"learned": "not shipped (below 50 %): scripts/anchor_pusht_learned.sh trains it "
                          "(1000 pusher episodes, lewm k = 5 with a joint head), planner=direct"},
    ),
)  # fmt: skip
BY_NAME = {h.name: h for h in HEADLINES}


def has_provenance(row: dict[str, Any]) -> bool:
    """Whether a stored row names the command and commit that made it (rows measured before
    the store recorded them do not; the table says so rather than guess)."""
    prov = row.get("provenance") or {}
    return bool(prov.get("command") and prov.get("commit"))


def _rows(results: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: store.load(name, results)["rows"] for name in ("success", "anchors")}


def _success_cell(row: dict[str, Any]) -> str:
    """Held at the end [95 %] (reached at any step): success.md's two counts."""
    n = row["episodes"]
    lo, hi = row.get("wilson95") or store_wilson(row["success_rate"], n)
    return f"{row['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] ({row['success_any_rate']:.2f}), n={n}"


def _anchors_cell(row: dict[str, Any]) -> str:
    """Reached within the budget [95 %] (held at the end): the anchors' own count first."""
    lo, hi = row["success_any_ci95"]
    return (
        f"{row['success_any']:.2f} [{lo:.2f}, {hi:.2f}] ({row['success_end']:.2f}), "
        f"n={row['episodes']}"
    )


def store_wilson(rate: float, n: int) -> tuple[float, float]:
    from agent.stats import wilson_interval

    return wilson_interval(round(rate * n), n)


def commands(h: Headline, results: Path = store.RESULTS) -> list[str]:
    """The commands that measure headline `h` again, from its stored rows' settings."""
    rows = _rows(results)[h.result]
    task = h.heldout or rows[h.keys["random"]]["task"]
    out = [h.train] if h.train else []
    if h.result == "anchors" or rows[h.keys["random"]].get("protocol") == "dataset":
        out.append(f"python -m bench heldout --task {task}")
    for agent in AGENTS:
        row = rows[h.keys[agent]]
        if h.result == "success":
            overrides = [
                o for o in row.get("overrides", []) if not o.startswith("agent.checkpoint=")
            ]
            cell = f"{row['task']}:{agent}" + (f":{h.checkpoint}" if agent == "learned" else "")
            args = ["python", "-m", "bench", "success", "--protocol", row.get("protocol", "task")]
            args += ["--episodes", str(row["episodes"]), "--cell", cell]
            if agent != "learned" and any(
                o.startswith("agent.checkpoint=") for o in row.get("overrides", [])
            ):
                overrides = [f"agent.checkpoint={h.checkpoint}", *overrides]  # its horizon in steps
        else:
            if agent == "learned" and h.train:
                continue  # the training script runs the learned row itself
            args = ["python", "-m", "bench", "anchors", "--task", row["task"], "--agent", agent]
            args += ["--dataset", row["dataset"], "--episodes", str(row["episodes"])]
            if row.get("checkpoint"):
                args += ["--checkpoint", h.checkpoint]
            if row.get("label"):  # so the run rewrites the very row the table shows
                args += ["--label", row["label"]]
            overrides = list(row.get("overrides", []))
        for o in overrides:
            args += ["--override", o]
        out.append(shlex.join(args))
    return out


def _moving(row: dict[str, Any], result: str) -> tuple[float, int] | None:
    """Success on the starts whose goal needs the object moved (anchors: the goal is not met
    at the start; Panda protocol=dataset: every task position moves), and how many there are."""
    if result == "anchors":
        rate, n = row.get("success_any_not_at_start"), row.get("episodes_not_at_start", 0)
    else:
        rate, n = row.get("moving_success_rate"), row.get("moving_episodes", 0)
    return None if rate is None or not n else (rate, n)


def _moving_cell(rows: list[dict[str, Any]], result: str) -> str:
    """learned / oracle / random on the must-move starts, `(n)` once: the same starts."""
    found = [_moving(row, result) for row in rows]
    if any(f is None for f in found):
        return "-"
    ns = {n for _, n in found}
    n = ns.pop() if len(ns) == 1 else "/".join(str(n) for _, n in found)
    return " / ".join(f"{rate:.2f}" for rate, _ in found) + f" (n={n})"


def table(results: Path = store.RESULTS) -> str:
    """The headline table (markdown) from the stored rows."""
    rows = _rows(results)
    lines = [
        "| task | protocol | learned | oracle | random | object must move: learned / oracle / "
        "random | published | reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h in HEADLINES:
        fmt = _success_cell if h.result == "success" else _anchors_cell
        found = [rows[h.result][h.keys[agent]] for agent in AGENTS]
        cells = [fmt(row) + ("" if has_provenance(row) else f", {NO_PROVENANCE}") for row in found]
        lines.append(
            f"| {h.task} | {h.protocol} | {' | '.join(cells)} | {_moving_cell(found, h.result)} "
            f"| {h.published} | `python -m bench headline --run {h.name}` |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--commands", choices=[*BY_NAME, "all"], help="print a row's commands")
    group.add_argument("--run", choices=list(BY_NAME), help="run a row's commands")
    args = parser.parse_args(argv)
    if args.commands:
        for h in HEADLINES if args.commands == "all" else [BY_NAME[args.commands]]:
            print(f"# {h.name}\n" + "\n".join(commands(h)))
        return
    if args.run:
        for cmd in commands(BY_NAME[args.run]):
            print(f"+ {cmd}", flush=True)
            argv_ = shlex.split(cmd)
            if argv_[0] == "python":
                argv_[0] = sys.executable
            subprocess.run(argv_, cwd=ROOT, check=True)
        print("stored; `python -m bench tables` puts the new figures in the docs' tables")
        return
    print(table(), end="")
