"""Fault injection for agent/: a malformed config.json through the agent's readers, a camera or
physics step the model was not trained with, non-finite energies at run time, a video on a
full disk, and named errors as one line instead of a Hydra traceback (issues 12 and 24;
docs/robustness.md).

The full-disk cases mount a small tmpfs (root only) and skip where that is not allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the wm/* ids)
from envs.data.storage import DiskFullError
from tests.faults import (
    ROOT,
    edit_config,
    tmpfs,
)
from tests.test_train import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
RUN_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": ""}


# ------------------------------------------------------------------------------ NaN at run time
def test_non_finite_energies_are_reported_on_the_agent_stats() -> None:
    from agent.mpc import MPCAgent
    from agent.rollout import run_episode
    from tests.test_agent import HIGH, LOW, NaNWorldModel, small_planner
    from tests.test_ros_fakes import FakeReach

    agent = MPCAgent(NaNWorldModel(), small_planner(), LOW, HIGH)
    result = run_episode(FakeReach(), agent, seed=0, max_steps=3)
    assert "non-finite energy for every candidate" in agent.stats.error
    assert agent.stats.errors == 3 and result.planner_errors == 3
    agent.reset()
    assert agent.stats.error == "" and agent.stats.errors == 0


# ------------------------------------------------------------------ 1, 6: config.json through the agent's readers
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", r"expected a JSON object .* got list"),
        ("{not json", r"is corrupt \(not valid JSON\)"),
        (None, r"env\.control_hz='fast' must be a finite number"),
        (None, r"world_model\.predictor\.depth='3' must be an integer"),
        (None, r"extra must be an object"),
    ],
)
def test_malformed_config_json_is_named_with_the_field(reach_copy, text, message) -> None:
    from agent.checkpoint import read_checkpoint
    from agent.factory import load_agent

    path = reach_copy / "config.json"
    if text is not None:
        path.write_text(text)
    elif "control_hz" in message:
        edit_config(reach_copy, lambda p: p["env"].update(control_hz="fast"))
    elif "depth" in message:
        edit_config(reach_copy, lambda p: p["world_model"]["predictor"].update(depth="3"))
    else:
        edit_config(reach_copy, lambda p: p.update(extra=[]))
    for reader in (read_checkpoint, load_agent):  # wm-eval reads it in this order
        with pytest.raises(ValueError, match=rf"{path}.*{message}"):
            reader(reach_copy)


# ------------------------------------------------------------------ 4: camera, sim_dt
@pytest.fixture(scope="module")
def stamped_checkpoint(tmp_path_factory) -> Path:
    """A tiny reach model whose contract records the default camera and physics step."""
    from tests.test_agent import tiny_world_model
    from world_model import save_world_model

    path = tmp_path_factory.mktemp("stamped") / "tiny"
    model = tiny_world_model()
    assert model.env_contract.camera_fovy == 50.0 and model.env_contract.sim_dt == 0.002
    save_world_model(model, path)
    return path


@pytest.mark.parametrize(
    ("env_kwargs", "field"),
    [
        ({"camera_pos": (0.3, 0.9, 1.5)}, "camera_pos"),
        ({"camera_fovy": 90.0}, "camera_fovy"),
        ({"sim_dt": 0.004}, "sim_dt"),
    ],
)
def test_another_camera_or_physics_step_is_refused_unless_allowed(
    stamped_checkpoint, env_kwargs, field
) -> None:
    from agent.config import AgentConfig
    from agent.evaluate import contract_changes
    from agent.factory import load_agent

    env = gym.make("wm/PandaReach-v0", **env_kwargs)
    try:
        with pytest.raises(ValueError, match=rf"{field} mismatch.*allow_contract_change=true"):
            load_agent(stamped_checkpoint, env=env)
        agent = load_agent(
            stamped_checkpoint, env=env, agent_cfg=AgentConfig(allow_contract_change=True)
        )
        (change,) = contract_changes(agent, env)
        assert change.startswith(f"{field} mismatch")
    finally:
        env.close()


def test_a_checkpoint_without_camera_fields_is_checked_against_the_default(reach_copy) -> None:
    """Issue 32 item 2: ``wm-eval agent.checkpoint=checkpoints/reach_lewm
    "+env.kwargs.camera_fovy=90"`` ran with the wider camera (100 % -> 0 %, exit 0,
    ``contract_changes: []``): the shipped checkpoints record no camera, and "unknown" was
    not checked. They were trained on the env's default camera, which is what they are held to."""
    from agent.config import AgentConfig
    from agent.evaluate import contract_changes
    from agent.factory import load_agent

    env = gym.make("wm/PandaReach-v0", camera_fovy=90.0)
    try:
        assert load_agent(reach_copy).contract.camera_fovy is None  # not recorded
        with pytest.raises(
            ValueError, match=r"camera_fovy=50.0 \(not recorded: the env's default\), the env "
            r"has camera_fovy=90.0.*allow_contract_change=true",
        ):  # fmt: skip
            load_agent(reach_copy, env=env)
        allowed = load_agent(reach_copy, env=env, agent_cfg=AgentConfig(allow_contract_change=True))
        (change,) = contract_changes(allowed, env)
        assert "camera_fovy=90.0" in change
    finally:
        env.close()
    default = gym.make("wm/PandaReach-v0")
    try:
        assert contract_changes(load_agent(reach_copy, env=default), default) == []
    finally:
        default.close()


def test_wm_eval_records_an_allowed_change_in_results_json(stamped_checkpoint, tmp_path):
    from agent.checkpoint import run_checkpoint
    from agent.config import AgentConfig, EnvSection, EvalConfig
    from agent.evaluate import evaluate

    cfg = EvalConfig(
        env=EnvSection(id="wm/PandaReach-v0", kwargs={"camera_fovy": 90.0}, max_steps=1),
        agent=AgentConfig(checkpoint=str(stamped_checkpoint), allow_contract_change=True),
        planner={"name": "cem", "num_samples": 8, "num_elites": 2, "iterations": 1, "horizon": 1},
        episodes=1,
        videos=0,
    )
    evaluate(cfg, tmp_path, run_checkpoint(cfg), progress=False)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["agent"]["allow_contract_change"] is True
    (change,) = results["contract_changes"]
    assert "camera_fovy=50.0" in change and "camera_fovy=90.0" in change


# ------------------------------------------------------------------ 7: a video on a full disk
def test_a_video_on_a_full_disk_is_named_and_removed(tmp_path) -> None:
    from agent.video import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (192, 576, 3), dtype=np.uint8) for _ in range(12)]
    with tmpfs(tmp_path / "small", "64k") as disk:
        with pytest.raises(
            DiskFullError, match=rf"writing {disk / 'e.mp4'} \(ffmpeg: .*Error writing trailer"
        ):
            write_video(disk / "e.mp4", frames, 5.0)
        assert list(disk.iterdir()) == [], "an unplayable mp4 was left behind"


# ------------------------------------------------------------------ 7: one line, not a traceback
def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=RUN_ENV, capture_output=True, text=True
    )


def test_named_errors_print_one_line_and_exit_1(tmp_path) -> None:
    """The issue's repro: a config.json holding `[1]` once gave `'list' object has no
    attribute 'get'` under a Hydra traceback."""
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("[1]")
    done = _run(
        "agent.eval", f"agent.checkpoint={tmp_path / 'ckpt'}", "episodes=1", "videos=0",
        f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("wm-eval: error: ") and f"{tmp_path}/ckpt/config.json" in last
    assert "expected a JSON object" in last
