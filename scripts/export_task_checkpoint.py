"""Copy a world-model checkpoint with one task's env contract stamped into its config.json.

A model trained on several Panda tasks at once (same robot, camera, control rate) has no
single env contract; the agent needs one to drive an env. This writes a copy per task:

    .venv/bin/python scripts/export_task_checkpoint.py runs/lewm_all/world_model \
        data/push_mixed.h5 checkpoints/push_lewm
"""

from __future__ import annotations

import sys
from pathlib import Path

from world_model import load_world_model, save_world_model
from world_model.checkpoint import read_config
from world_model.training.latents import dataset_contract


def main(src: str, dataset: str, dst: str) -> None:
    stored = read_config(Path(src))
    model = load_world_model(stored)
    model.env_contract = dataset_contract([dataset])
    extra = stored.extra | {"env_from": dataset, "exported_from": src}
    save_world_model(model, dst, extra=extra)
    print(f"{dst}: {model.env_contract.to_dict()}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
