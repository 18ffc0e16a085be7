"""Render speed: control steps/s with one 64 px frame per step, by how the frame is drawn.

    python -m bench render_speed                 # both parts (~2 min on 2 shared cores)
    python -m bench render_speed --only meshes   # one part; the other stays as stored

Two parts, each stored with its command, commit and machine:

* `meshes`: a mesh-heavy scene, OGBench's cube-single-v0 (UR5e + Robotiq: 34 visual meshes,
  185k faces), drawn through Gymnasium's ``MujocoRenderer``, the renderer of every Gymnasium
  MuJoCo env, with the foreign adapter's viewer setup (envs/foreign/adapter.py): as the model
  says (shadows, multisampling), ``fast_render`` (neither), and ``fast_render`` +
  ``simple_geoms`` (envs/foreign/mujoco_render.py). Also writes docs/simple_geoms_frames.png
  (the three frames side by side).
* `image_size`: Reacher-v5 through the foreign adapter, rendered at 64 px (with and without
  ``fast_render``) against rendered at Gymnasium's 480 px and resized.

Writes bench/results/render_speed.{json,md} through `bench.store`. The wm/* envs' own
control-step rates (rendering included) are `python -m bench envs`.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from bench import store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = store.RESULTS
FRAMES_PNG = ROOT / "docs" / "simple_geoms_frames.png"
MESH_MODES = {
    "as_modelled": {"fast_render": False, "simple_geoms": False},
    "fast_render": {"fast_render": True, "simple_geoms": False},
    "simple_geoms": {"fast_render": True, "simple_geoms": True},
}


def _steps_per_s(env: gym.Env, steps: int, frame: Callable[[], np.ndarray]) -> float:
    """Random-action control steps/s of `env`, drawing one frame per step."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32))
        frame()
    return steps / (time.perf_counter() - t0)


def mesh_mode(mode: str, steps: int, size: int = 64) -> tuple[float, np.ndarray]:
    """Steps/s (physics step + one frame) and the last frame `(size, size, 3)` of OGBench's
    cube scene in one rendering mode of `MESH_MODES`."""
    import ogbench  # noqa: F401  (registers cube-single-v0)
    from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

    from envs.foreign.adapter import _setup_mujoco_viewer

    env = gym.make("cube-single-v0")
    env.reset(seed=0)
    raw = env.unwrapped
    renderer = MujocoRenderer(
        raw.model, raw.data, width=size, height=size, camera_name="front_pixels"
    )
    base = SimpleNamespace(
        mujoco_renderer=renderer, model=raw.model, data=raw.data, render_mode="rgb_array"
    )
    _setup_mujoco_viewer(base, free_camera={}, **MESH_MODES[mode])
    rate = _steps_per_s(env, steps, lambda: renderer.render("rgb_array"))
    frame = renderer.render("rgb_array").copy()
    renderer.close()
    env.close()
    return rate, frame


def meshes(steps: int) -> dict[str, Any]:
    """The `meshes` part; saves the three frames side by side to docs/simple_geoms_frames.png."""
    from PIL import Image

    rates, frames = {}, []
    for mode in MESH_MODES:
        rates[mode], frame = mesh_mode(mode, steps)
        frames.append(frame)
        print(f"meshes {mode}: {rates[mode]:.2f} steps/s at 64 px", flush=True)
    strip = np.concatenate(frames, axis=1)  # (64, 192, 3)
    big = (strip.shape[1] * 3, strip.shape[0] * 3)
    Image.fromarray(strip).resize(big, Image.NEAREST).save(FRAMES_PNG)
    return {
        "env": "ogbench cube-single-v0 through gymnasium MujocoRenderer, camera front_pixels",
        "steps": steps,
        "steps_per_s": rates,
    }


def image_size(steps: int) -> dict[str, Any]:
    """The `image_size` part: Reacher-v5 at 64 px, drawn three ways."""
    from envs.foreign.adapter import PixelStateAdapter
    from envs.foreign.make import make_gym_env

    makers = {
        "64px": lambda: make_gym_env("Reacher-v5", image_size=64),
        "64px_no_fast_render": lambda: make_gym_env("Reacher-v5", image_size=64, fast_render=False),
        "480px_resized": lambda: PixelStateAdapter(
            gym.make("Reacher-v5", render_mode="rgb_array"), 64
        ),
    }
    rates = {}
    for how, make in makers.items():
        env = make()
        env.reset(seed=0)
        rates[how] = _steps_per_s(env, steps, lambda: None)  # the adapter renders in step()
        env.close()
        print(f"image_size {how}: {rates[how]:.0f} steps/s", flush=True)
    return {"env": "Reacher-v5 through the foreign adapter", "steps": steps, "steps_per_s": rates}


def _part_lines(part: dict[str, Any], labels: dict[str, str]) -> list[str]:
    prov = part.get("provenance") or {}
    made = (
        f"`{prov['command']}` at {prov['commit'][:12]}, {store.machine_line(prov['machine'])}"
        if prov
        else f"`{part.get('command', '?')}` on {part.get('machine', '?')} (no provenance)"
    )
    note = f" {part['note']}" if part.get("note") else ""
    lines = [f"{part['env']}, {part['steps']} steps per mode. Made by {made}.{note}", ""]
    lines += ["| frame | steps/s |", "|---|---|"]
    lines += [f"| {labels.get(k, k)} | {v:.1f} |" for k, v in part["steps_per_s"].items()]
    return lines


def render(data: dict[str, Any]) -> str:
    """render_speed.md from the stored document (each part as it was last measured)."""
    lines = [
        "# Render speed (control steps/s, one 64 px frame per step, random actions)",
        "",
        "`python -m bench render_speed`; the cores were shared with other jobs, so rates are "
        "lower bounds.",
    ]
    if "meshes" in data:
        lines += ["", "## A mesh-heavy scene (`env.simple_geoms`)", ""]
        lines += _part_lines(
            data["meshes"],
            {"as_modelled": "as modelled (shadows, multisampling)",
             "fast_render": "`fast_render`", "simple_geoms": "`fast_render` + `simple_geoms`"},
        )  # fmt: skip
        lines += ["", "Frames side by side: docs/simple_geoms_frames.png."]
    if "image_size" in data:
        lines += ["", "## Rendered at the model's size, or rendered large and resized", ""]
        lines += _part_lines(
            data["image_size"],
            {"64px": "rendered at 64 px, `fast_render`", "64px_no_fast_render":
             "rendered at 64 px, no `fast_render`", "480px_resized": "rendered at 480 px, resized"},
        )  # fmt: skip
    return "\n".join(lines) + "\n"


PARTS = {"meshes": meshes, "image_size": image_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PARTS), help="measure one part")
    parser.add_argument("--steps", type=int, default=40, help="control steps, meshes part")
    parser.add_argument("--size-steps", type=int, default=300, help="steps, image_size part")
    args = parser.parse_args(argv)
    store.check("render_speed", OUT)
    steps = {"meshes": args.steps, "image_size": args.size_steps}
    measured = {}
    for name in [args.only] if args.only else list(PARTS):
        measured[name] = PARTS[name](steps[name]) | {"provenance": store.provenance()}
    with store.keep_unstored("render_speed", measured, OUT):
        data = store.update("render_speed", lambda data: data.update(measured), render, OUT)
    print(render(data), end="")
