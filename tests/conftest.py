"""Shared test setup: offscreen rendering, a fixed torch thread count (CI has 2 cores), and the
fixtures more than one test file uses."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reach_copy(tmp_path) -> Path:
    """A copy of the shipped reach checkpoint (weights symlinked: only config.json changes)."""
    copy = tmp_path / "reach"
    copy.mkdir()
    src = ROOT / "checkpoints" / "reach_lewm"
    shutil.copy(src / "config.json", copy / "config.json")
    (copy / "model.safetensors").symlink_to(src / "model.safetensors")
    return copy
