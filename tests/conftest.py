"""Shared test setup: offscreen rendering and a fixed torch thread count (CI has 2 cores)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
