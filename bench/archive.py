"""Move superseded rows of a result to bench/results/archive/<name>.{json,md}.

    python -m bench archive success --superseded          # rows labelled previous / replaced
    python -m bench archive success --key "push:learned:..." --reason "retrained"

A results table keeps the rows a reader should quote: the current headline per task, agent
and protocol, and the variants measured beside it. A row is superseded when a newer run
replaced it under the same key (`bench.store.merge` archives those by itself) or when its
label says its model was "previous" or "replaced". Archived rows keep everything they had,
plus the date and the reason they were moved; nothing is deleted.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Callable
from typing import Any

from bench import store

# result name -> "module:function" rendering its markdown from the stored document
RENDERERS = {
    "success": "bench.success:render",
    "anchors": "bench.anchors:to_markdown",
    "plan_diagnosis": "bench.plan_diagnosis:render",
    "energy_ablation": "bench.energy_ablation:render",
    "energy_configs": "bench.energy_configs:render",
}
SUPERSEDED = re.compile(r"\b(previous|replaced)\b", re.IGNORECASE)


def renderer(name: str) -> Callable[[dict[str, Any]], str]:
    module, _, function = RENDERERS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def superseded_keys(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Rows whose key, label or checkpoint label names their model as previous or replaced."""
    return [
        key
        for key, row in rows.items()
        if any(
            SUPERSEDED.search(str(text or ""))
            for text in (key, row.get("label"), row.get("checkpoint"))
        )
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RENDERERS), help="the result (bench/results/NAME)")
    parser.add_argument("--superseded", action="store_true", help="rows labelled previous/replaced")
    parser.add_argument("--key", action="append", default=[], help="a row key to archive")
    parser.add_argument("--reason", default="", help="why (stored with each archived row)")
    parser.add_argument("--dry-run", action="store_true", help="list the rows, move nothing")
    args = parser.parse_args(argv)
    rows = store.load(args.name)["rows"]
    keys = list(args.key)
    unknown = [k for k in keys if k not in rows]
    if unknown:
        parser.error(f"no such rows in {args.name}.json: {unknown}")
    if args.superseded:
        keys += [k for k in superseded_keys(rows) if k not in keys]
    reason = args.reason or "its label names a previous / replaced model"
    for key in keys:
        print(f"{'would archive' if args.dry_run else 'archive'}: {key}")
    if keys and not args.dry_run:
        render = renderer(args.name)
        store.archive(args.name, keys, reason, render, archive_render=render)
        print(f"{len(keys)} rows -> bench/results/archive/{args.name}.{{json,md}}")


if __name__ == "__main__":
    main()
