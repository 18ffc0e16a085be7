"""Control steps per second of a mesh-heavy MuJoCo scene rendered at 64 px, three ways.

    PYTHONPATH=$PWD MUJOCO_GL=egl .venv/bin/python -m bench.render_speed [--steps 40]

The scene is OGBench's cube-single-v0 (UR5e + Robotiq: 34 visual meshes, 185k faces), drawn
through Gymnasium's ``MujocoRenderer``, the renderer of every Gymnasium MuJoCo env, with the
foreign adapter's viewer setup (envs/foreign/adapter.py): as the model says (shadows,
multisampling), ``fast_render`` (neither), and ``fast_render`` + ``simple_geoms``
(envs/foreign/mujoco_render.py).
Writes bench/results/render_speed.json and docs/simple_geoms_frames.png (the three frames).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer
from PIL import Image

from envs.foreign.adapter import _setup_mujoco_viewer

ROOT = Path(__file__).resolve().parent.parent
MODES = {
    "as_modelled": {"fast_render": False, "simple_geoms": False},
    "fast_render": {"fast_render": True, "simple_geoms": False},
    "simple_geoms": {"fast_render": True, "simple_geoms": True},
}


def measure(mode: str, steps: int, size: int = 64) -> tuple[float, np.ndarray]:
    """Steps/s (physics step + one frame) and the last frame, for one rendering mode."""
    import ogbench  # noqa: F401  (registers cube-single-v0)

    env = gym.make("cube-single-v0")
    env.reset(seed=0)
    raw = env.unwrapped
    renderer = MujocoRenderer(
        raw.model, raw.data, width=size, height=size, camera_name="front_pixels"
    )
    base = SimpleNamespace(
        mujoco_renderer=renderer, model=raw.model, data=raw.data, render_mode="rgb_array"
    )
    _setup_mujoco_viewer(base, free_camera={}, **MODES[mode])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.uniform(env.action_space.low, env.action_space.high))
        frame = renderer.render("rgb_array")
    rate = steps / (time.perf_counter() - t0)
    renderer.close()
    env.close()
    return rate, frame.copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    rates, frames = {}, []
    for mode in MODES:
        rates[mode], frame = measure(mode, args.steps)
        frames.append(frame)
        print(f"{mode}: {rates[mode]:.2f} steps/s at 64 px", flush=True)
    out = {
        "env": "ogbench cube-single-v0 through gymnasium MujocoRenderer, camera front_pixels",
        "steps_per_s": rates,
        "steps": args.steps,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, MUJOCO_GL="
        f"{os.environ.get('MUJOCO_GL')}, loadavg {os.getloadavg()[0]:.1f}",
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "render_speed.json").write_text(json.dumps(out, indent=2))
    strip = np.concatenate(frames, axis=1)  # (64, 192, 3)
    Image.fromarray(strip).resize((strip.shape[1] * 3, strip.shape[0] * 3), Image.NEAREST).save(
        ROOT / "docs" / "simple_geoms_frames.png"
    )
