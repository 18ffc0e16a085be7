"""Two envs the project does not define, from two simulators, end to end through the console
scripts: wm-collect -> wm-train (tiny) -> wm-eval learned / oracle / random, no user code.

CI-sized: 16 px frames, 2 short episodes, 4 training steps; it checks that every stage runs and
writes what the next one reads, not how well the model plans (bench/foreign.py measures that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train import TINY_WM_OVERRIDES

ROOT = Path(__file__).resolve().parent.parent
ENVS = {
    "Reacher-v5": ["env.max_episode_steps=8"],  # MuJoCo, rendered at 16 px by the env itself
    "Pendulum-v1": ["env.max_episode_steps=8"],  # classic control (pygame), resized
}


def cli(module: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, f"{module} {args}:\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("env_id", list(ENVS))
def test_collect_train_eval_from_the_cli(tmp_path, env_id):
    data = tmp_path / "data.h5"
    log = cli(
        "envs.collect",
        f"env.id={env_id}",  # a foreign id alone picks the generic entry
        "env.image_size=16",
        *ENVS[env_id],
        "policy.name=smooth",
        "num_episodes=2",
        "num_workers=0",
        f"output={data}",
    )
    assert "2 episodes" in log and "Traceback" not in log  # no EGL teardown noise either
    run = tmp_path / "wm"
    cli(
        "world_model.training.train",
        f"data=[{data}]",
        f"out_dir={run}",
        f"cache_dir={tmp_path / 'cache'}",
        "steps=4",
        "batch_size=4",
        "clip_len=3",
        "val_every=4",
        "optim.warmup_steps=1",
        "optim.decay_steps=1",
        *TINY_WM_OVERRIDES,
    )
    for kind in ("learned", "oracle", "random"):
        out = tmp_path / kind
        cli(
            "agent.eval",
            f"env.id={env_id}",
            "+env.kwargs.image_size=16",
            "env.protocol=replay",
            "env.goal_offset=2",
            "env.max_steps=3",
            f"agent.kind={kind}",
            f"agent.checkpoint={run / 'world_model'}",
            "planner.num_samples=8",
            "planner.iterations=1",
            "planner.num_elites=2",
            "episodes=1",
            "videos=0",
            f"out_dir={out}",
        )
        summary = json.loads((out / "results.json").read_text())
        assert summary["episodes"] == 1 and len(summary["per_episode"][0]["distances"]) == 3
