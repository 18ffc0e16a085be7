"""Held-out evaluation sets, built by the bench itself with one fixed recipe each.

    python -m bench heldout --task push              # builds data/push_heldout.h5
    python -m bench heldout --task all --print-only  # every recipe's wm-collect command

protocol=dataset (DINO-WM / LeWM) starts each episode at a recorded state of a held-out
trajectory and takes a later recorded frame as the goal, so the set is part of the result.
Each recipe is `wm-collect` with the policy of the task's training data and a seed range no
training set uses (training: 0-20999; held-out Panda sets 500000+, the anchors' 100000+).
wm-collect seeds episode i with `seed + i` and draws its policy and noise from (seed, i), so
a rebuilt set is the same set on any machine and any worker count.

Panda sets (`bench success --protocol dataset`, `bench plan_diagnosis`): the reach recipe is
the one its published rows were measured on; the push and pick-place sets behind the rows
published before 2026-12-04 were recorded as `wm-collect env=panda_push policy.name=mixed ...
seed=500000 num_episodes=50` with the rest of the command not kept, so these recipes use
that seed and count with each task's training policy (scripts/make_checkpoints.sh). Rows made
since carry the set's recorded attrs (`provenance.dataset`), which say which set they used.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PANDA = ["policy.name=mixed", "policy.expert_fraction=0.7"]
_REACHER = ["policy.name=mixed", "policy.expert_fraction=0.5", "policy.noise=0.3",
            "policy.noise_max=1.0"]  # fmt: skip
# task -> (output path relative to the repository root, wm-collect overrides)
RECIPES: dict[str, tuple[str, list[str]]] = {
    "reach": (
        "data/reach_heldout.h5",
        ["env=panda_reach", *_PANDA, "policy.noise=0.1", "policy.noise_max=0.6",
         "num_episodes=50", "seed=500000"],
    ),
    "reach1": (
        "data/reach1_heldout.h5",
        ["env=panda_reach", "env.id=wm/PandaReach-v1", *_PANDA, "policy.noise=0.1",
         "policy.noise_max=0.6", "num_episodes=50", "seed=500000"],
    ),
    "push": (
        "data/push_heldout.h5",
        ["env=panda_push", *_PANDA, "policy.noise=0.1", "policy.noise_max=0.5",
         "num_episodes=50", "seed=500000"],
    ),
    "pickplace": (
        "data/pick_heldout.h5",
        ["env=panda_pick_place", *_PANDA, "policy.noise=0.05", "policy.noise_max=0.3",
         "num_episodes=50", "seed=500000"],
    ),
    # The anchors' sets (bench anchors): their per-episode starts are in anchors.json, and the
    # random row re-run on a rebuilt set reproduces them exactly.
    "cube": (
        "data/ogbench_cube_eval.h5",
        ["env=ogbench_cube", "policy.name=ogbench_plan", "policy.noise=0.1",
         "env.max_episode_steps=100", "num_episodes=30", "seed=100000"],
    ),
    "reacher": (
        "data/reacher_eval.h5",
        ["env=dmc_reacher_easy", *_REACHER, "num_episodes=30", "seed=100000"],
    ),
    "reacher1": (
        "data/reacher1_eval.h5",
        ["env=dmc_reacher_easy_v1", *_REACHER, "num_episodes=30", "seed=100000"],
    ),
    # Push-T with the anchors' relative actions (envs/foreign/pusht.py): the pusher at their
    # data's pace (action std 0.2), noise 2-10 px (a fraction of the 100 px action scale).
    "pusht": (
        "data/pusht_rel_eval.h5",
        ["env.id=pusht/PushTRelative-v0", "policy.name=expert", "policy.noise=0.02",
         "policy.noise_max=0.1", "num_episodes=30", "seed=100000"],
    ),
    # gym-pusht's own absolute actions: the set behind the pusht_abs rows (measured as
    # `--task pusht` before Push-T moved to relative actions).
    "pusht_abs": (
        "data/pusht_eval.h5",
        ["env.id=gym_pusht:gym_pusht/PushT-v0", "policy.name=expert", "policy.noise=0.02",
         "policy.noise_max=0.1", "num_episodes=30", "seed=100000"],
    ),
}  # fmt: skip


def heldout_path(task: str) -> str:
    """The held-out set of `task`, relative to the repository root."""
    if task not in RECIPES:
        raise ValueError(f"no held-out recipe for task {task!r}; known: {', '.join(RECIPES)}")
    return RECIPES[task][0]


def collect_args(task: str) -> list[str]:
    """The wm-collect overrides that build `task`'s held-out set."""
    path, args = RECIPES[task]
    return [*args, f"output={path}"]


def command(task: str) -> str:
    """The shell command that builds `task`'s held-out set."""
    return shlex.join([".venv/bin/wm-collect", *collect_args(task)])


def build(task: str, force: bool = False) -> Path:
    """Run the recipe (skipped when the file exists, unless `force`); returns the file."""
    out = ROOT / heldout_path(task)
    if out.exists() and not force:
        print(f"{out.relative_to(ROOT)} exists (--force rebuilds it)")
        return out
    if force and out.exists():
        out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    # `-m` from the repository root imports this checkout's envs package
    subprocess.run(
        [sys.executable, "-m", "envs.collect", *collect_args(task)], cwd=ROOT, check=True
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=[*RECIPES, "all"])
    parser.add_argument("--print-only", action="store_true", help="print the command, run nothing")
    parser.add_argument("--force", action="store_true", help="rebuild an existing file")
    args = parser.parse_args(argv)
    for task in RECIPES if args.task == "all" else [args.task]:
        print(command(task), flush=True)
        if not args.print_only:
            build(task, args.force)
