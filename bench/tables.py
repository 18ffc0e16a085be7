"""The docs' tables of stored rows: each a view of bench/results/, written into the docs.

    python -m bench tables            # rewrite every table block in README.md and docs/*.md
    python -m bench tables --check    # exit 1 naming the blocks that differ from the store

A doc shows a figure only through a block the store renders (STYLE: a figure lives in one
place). A block is

    <!-- table: NAME (python -m bench tables) -->
    | ... the rendered table ... |
    <!-- end table -->

where NAME is `headline` (bench.headline's table), `headline-commands` (the commands behind
it, as `python -m bench headline --commands all` prints them) or a view below: one row per
stored row,
each with the label the doc reads and the key it shows. A view's columns follow the result:
Panda rows (success.json) show the goal held at the end and reached at any step, each
[95 % Wilson], and the starts where the object must move; anchor rows (anchors.json) show
reached within the budget [95 %] and held at the end, in %, as the anchors count.

Outside the blocks a doc may still quote a success rate with its interval (`0.66 [0.52, 0.78]`,
`66 % [52, 78]`, `3 [95 %: 0.08, 0.50]` for 3 successes): `--check` also fails on any such
quote that no stored row holds (rate and Wilson interval at the quote's precision, archive
included), in every markdown file but bench/results/ (the store's own tables) and
docs/experiments.md (the record of deleted ideas, which keeps the figures they measured).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.stats import wilson_interval
from bench import store

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
BLOCK = re.compile(
    r"(<!-- table: (?P<name>[\w-]+) \(python -m bench tables\) -->\n)(?P<body>.*?)"
    r"(<!-- end table -->)",
    re.S,
)
_LEWM = "agent.energy_reduce=sum planner.select=best agent.stay_if_better=true"
_PREV = "(stage 1 for 1800 steps; replaced)"
_ACTOR = "env.goal_offset=10 agent.energy_reduce=sum planner.select=best "
_DIRECT = (
    "planner.proposal=centre planner.num_samples=1 planner.num_elites=1 planner.iterations=1 "
    "planner.horizon=1 agent.execute_steps=2 agent.stay_if_better=false"
)


@dataclass(frozen=True)
class View:
    """A doc table: its first column's title, its columns, and (label, result, key) rows."""

    first: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, str, str], ...]


def _rate(row: dict[str, Any], key: str, n: int) -> str:
    rate = row[key]
    lo, hi = wilson_interval(round(rate * n), n)
    return f"{rate:.2f} [{lo:.2f}, {hi:.2f}]"


def _moving(row: dict[str, Any]) -> str:
    n = row.get("moving_episodes")
    if not n:
        return "-"
    return f"{row['moving_success_rate']:.2f} / {row['moving_success_any_rate']:.2f} (n={n})"


def _search(row: dict[str, Any]) -> str:
    if row["agent"] == "random":
        return "-"
    p = row["planner"]
    return str(p["num_samples"] * p["iterations"])


def _pct(row: dict[str, Any]) -> str:
    lo, hi = row["success_any_ci95"]
    return f"{100 * row['success_any']:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def _not_at_start(row: dict[str, Any]) -> str:
    rate = row.get("success_any_not_at_start")
    return "-" if rate is None else f"{rate:.2f} (n={row['episodes_not_at_start']})"


def _strict(row: dict[str, Any]) -> str:
    """Cube at 3 cm and 15 degrees (bench/anchors.py): % of all starts / rate where it must move."""
    if row.get("strict_any") is None:
        return "-"
    moving = row.get("strict_any_not_at_start")
    return f"{100 * row['strict_any']:.0f} / " + ("-" if moving is None else f"{moving:.2f}")


def _plan_ms(row: dict[str, Any]) -> str:
    value = row.get("plan_ms_per_step")
    return "-" if value is None or row["agent"] == "random" else f"{value:.1f}"


# column -> (title, cell from a stored row)
COLUMNS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "task": ("task", lambda r: r["task"]),
    "end": ("end [95 %]", lambda r: _rate(r, "success_rate", r["episodes"])),
    "reached": ("reached [95 %]", lambda r: _rate(r, "success_any_rate", r["episodes"])),
    "moving": ("object must move: end / reached", _moving),
    "n": ("n", lambda r: str(r["episodes"])),
    "reached_pct": ("reached % [95 %]", _pct),
    "end_pct": ("held at the end %", lambda r: f"{100 * r['success_end']:.0f}"),
    "not_at_start": ("reached, goal not met at the start", _not_at_start),
    "search": ("sequences / decision", _search),
    "strict": ("strict 3 cm + 15 deg: % / must move", _strict),
    "plan_ms": ("plan ms / control step", _plan_ms),
}
PANDA = ("end", "reached", "n")
ANCHORS = ("reached_pct", "end_pct", "not_at_start", "n")

VIEWS = {
    "panda-task": View(
        "task: agent", ("end", "reached", "n"),
        (("reach: learned, `reach_lewm`", "success",
          f"reach:learned:runs/cont2_reach (= the shipped reach_lewm):{_LEWM}"),
         ("reach: oracle (same CEM, true dynamics)", "success", "reach:oracle"),
         ("reach: expert", "success", "reach:expert"),
         ("reach: random", "success", "reach:random"),
         ("push: learned, `push_lewm`", "success", f"push:learned:checkpoints/push_lewm:{_LEWM}"),
         ("push: learned, with 6 demo sub-goals", "success",
          f"push:learned:checkpoints/push_lewm:{_LEWM} agent.subgoal_capture_steps=[5,10,15,20,"
          "25,30] agent.subgoal_hold_steps=[5,5,5,5,5,5]"),
         ("push: the retired push_tiny, with 6 demo sub-goals", "archive/success", "push:learned"),
         ("push: oracle (CEM 128 x 3 over 5 blocks, as push_lewm)", "success", "push:oracle"),
         ("push: expert", "success", "push:expert"),
         ("push: random", "success", "push:random"),
         ("pick-place: learned, `pickplace_lewm`", "success",
          f"pickplace:learned:checkpoints/pickplace_lewm:{_LEWM}"),
         ("pick-place: learned, with 5 demo sub-goals", "success",
          f"pickplace:learned:checkpoints/pickplace_lewm:{_LEWM} agent.subgoal_capture_steps="
          "[2,4,6,8,10] agent.subgoal_hold_steps=[4,4,4,5,8]"),
         ("pick-place: the retired pickplace_tiny, with 5 demo sub-goals", "archive/success",
          "pickplace:learned"),
         ("pick-place: oracle (CEM 128 x 3 over 5 blocks)", "success", "pickplace:oracle"),
         ("pick-place: expert", "success", "pickplace:expert"),
         ("pick-place: random", "success", "pickplace:random"),
         ("reach v1: learned, `reach1_tiny`, its recommended settings", "success",
          "reach1:learned:runs/reach1_long (= the shipped reach1_tiny):planner.select=best "
          "agent.stay_if_better=true"),
         ("reach v1: learned, `reach1_tiny`, CEM mean", "success",
          "reach1:learned:runs/reach1_long (= the shipped reach1_tiny)"),
         ("reach v1: the retired reach_tiny's v0 weights", "archive/success",
          "reach1:learned:runs/reach1_tiny"),
         ("reach v1: expert", "success", "reach1:expert"),
         ("reach v1: random", "success", "reach1:random")),
    ),
    "panda-dataset": View(
        "model", ("task", "reached", "end", "moving", "n"),
        (("**`checkpoints/*_lewm`** (stage 1 trained 4x longer), `select=best`, `stay_if_better`",
          "success", f"dataset:push:learned:checkpoints/push_lewm:{_LEWM}"),
         ("", "success", f"dataset:pickplace:learned:checkpoints/pickplace_lewm:{_LEWM}"),
         ("oracle: same CEM (`select=best`), horizon and energy on the true simulator", "success",
          "dataset:push:oracle"),
         ("", "success", "dataset:pickplace:oracle"),
         ("previous `*_lewm` (stage 1 for 1800 steps), `select=best`, `stay_if_better`",
          "archive/success", f"dataset:push:learned:push_lewm@1549825 {_PREV}:{_LEWM}"),
         ("", "archive/success", f"dataset:pickplace:learned:pickplace_lewm@1549825 {_PREV}:"
          f"{_LEWM}"),
         ("previous `*_lewm`, `select=best`", "archive/success",
          f"dataset:push:learned:push_lewm@1549825 {_PREV}:agent.energy_reduce=sum "
          "planner.select=best"),
         ("", "archive/success", f"dataset:pickplace:learned:pickplace_lewm@1549825 {_PREV}:"
          "agent.energy_reduce=sum planner.select=best"),
         ("previous `*_lewm`, sampling mean (as CEM is published)", "archive/success",
          f"dataset:push:learned:push_lewm@1549825 {_PREV}:agent.energy_reduce=sum"),
         ("", "archive/success",
          f"dataset:pickplace:learned:pickplace_lewm@1549825 {_PREV}:agent.energy_reduce=sum"),
         ("previous `*_lewm`, contact clips drawn x4 (`oversample_moving=4`, `select=best`)",
          "success", "dataset:push:learned:runs/contact_push (contact clips x4; not shipped):"
          "agent.energy_reduce=sum planner.select=best"),
         ("", "success", "dataset:pickplace:learned:runs/contact_pickplace (contact clips x4; "
          "not shipped):agent.energy_reduce=sum planner.select=best"),
         ("first stage 1 only (joint, pixels-only), summed energy, mean", "success",
          "dataset:push:learned:runs/lewm_nostate (stage 1 only):agent.energy_reduce=sum"),
         ("", "success",
          "dataset:pickplace:learned:runs/lewm_nostate (stage 1 only):agent.energy_reduce=sum"),
         ("stage 1 only, `energy_reduce=last`", "success",
          "dataset:push:learned:runs/lewm_nostate (stage 1 only)"),
         ("", "success", "dataset:pickplace:learned:runs/lewm_nostate (stage 1 only)"),
         ("previous lewm checkpoint (proprio fed to the predictor), `last`", "archive/success",
          "dataset:push:learned"),
         ("", "archive/success", "dataset:pickplace:learned"),
         ("previous `*_lewm`, larger search (300 samples x 5 iterations, top 30), mean",
          "archive/success", f"dataset:push:learned:push_lewm@1549825 {_PREV}:"
          "planner.num_samples=300 planner.iterations=5 planner.num_elites=30 "
          "agent.energy_reduce=sum"),
         ("random", "success", "dataset:push:random"),
         ("", "success", "dataset:pickplace:random"),
         ("expert (recorded actions)", "success", "dataset:push:expert"),
         ("", "success", "dataset:pickplace:expert")),
    ),
    "push-task": View(
        "whole-task push", PANDA,
        (("**oracle**: same CEM, horizon and settings on the true simulator", "success",
          "push:oracle"),
         ("shipped `push_lewm`, goal image only, latent distance (its recommended settings)",
          "success", f"push:learned:checkpoints/push_lewm:{_LEWM}"),
         ("shipped `push_lewm`, **reachability head only** (`agent.distance_weight=0 "
          "agent.reachability_weight=1`)", "success",
          "push:learned:push_lewm + head with cross-episode negatives (cross_fraction 0.3, "
          "budget 25, 10k steps; = the head shipped in checkpoints/push_lewm):"
          f"{_LEWM} agent.distance_weight=0 agent.reachability_weight=1"),
         ("head while it reads > 7 steps, then the distance (`agent.reachability_switch=7`)",
          "success", f"push:learned:checkpoints/push_lewm:{_LEWM} agent.reachability_weight=1 "
          "agent.reachability_switch=7"),
         ("head + distance (weight 1 each)", "success",
          "push:learned:push_lewm + head with cross-episode negatives (cross_fraction 0.3, "
          "budget 25, 10k steps; = the head shipped in checkpoints/push_lewm):"
          f"{_LEWM} agent.reachability_weight=1"),
         ("head + 0.1 distance", "success",
          "push:learned:push_lewm + head with cross-episode negatives (cross_fraction 0.3, "
          "budget 25, 10k steps; = the head shipped in checkpoints/push_lewm):"
          f"{_LEWM} agent.distance_weight=0.1 agent.reachability_weight=1"),
         ("head with a hinge margin of 4 steps, x 3", "success",
          "push:learned:push_lewm + head with cross-episode negatives (cross_fraction 0.3, "
          "budget 25, 10k steps; = the head shipped in checkpoints/push_lewm):"
          f"{_LEWM} agent.reachability_weight=3 agent.reachability_margin=4"),
         ("metric head only (distance in a learned embedding, budget 40)", "success",
          "push:learned:push_lewm + metric head (embedding distance, cross 0.3, budget 40; not "
          f"shipped):{_LEWM} agent.distance_weight=0 agent.reachability_weight=1"),
         ("head only with a larger search (CEM 256 x 5): the search exploits the model",
          "success", "push:learned:checkpoints/push_lewm:agent.energy_reduce=sum "
          "planner.select=best agent.distance_weight=0 agent.reachability_weight=1 "
          "planner.num_samples=256 planner.iterations=5 agent.stay_if_better=true"),
         ("learned sub-goals: task-goal proposer (`goal=task only_success=true`, stride 10, "
          "3573 successful episodes incl. 3000 expert)", "success",
          "push:learned:push_lewm + task-goal sub-goal proposer (stride 10, 3573 successful "
          f"episodes incl. 3000 expert; not shipped):{_LEWM} agent.learned_subgoals=true"),
         ("the instance's own scripted demonstration every 5 steps (a reference a user never "
          "has)", "success", f"push:learned:checkpoints/push_lewm:{_LEWM} "
          "agent.subgoal_capture_steps=[5,10,15,20,25,30] agent.subgoal_hold_steps=[5,5,5,5,5,5]"),
         ("previous `push_lewm`: 2 blocks, hindsight sub-goal proposer (stride 10, 1600 "
          "episodes)", "success", "push:learned:checkpoints/push_lewm:planner.horizon=2 "
          "agent.energy_reduce=sum agent.learned_subgoals=true")),
    ),
    "panda-modes": View(
        "mode (Panda, protocol=dataset)", ("task", "end", "reached", "moving", "n"),
        (("CEM 128 x 3 on the shipped `push_lewm` (its recommended settings)", "success",
          f"dataset:push:learned:checkpoints/push_lewm:{_LEWM}"),
         ("Direct, head on its 400 training episodes", "success",
          f"dataset:push:learned:runs/push_actor:{_ACTOR}{_DIRECT}"),
         ("Guarded (CEM around Direct)", "success",
          f"dataset:push:learned:runs/push_actor:{_ACTOR}planner.proposal=centre "
          "planner.num_elites=16 planner.init_std=0.25 agent.execute_steps=2 "
          "agent.stay_if_better=true"),
         ("the head seeding CEM", "success", f"dataset:push:learned:runs/push_actor:{_ACTOR}"
          "planner.proposal=seed agent.stay_if_better=true"),
         ("Direct, head on the expert episodes alone", "success",
          f"dataset:push:learned:runs/push_actor_exp:{_ACTOR}{_DIRECT}"),
         ("CEM 128 x 3 on the shipped `pickplace_lewm` (its recommended settings)", "success",
          f"dataset:pickplace:learned:checkpoints/pickplace_lewm:{_LEWM}"),
         ("Direct, head on its 400 training episodes", "success",
          f"dataset:pickplace:learned:runs/pick_actor:{_ACTOR}{_DIRECT}")),
    ),
    "cube-modes": View(
        "mode (OGBench cube)",
        ("reached_pct", "end_pct", "not_at_start", "strict", "search", "plan_ms"),
        (("**Direct, head trained jointly with the model** (the shipped `cube_lewm`)",
          "anchors", "cube:learned:direct_shipped"),
         ("plain CEM 300 x 5 on the shipped `cube_lewm` (bf16)", "anchors",
          "cube:learned:cem_same"),
         ("the shipped model, a new head on its frozen latents (training data), Direct",
          "anchors", "cube:learned:head_orig"),
         ("the same, the head also on wm-improve's 360 aggregated episodes, Direct", "anchors",
          "cube:learned:head_agg"),
         ("the shipped model after 3 wm-improve rounds, Direct", "anchors",
          "cube:learned:improved"),
         ("Below: one model (`runs/cube_k5`) with a head on its frozen latents. Direct, goals "
          "<= 25 steps ahead (shipped until 2026-12-07)", "anchors", "cube:learned:direct_frozen"),
         ("Direct, head with goals to the episode end", "anchors", "cube:learned:direct"),
         ("Guarded (CEM 128 x 3 around Direct), goals to the end", "anchors",
          "cube:learned:guarded"),
         ("Guarded, goals <= 25 ahead", "anchors", "cube:learned:w25_guarded"),
         ("actor-seeded CEM 300 x 5 (half the first population from the head)", "anchors",
          "cube:learned:actor_cem"),
         ("Direct, head on 1600 episodes (8000 steps)", "anchors", "cube:learned:d1600_direct"),
         ("plain CEM 300 x 5 on that model (the anchors' planner)", "anchors",
          "cube:learned:cem_k5"),
         ("the same, bf16 autocast in the planner (`agent.bf16`)", "anchors",
          "cube:learned:cem_same_bf16"),
         ("oracle: CEM 300 x 5 on the true simulator", "anchors", "cube:oracle"),
         ("random", "anchors", "cube:random")),
    ),
    "reacher-modes": View(
        "mode (reacher)", ("reached_pct", "end_pct", "not_at_start", "search"),
        (("plain CEM 300 x 5 (the anchors' planner)", "anchors", "reacher:learned:cem_same"),
         ("Direct (head on its 1000 episodes)", "anchors", "reacher:learned:direct"),
         ("random", "anchors", "reacher:random")),
    ),
    "anchors-variants": View(
        "row", ANCHORS,
        (("reacher: recipe's stage 2 (encoder frozen, a fresh predictor, 4000 steps)",
          "anchors", "reacher:learned:stage2"),
         ("reacher: blocks of 2, replanned every block", "anchors", "reacher:learned:k2_replan2"),
         ("reacher1 (3x-thicker arm), 250 episodes", "anchors", "reacher1:learned:data250"),
         ("reacher1, 500 episodes", "anchors", "reacher1:learned:data500"),
         ("reacher1, 1000 episodes", "anchors", "reacher1:learned"),
         ("reacher1, 1000 episodes, 3600 steps", "anchors", "reacher1:learned:steps3600"),
         ("reacher1, the tiny frozen encoder", "anchors", "reacher1:learned:tiny_frozen"),
         ("cube: lewm recipe, CEM (`scripts/anchor_cube_learned.sh`)", "anchors",
          "cube:learned"),
         ("cube: without the within-clip term, blocks of 2", "anchors",
          "cube:learned:no_within_k2"),
         ("cube: blocks of 2, replanned every block", "anchors", "cube:learned:k2_replan2"),
         ("cube: `sigreg_within=0.3`", "anchors", "cube:learned:k5_within0.3"),
         ("cube: clips that move the cube drawn x4 (`oversample_moving=4`)", "anchors",
          "cube:learned:k5_oversample4"),
         ("cube: stage 2 on 1200 episodes", "anchors", "cube:learned:stage2_1200ep")),
    ),
    "pusht": View(
        "agent", ANCHORS,
        (("relative actions: learned (1000 pusher episodes, lewm k = 5, 3000 steps, the head "
          "trained with it: `scripts/anchor_pusht_learned.sh`), Direct", "anchors",
          "pusht:learned:direct"),
         ("relative actions: the same model, plain CEM 300 x 5 (bf16)", "anchors",
          "pusht:learned:cem_same"),
         ("relative actions: the same recipe, the head on the frozen model's latents, Direct",
          "anchors", "pusht:learned:direct_frozen"),
         ("relative actions: that model, plain CEM 300 x 5", "anchors",
          "pusht:learned:cem_frozen"),
         ("relative actions: oracle, CEM 300 x 5 over 25 steps, sampling std 0.2", "anchors",
          "pusht:oracle"),
         ("relative actions: random", "anchors", "pusht:random"),
         ("absolute actions: learned, lewm recipe on 600 mixed pusher episodes", "anchors",
          "pusht_abs:learned"),
         ("absolute actions: oracle, the same CEM on true dynamics", "anchors",
          "pusht_abs:oracle"),
         ("absolute actions: random", "anchors", "pusht_abs:random")),
    ),
}  # fmt: skip


def render(name: str, results: Path = store.RESULTS) -> str:
    """The markdown of table `name` from the stored rows."""
    if name == "headline":
        from bench.headline import table

        return table(results)
    if name == "headline-commands":
        from bench.headline import HEADLINES, commands

        lines = [f"# {h.name}\n" + "\n".join(commands(h, results)) for h in HEADLINES]
        return "```bash\n" + "\n".join(lines) + "\n```\n"
    view = VIEWS[name]
    docs = {}
    titles = [view.first, *(COLUMNS[c][0] for c in view.columns)]
    lines = ["| " + " | ".join(titles) + " |", "|---" * len(titles) + "|"]
    for label, result, key in view.rows:
        if result not in docs:
            docs[result] = store.load(Path(result).name, results / Path(result).parent)["rows"]
        row = docs[result][key]
        lines.append("| " + " | ".join([label, *(COLUMNS[c][1](row) for c in view.columns)]) + " |")
    return "\n".join(lines) + "\n"


def rewrite(text: str, results: Path = store.RESULTS) -> str:
    """`text` with every table block rendered again from the store."""

    def block(m: re.Match[str]) -> str:
        if m["name"] not in ("headline", "headline-commands", *VIEWS):
            raise ValueError(f"table block {m['name']!r}: no such view; one of {list(VIEWS)}")
        return m.group(1) + render(m["name"], results) + m.group(4)

    return BLOCK.sub(block, text)


# --- success rates quoted outside the blocks ----------------------------------------------------

# A rate (0.66, 66, 66 %, **0.66**) then its interval in brackets ([0.52, 0.78], [52, 78],
# [52 %, 78 %], [95 %: 0.08, 0.50]); not inside a word, a number or a list (`x [0.25, 0.7]`).
QUOTE = re.compile(
    r"(?<![\w.\[/-])(?P<rate>\d+(?:\.\d+)?)(?P<pct> ?%)?(?:\*\*)? ?"
    r"\[(?:95 ?%: ?)?(?P<lo>\d+(?:\.\d+)?) ?%?, ?(?P<hi>\d+(?:\.\d+)?) ?%?\](?:\*\*)?"
)
SKIP = ("bench/results/", "docs/experiments.md")
UNTRACKED = {"runs", "data", "outputs", "multirun", "logs"}  # .gitignore's run folders


@dataclass(frozen=True)
class Quote:
    """A success rate quoted with its interval: `rate` is a fraction, or a count of successes
    when `count` (`3 [95 %: 0.08, 0.50]`); `unit` is the quote's last digit (0.01, or 1 %)."""

    text: str
    line: int
    rate: float
    lo: float
    hi: float
    unit: float
    count: bool


def quotes(text: str) -> Iterator[Quote]:
    """Every success rate with an interval in `text`."""
    for m in QUOTE.finditer(text):
        percent = bool(m["pct"]) or ("." not in m["lo"] and "." not in m["hi"])
        count = not percent and "." not in m["rate"]
        scale = 100 if percent else 1
        decimals = len(m["lo"].partition(".")[2])
        yield Quote(
            m.group(0), text.count("\n", 0, m.start()) + 1,
            float(m["rate"]) if count else float(m["rate"]) / scale,
            float(m["lo"]) / scale, float(m["hi"]) / scale,
            10.0**-decimals / scale, count,
        )  # fmt: skip


def stored_rates(results: Path = store.RESULTS) -> set[tuple[float, int]]:
    """(rate, episodes) of every rate a stored row holds, archive included: each fraction in
    [0, 1] that is a whole count of one of the row's episode counts (all, must move, ...)."""
    import json

    found: set[tuple[float, int]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        if not isinstance(node, dict):
            return
        counts = [node.get(k) for k in ("episodes", "moving_episodes", "episodes_not_at_start")]
        for value in node.values():
            if isinstance(value, float) and 0 <= value <= 1:
                for n in counts:
                    if isinstance(n, int) and n > 0 and abs(value * n - round(value * n)) < 1e-6:
                        found.add((value, n))
            walk(value)

    for path in results.rglob("*.json"):
        walk(json.loads(path.read_text()))
    return found


def held(quote: Quote, stored: set[tuple[float, int]]) -> bool:
    """Whether a stored (rate, n) rounds to the quote, rate and Wilson interval alike."""
    tol = quote.unit / 2 + 1e-9
    for rate, n in stored:
        k = round(rate * n)
        if (k != quote.rate) if quote.count else abs(rate - quote.rate) > tol:
            continue
        lo, hi = wilson_interval(k, n)
        if abs(lo - quote.lo) <= tol and abs(hi - quote.hi) <= tol:
            return True
    return False


def quoting_docs(root: Path = ROOT) -> list[Path]:
    """The markdown files whose quotes are checked (SKIP left out)."""
    folders = [
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in UNTRACKED
    ]
    paths = [root / "README.md", *(f for d in folders for f in sorted(d.rglob("*.md")))]
    rel = [p.relative_to(root).as_posix() for p in paths]
    return [p for p, r in zip(paths, rel, strict=True) if not r.startswith(SKIP)]


def unheld_quotes(root: Path = ROOT, results: Path = store.RESULTS) -> list[str]:
    """`path:line: quote` for every quote outside the table blocks that no stored row holds."""
    stored = stored_rates(results)
    out = []
    for path in quoting_docs(root):
        text = BLOCK.sub(lambda m: m.group(1) + "\n" * m["body"].count("\n") + m.group(4),
                         path.read_text())  # fmt: skip
        out += [
            f"{path.relative_to(root)}:{q.line}: {q.text}"
            for q in quotes(text)
            if not held(q, stored)
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCS:
        text = path.read_text()
        new = rewrite(text)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    verb = "differ from the store" if args.check else "rewritten"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "every table block is current")
    unheld = unheld_quotes()
    for line in unheld:
        print(f"not in the store: {line}")
    return 1 if (stale and args.check) or unheld else 0
