"""Change the eval settings a checkpoint plans with (wm-train writes the ones its model was
trained for), so `wm-eval`, `wm-demo` and `load_agent` use them unless told otherwise
(agent/config.py: `with_recommended`).

    python -m agent.recommend checkpoints/push_lewm planner.horizon=5 planner.num_samples=128 \\
        planner.iterations=3 agent.energy_reduce=sum

No settings clears the entry. Values are parsed as YAML scalars (5 -> int, sum -> str).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from agent.config import check_recommended
from envs.data.storage import atomic_write
from world_model.config import RECOMMENDED_KEY


def set_recommended(checkpoint: str | Path, settings: dict[str, Any]) -> Path:
    """Write `settings` into the checkpoint's config.json (atomically) after the validation
    `read_checkpoint` applies when reading, so a bad entry never reaches the file."""
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a checkpoint directory with a config.json")
    payload = json.loads(path.read_text())
    payload.setdefault("extra", {})[RECOMMENDED_KEY] = check_recommended(settings, path)
    atomic_write(path, json.dumps(payload, indent=2).encode(), mode=0o644)
    return path


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit(__doc__)
    settings = {}
    for arg in args[1:]:
        key, sep, value = arg.partition("=")
        if not sep:
            raise SystemExit(f"{arg!r}: expected key=value, e.g. planner.horizon=5")
        settings[key] = yaml.safe_load(value)
    path = set_recommended(args[0], settings)
    print(f"{path}: extra.{RECOMMENDED_KEY} = {json.dumps(settings)}")


if __name__ == "__main__":
    main()
