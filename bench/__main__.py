"""One entry point for every benchmark: `python -m bench <name> [args]` (or `wm-bench`).

    python -m bench --help              # the benchmarks, one line each
    python -m bench success --help      # one benchmark's flags
    python -m bench heldout --task push # build a held-out set with its fixed recipe

Each name runs one function of a module in bench/ (most are `bench/<name>.py`'s `main()`) that
parses the remaining arguments; every measurement writes bench/results/<name>.{json,md}
through `bench.store`, and `tables` renders the docs' tables from those rows. This is the only
way in: the modules have no `__main__` of their own. A named error (a bad flag value, an
unreadable results file) prints as one line, `python -m bench <name>: error: ...`, like the
`wm-*` commands (configs/cli.py; `HYDRA_FULL_ERROR=1` shows the traceback).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from configs.cli import one_line_errors

# name -> ("module:function" in bench/, what it measures: one line for --help)
BENCHES = {
    "headline": ("headline:main", "the README's headline table from the stored rows; --run NAME re-measures one"),
    "tables": ("tables:main", "rewrite the docs' tables of stored rows (README, docs/); --check"),
    "success": ("success:main", "closed-loop success of learned / oracle / random / expert agents (Panda tasks)"),
    "anchors": ("anchors:main", "the anchors' tasks (OGBench cube, dm_control reacher) under their protocol"),
    "heldout": ("heldout:main", "build a held-out evaluation set with its fixed recipe (prints the command)"),
    "plan_diagnosis": ("plan_diagnosis:main", "learned energy vs true distance over candidate plans: model or search?"),
    "energy_configs": ("energy:main_configs", "energies of real posed configurations: does the energy see the cube?"),
    "energy_ablation": ("energy:main_ablation", "same model and planner, only the energy changes"),
    "probe": ("probe:main", "linear probes of what a latent carries (task positions, cube, arm)"),
    "world_model": ("world_model:main", "training throughput, rollout cost, held-out error vs copy-last"),
    "planning": ("planning:main", "planner latency, FLOP efficiency, ours vs pytorch_mppi"),
    "cpu_dtype": ("cpu_dtype:main", "bf16 autocast vs float32 on this CPU: planner cost, training step"),
    "envs": ("envs:main", "control steps/s with pixels, expert / random success"),
    "render_speed": ("render_speed:main", "steps/s by how a frame is drawn: meshes, simple_geoms, image size"),
    "foreign": ("foreign:main", "two Gymnasium envs the project does not define, collect -> train -> eval"),
    "ros": ("ros:main", "ROS 2 bridge latency and camera rate over real Fast DDS"),
    "archive": ("store:main_archive", "move superseded rows of a result to bench/results/archive/"),
}  # fmt: skip


def entry(name: str) -> Callable[[], Any]:
    """The function behind benchmark `name` (its module imported only now)."""
    module, _, function = BENCHES[name][0].partition(":")
    return getattr(importlib.import_module(f"bench.{module}"), function)


def usage() -> str:
    width = max(map(len, BENCHES))
    lines = ["usage: python -m bench <name> [args]   (python -m bench <name> --help)", ""]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in BENCHES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0].replace("-", "_"), argv[1:]
    if name not in BENCHES:
        print(
            f"python -m bench: unknown benchmark {argv[0]!r}; one of: {', '.join(BENCHES)}",
            file=sys.stderr,
        )
        return 2
    run = entry(name)
    # The module's argparse reads sys.argv: make it (and the command stored with each row)
    # read as the user typed it.
    sys.argv = [f"python -m bench {name}", *rest]
    result = one_line_errors(sys.argv[0])(run)()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
