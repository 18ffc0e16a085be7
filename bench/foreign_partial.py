"""Write bench/results/foreign.{json,md} from bench.foreign's work folder while (or after) its
evaluations run: finished runs from results.json, unfinished ones from the episodes their
TensorBoard logs hold so far (marked "partial"). For a shared machine where the full run does
not finish in the time there is; the row's episode count says how many were run.

    python -m bench foreign_partial --work runs/bench_foreign --k 5 --goals replay
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import store
from bench.foreign import AGENTS, OUT, to_markdown
from bench.stats import wilson_or_unit as wilson


def tb_row(run: Path, kind: str) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    success = [x.value for x in acc.Scalars("episode/success")] if "episode/success" in tags else []
    dist = [x.value for x in acc.Scalars("episode/final_distance_m")] if success else []
    plan = [x.value for x in acc.Scalars("episode/plan_ms_median")] if success else []
    n, k = len(success), int(sum(success))
    return {
        "agent": kind,
        "episodes": n,
        "success": k / n if n else 0.0,
        "ci95": list(wilson(k, n)),
        "final_distance": sum(dist) / n if n else float("nan"),
        "threshold": None,
        "distance": None,
        "plan_ms_p50": sorted(plan)[len(plan) // 2] if plan else 0.0,
        "partial": True,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/bench_foreign")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--goals", default="replay")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    work = Path(args.work)
    stages = json.loads((work / "stages.json").read_text())
    result = {
        "machine": store.machine_line(store.machine()),
        "command": "python -m bench foreign_partial " + " ".join(f"--{k} {v}" for k, v in
                                                                 vars(args).items() if v),
        "provenance": store.provenance(),
        "goals": args.goals,
        "k": args.k,
        "note": args.note,
        "envs": {},
    }  # fmt: skip
    for key, stage in stages.items():
        name = key.split("/")[0]
        env = dict(stage, rows=[])
        for kind in AGENTS:
            run = work / f"{name}_eval_{kind}"
            done = run / "results.json"
            if done.exists():
                s = json.loads(done.read_text())
                n, rate = s["episodes"], s["success_rate"]
                env["rows"].append({
                    "agent": kind, "episodes": n, "success": rate,
                    "ci95": list(wilson(round(rate * n), n)),
                    "final_distance": s["mean_final_distance"],
                    "threshold": s["distance"]["threshold"], "distance": s["distance"]["distance"],
                    "plan_ms_p50": s["plan_ms_p50"], "partial": False,
                })  # fmt: skip
            elif run.exists():
                env["rows"].append(tb_row(run, kind))
        finished = [r for r in env["rows"] if r["distance"]]
        for row in env["rows"]:
            if finished and not row["distance"]:
                row["threshold"], row["distance"] = (
                    finished[0]["threshold"],
                    finished[0]["distance"],
                )
        rates = {r["agent"]: r["success"] for r in env["rows"]}
        oracle = rates.get("oracle")
        env["learned_over_oracle"] = rates.get("learned", 0.0) / oracle if oracle else None
        result["envs"][name] = env
    speed = work / "render_speed.json"  # bench.foreign.render_speed(), measured separately
    if speed.exists():
        result["render_speed"] = json.loads(speed.read_text())

    def render(data: dict) -> str:
        return to_markdown(data) + (f"\n{args.note}\n" if args.note else "")

    store.save("foreign", result, render, OUT)
    print(render(result))


if __name__ == "__main__":
    main()
