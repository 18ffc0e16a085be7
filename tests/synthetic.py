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
