"""Action blocks: the planner's unit of time when the world model predicts k control steps at once.

A world model with `action_block = k` takes, per imagined step, the k actions of one block
concatenated in time order `(k * A,)` (LeWM / DINO-WM frameskip 5). The planner stays
block-agnostic: it is built with the env's per-step bounds tiled k times and a horizon counted
in blocks, so CEM / MPPI sample `(E, S, H, k * A)` and never learn what a block is. The agent
turns a planned block back into k control steps and shifts the warm start by whole blocks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from agent.checkpoint import read_checkpoint
from planners import make_planner, planner_config


def action_block(world_model: object) -> int:
    """Control steps per imagined step k of a world model (1 for models without blocks)."""
    k = int(getattr(world_model, "action_block", 1))
    if k < 1:
        raise ValueError(f"world model action_block={k}: must be >= 1")
    return k


def checkpoint_action_block(checkpoint: str | Path) -> int:
    """k of a checkpoint directory without loading it (1 for a missing directory, e.g. the
    oracle's default checkpoint on a foreign env); agent/checkpoint.py reads it."""

    return read_checkpoint(checkpoint).action_block


def tile_bounds(low: np.ndarray, high: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-step bounds `(A,)` -> per-block bounds `(k * A,)` (the same box at every step)."""
    if k < 1:
        raise ValueError(f"action block k={k}: must be >= 1")
    return np.tile(np.asarray(low), k), np.tile(np.asarray(high), k)


def unblock(plan: np.ndarray, action_dim: int) -> np.ndarray:
    """Planned blocks `(H, k * A)` -> control steps `(H * k, A)` in execution order."""
    if plan.ndim != 2 or plan.shape[1] % action_dim:
        raise ValueError(f"plan {plan.shape} is not (H, k * {action_dim})")
    return plan.reshape(-1, action_dim)  # [H * k, A]


def blocks_to_execute(execute_steps: int, k: int) -> int:
    """Whole blocks covering `execute_steps` control steps (at least one)."""
    return max(1, math.ceil(execute_steps / k))


def make_block_planner(
    planner_cfg: object, low: np.ndarray, high: np.ndarray, k: int, device: str = "cpu"
):
    """A planner over blocks on `device`: per-step bounds `(A,)` tiled to `(k * A,)`, horizon
    in blocks."""

    block_low, block_high = tile_bounds(low, high, k)
    return make_planner(planner_config(planner_cfg), block_low, block_high, device)
