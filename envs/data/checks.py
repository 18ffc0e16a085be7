"""Value checks of a dataset file beyond its layout: actions inside the box they were recorded
in. `envs.data.hdf5`'s reader applies them to every episode when a file is opened.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def recorded_action_bounds(attrs: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of the env contract a file was recorded under (``data`` attr
    ``env_contract``); None for files written before the attr existed."""
    raw = attrs.get("env_contract")
    if raw is None:
        return None
    contract = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return np.asarray(contract["action_low"]), np.asarray(contract["action_high"])


def outside_bounds(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> str:
    """ "" when every action lies in [low, high] up to float32 rounding, else where it does
    not. The recorder clips each action into the env's box, so anything past it was scaled
    or edited after recording, and the model would learn dynamics no env produces."""
    if len(low) != actions.shape[-1] or len(high) != actions.shape[-1]:
        return f"actions have {actions.shape[-1]} dimensions, the recorded bounds {len(low)}"
    tol = 1e-5 + 1e-4 * np.maximum(np.abs(low), np.abs(high))  # float32 round trip
    bad = (actions < low - tol) | (actions > high + tol)
    if not bad.any():
        return ""
    step, dim = (int(i) for i in np.argwhere(bad)[0])
    return (
        f"{int(bad.sum())} action values lie outside the recorded bounds (first at step {step}, "
        f"dimension {dim}: {actions[step, dim]:g} not in [{low[dim]:g}, {high[dim]:g}])"
    )
