"""Upgrades of older `config.json` payloads to the current checkpoint version.

`UPGRADES[v](payload, directory)` turns a version-`v` payload into a version-`v + 1` one, or
refuses with a message saying how to get a current checkpoint. `world_model.checkpoint` applies
them in order when it reads a directory; the file on disk is never rewritten.

Version history:

* 1: weights, world-model config, encoder architecture, latent layout, ``extra``.
* 2: adds the top-level ``"env"`` section, the `envs.common.contract.EnvContract` of the data the
  model was trained on (env id, control rate, action box, image size, dims, workspace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.common.contract import EnvContract

# The checkpoints this project shipped as version 1, by the sha256 of their model.safetensors:
# checkpoints/{reach,push,pickplace}_tiny, retired since (their last commit: 7ff834f; users may
# still hold copies). All three were trained on wm/Panda* data of env revision 2 recorded with
# the default PandaEnvConfig (5 Hz, 64 px; their README.md at that commit says how).
SHIPPED_V1 = {
    "d5767035fdb1584c4dd79ff23b6aea132f68ed0616ce675b3bd914ce014dea5b": "wm/PandaReach-v0",
    "a220ab77ef3b3e859116be17e7dd587ace83accf28eb0c4ebf45113e82d9bc4f": "wm/PandaPush-v0",
    "49a768e935fa2fa1da23eb54d656e2ccac9fc5922955cfb8b15376d0fa0d6bbe": "wm/PandaPickPlace-v0",
}
_PANDA_TASKS = {
    "wm/PandaReach-v0": "reach",
    "wm/PandaPush-v0": "push",
    "wm/PandaPickPlace-v0": "pick_place",
}


def default_panda_contract(env_id: str, env_revision: int) -> EnvContract:
    """The contract of a wm/Panda* env with the default `PandaEnvConfig` (no simulator needed)."""
    from envs.common.config import PandaEnvConfig

    cfg = PandaEnvConfig(task=_PANDA_TASKS[env_id])
    low, high = cfg.action_bounds()
    return EnvContract(
        env_id=env_id,
        control_hz=cfg.control_hz,
        action_low=low,
        action_high=high,
        image_size=cfg.image_size,
        state_dim=7,
        action_dim=len(low),
        env_revision=env_revision,
        workspace_low=cfg.workspace_low,
        workspace_high=cfg.workspace_high,
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def upgrade_v1(payload: dict[str, Any], directory: Path) -> dict[str, Any]:
    """v1 -> v2: only the shipped checkpoints are known to come from a given env."""
    weights = directory / "model.safetensors"
    env_id = SHIPPED_V1.get(_sha256(weights)) if weights.is_file() else None
    if env_id is None:
        data = ",".join(payload.get("extra", {}).get("train_config", {}).get("data", ["..."]))
        raise ValueError(
            f"{directory / 'config.json'} is a version-1 checkpoint: it does not record the env "
            "it was trained on (control rate, action bounds, image size), so it cannot be checked "
            "against the env it would drive. Retrain it with the current wm-train, which copies "
            f'them from the dataset: wm-train "data=[{data}]" out_dir=runs/<name>'
        )
    return {**payload, "version": 2, "env": default_panda_contract(env_id, 2).to_dict()}


UPGRADES: dict[int, Callable[[dict[str, Any], Path], dict[str, Any]]] = {1: upgrade_v1}
