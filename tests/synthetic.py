"""Synthetic episodes in the envs.data.episode shape, for tests and smoke runs without MuJoCo.

A bright square moves on a dark 64 x 64 image; its position is the state's xy and each action
shifts it (s_{t+1} = s_t + a_t), so the latent dynamics are learnable from pixels + actions.
"""

from __future__ import annotations

import numpy as np

from envs.data.episode import Episode


def render(xy: np.ndarray, size: int, square: int = 10) -> np.ndarray:
    """Square centred at xy in [-1, 1]^2 -> (size, size, 3) uint8."""
    img = np.full((size, size, 3), 30, dtype=np.uint8)
    c = ((np.clip(xy, -1, 1) + 1) / 2 * (size - square)).astype(int)  # top-left corner (col, row)
    img[c[1] : c[1] + square, c[0] : c[0] + square] = (230, 180, 40)
    return img


def synthetic_episodes(
    num: int, length: int = 12, size: int = 64, seed: int = 0, task: str = "synthetic"
) -> list[Episode]:
    """`num` episodes of `length` actions with random bounded moves."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        actions = np.zeros((length, 7), dtype=np.float32)
        actions[:, :2] = rng.uniform(-0.25, 0.25, size=(length, 2))
        states = np.zeros((length + 1, 7), dtype=np.float32)
        states[0, :2] = rng.uniform(-0.8, 0.8, size=2)
        for t in range(length):
            states[t + 1] = states[t] + actions[t]
            states[t + 1, :2] = np.clip(states[t + 1, :2], -1, 1)
        pixels = np.stack([render(s[:2], size) for s in states])
        out.append(Episode(pixels, states, actions, pixels[-1], states[-1], {"env_id": task}))
    return out


def perturbed(value: object) -> object:
    """A different value of the same kind, for property tests of dataset readers: numbers
    moved by one (booleans flipped), strings and JSON text changed in their first leaf, the
    first element of a list or array changed."""
    import json

    if isinstance(value, bytes):
        return perturbed(value.decode()).encode()
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value + "x"
        return json.dumps(perturbed(decoded)) if isinstance(decoded, dict | list) else value + "x"
    if isinstance(value, dict):
        if not value:
            return {"x": 1}
        key = sorted(value)[0]
        return {**value, key: perturbed(value[key])}
    if isinstance(value, list):
        return [perturbed(value[0]), *value[1:]] if value else [0]
    if isinstance(value, np.ndarray):
        out = value.copy()
        flat = out.reshape(-1)
        if flat.size and out.dtype.kind in "iu":
            flat[0] ^= 1  # stays in range (uint8 pixels)
        elif flat.size:
            flat[0] = perturbed(flat[0].item())
        return out
    if isinstance(value, bool | np.bool_):
        return not value
    if value is None:
        return 1
    if isinstance(value, float) and np.isnan(value):
        return 0.0
    return value + 1 if isinstance(value, int | float | np.number) else value
