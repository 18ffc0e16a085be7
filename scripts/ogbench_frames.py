"""Side-by-side PNG of wm/OGBenchCube-v0 frames: OGBench's mesh rendering vs the fast mode.

    PYTHONPATH=$PWD .venv/bin/python scripts/ogbench_frames.py [--out docs/ogbench_cube_frames.png]

Rows are states reached by the same seeded actions in both envs (identical physics); columns
are OGBench's rendering (fast_render=False), the fast rendering, and 4x their absolute
difference. Frames are 64 px, shown 4x enlarged with nearest-neighbour.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import envs  # noqa: F401  (registers wm/*)
from envs.common.experts import make_policy


def frames(seeds: list[int], steps: int) -> np.ndarray:
    """(rows * 64, 3 * 64, 3) uint8: original | fast | 4 x |difference| per seed."""
    orig = gym.make("wm/OGBenchCube-v0", fast_render=False)
    fast = gym.make("wm/OGBenchCube-v0")
    rows = []
    for seed in seeds:
        obs_o, info = orig.reset(seed=seed)
        obs_f, _ = fast.reset(seed=seed)
        policy = make_policy("ogbench_plan", orig, seed=seed)  # moves arm and cube into view
        for _ in range(steps):
            action = policy(obs_o, info)
            obs_o, _, _, _, info = orig.step(action)
            obs_f, *_ = fast.step(action)
        a, b = obs_o["pixels"], obs_f["pixels"]
        diff = np.clip(4 * np.abs(a.astype(int) - b.astype(int)), 0, 255).astype(np.uint8)
        rows.append(np.concatenate([a, b, diff], axis=1))
    orig.close()
    fast.close()
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/ogbench_cube_frames.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=30, help="oracle steps before the frame")
    args = parser.parse_args()
    grid = frames(args.seeds, args.steps)
    img = Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
