"""The trajectory both dataset formats read and write (`Episode`), the error their readers
raise (`DatasetError`), and the checks and attribute decoding they share.

It imports neither format: the HDF5 file (envs/data/hdf5.py) and the LeRobot directory
(envs/data/lerobot/) both build on it, and `envs.data.open_dataset` picks one by the path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupt or not in this layout."""


@dataclass
class Episode:
    """One trajectory: frames/states (L+1, ...), actions (L, 7), and its goal."""

    pixels: np.ndarray  # (L+1, H, W, 3) uint8
    states: np.ndarray  # (L+1, 7) float32
    actions: np.ndarray  # (L, 7) float32
    goal_pixels: np.ndarray  # (H, W, 3) uint8
    goal_state: np.ndarray  # (7,) float32
    attrs: dict[str, Any] = field(default_factory=dict)
    rewards: np.ndarray | None = None  # (L,) float32
    sim_states: np.ndarray | None = None  # (L+1, S) float64

    def __len__(self) -> int:
        return len(self.actions)


def non_finite(key: str, values: np.ndarray) -> str:
    """ "" when every value is finite, else what and where: ``actions holds 1 non-finite values
    (first at step 2: nan)``; rows are steps for (L, D) arrays."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return ""
    where = f"at step {int(np.argwhere(bad)[0][0])}: " if values.ndim > 1 else ""
    return f"{key} holds {int(bad.sum())} non-finite values (first {where}{values[bad][0]})"


SIM_STATE_LIMIT = 1e10
"""Largest simulator-state magnitude taken as real: MuJoCo's ``mjMAXVAL``, past which
``mj_checkPos`` / ``mj_checkVel`` treat a simulation as diverged and reset it."""


def bad_sim_states(values: np.ndarray) -> str:
    """ "" when `(L+1, S)` simulator states can have come from a simulator, else what and where
    (``states holds 1 values beyond 1e10 (first at step 3: 1e+300)``).

    NaN passes: it marks a number the simulator does not have at that frame (Push-T's last
    action before the first one). Restoring a state refuses NaN wherever the simulator needs
    the number (`envs.common.sim_state.set_sim_state`), naming the step the caller restores.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        return f"states have shape {values.shape}; expected (L+1, S)"
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        return f"states have dtype {values.dtype}; expected numbers (float64)"
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (np.abs(values) > SIM_STATE_LIMIT)
    if not bad.any():
        return ""
    step, index = (int(i) for i in np.argwhere(bad)[0])
    return (
        f"states holds {int(bad.sum())} values that are infinite or beyond {SIM_STATE_LIMIT:g} "
        f"(first at step {step}, index {index}: {values[step, index]:g}): no simulator state"
    )


def decode_attr(value: Any) -> Any:
    """An HDF5 attribute as plain Python: bytes -> str, JSON text -> its value, numpy scalar ->
    Python scalar (what the readers return and the LeRobot writer stores as JSON)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value.item() if isinstance(value, np.generic) else value
