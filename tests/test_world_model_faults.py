"""Fault injection for training, checkpoints and run time: kills at random points, corrupt
and truncated checkpoints, a full disk, NaN in the data stream and in the weights (issue 12;
collection and datasets are in test_faults.py, the summary table in docs/robustness.md)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from envs.data.storage import DiskFullError
from tests.synthetic import synthetic_episodes
from tests.test_envs_faults import ROOT, dead_pid, temporaries, tmpfs
from tests.test_train import one_thread, random_latents, tiny_cfg, write_h5  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(out: Path, data=None, **kw):
    from world_model.training.trainer import Trainer

    return Trainer(tiny_cfg(out, **kw), latents=data if data is not None else random_latents())


def _train_until(trainer, step: int) -> None:
    """What `run` does, stopping early: steps, then a checkpoint (a kill right after it)."""
    while trainer.step < step:
        trainer.train_step(*trainer.local_batch(trainer.step))
        trainer.step += 1
        if trainer.step % trainer.cfg.val_every == 0:
            trainer.checkpoint()


def test_training_stops_at_the_first_non_finite_loss(tmp_path) -> None:
    from world_model import load_world_model
    from world_model.training.train_state import NonFiniteTrainingError

    trainer = _trainer(tmp_path, val_every=2)
    _train_until(trainer, 3)
    trainer.train_clips.data.latents[:] = float("nan")  # the data goes bad mid-run
    with pytest.raises(NonFiniteTrainingError, match="step 3: non-finite loss nan"):
        trainer.run()
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_0000002"
    load_world_model(tmp_path / "checkpoints" / "step_0000002")  # finite, loads
    assert all(torch.isfinite(p).all() for p in trainer.model.predictor.parameters())
    assert not (tmp_path / "world_model").exists()


def _poison_weights(ckpt: Path, value: float = float("nan")) -> str:
    state = load_file(str(ckpt / "model.safetensors"))
    name = sorted(k for k in state if k.startswith("predictor."))[3]
    state[name].view(-1)[0] = value
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "wm-checkpoint"})
    return name


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_checkpoint_with_a_non_finite_weight_is_refused(tmp_path, value) -> None:
    from tests.test_agent import tiny_world_model
    from world_model import load_world_model, save_world_model

    path = save_world_model(tiny_world_model(), tmp_path / "ckpt")
    name = _poison_weights(path, value)
    with pytest.raises(ValueError, match=rf"tensor '{name}' holds 1 non-finite"):
        load_world_model(path)


def test_resume_applies_the_version_check(tmp_path) -> None:
    _trainer(tmp_path, steps=3).run()
    cfg_path = tmp_path / "checkpoints" / "step_0000003" / "config.json"
    payload = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**payload, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        _trainer(tmp_path, steps=6)


@pytest.mark.parametrize(
    "damage", ["truncated weights", "garbage trainer state", "bad json", "nan weight", "no latest"]
)
def test_corrupt_latest_checkpoint_falls_back_to_an_intact_one(tmp_path, damage, capsys):
    from world_model.checkpoint import CorruptCheckpointError

    _trainer(tmp_path, steps=4, val_every=2).run()
    ckpts = tmp_path / "checkpoints"
    latest = ckpts / "step_0000004"
    {
        "truncated weights": lambda: _truncate(latest / "model.safetensors"),
        "garbage trainer state": lambda: (latest / "trainer_state.pt").write_bytes(b"\0" * 64),
        "bad json": lambda: (latest / "config.json").write_text("{"),
        "nan weight": lambda: _poison_weights(latest),
        "no latest": lambda: (ckpts / "latest").write_text("step_0000009"),
    }[damage]()
    capsys.readouterr()
    resumed = _trainer(tmp_path, steps=6, val_every=2)
    logs = capsys.readouterr().out
    expected = 4 if damage == "no latest" else 2
    assert resumed.step == expected
    if expected == 2:
        assert f"checkpoint {latest} is unusable" in logs and "falling back" in logs, logs
    for step in ckpts.glob("step_*"):
        _truncate(step / "model.safetensors")
    with pytest.raises(CorruptCheckpointError, match=str(ckpts)):
        _trainer(tmp_path, steps=6)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_resume_with_another_architecture_names_the_shapes(tmp_path) -> None:
    from dataclasses import replace

    from tests.test_train import TINY_WM

    _trainer(tmp_path, steps=2, val_every=2).run()
    wider = replace(TINY_WM, predictor=replace(TINY_WM.predictor, width=48))
    with pytest.raises(ValueError, match=r"architecture changed.*\(32,.*\(48,.*resume=false"):
        _trainer(tmp_path, steps=4, world_model=wider)


def test_temporaries_of_killed_runs_are_removed_at_start(tmp_path) -> None:
    _trainer(tmp_path, steps=2, val_every=2).run()
    ckpts, pid = tmp_path / "checkpoints", dead_pid()
    for name in (f".step_0000004.tmp-{pid}", f".step_0000002.old-{pid}"):
        (ckpts / name).mkdir()
        (ckpts / name / "model.safetensors").write_bytes(b"\0" * 1000)
    (ckpts / f".latest.tmp-{pid}").write_text("step_0000004")
    (tmp_path / f".world_model.tmp-{pid}").mkdir()
    live = ckpts / f".step_0000006.tmp-{os.getpid()}"  # a live writer's: left alone
    live.mkdir()
    trainer = _trainer(tmp_path, steps=4, val_every=2)
    assert temporaries(tmp_path) == [live]
    assert trainer.step == 2


def test_training_on_a_full_disk(tmp_path) -> None:
    from world_model import load_world_model

    with tmpfs(tmp_path / "small", "600k") as disk:
        with pytest.raises(DiskFullError, match=f"no space left on device while writing {disk}"):
            _trainer(disk / "run", steps=400, val_every=1, keep_checkpoints=1000).run()
        assert not temporaries(disk), "a half-written checkpoint folder keeps the disk full"
        latest = (disk / "run" / "checkpoints" / "latest").read_text()
        load_world_model(disk / "run" / "checkpoints" / latest)  # still valid
        for step in sorted((disk / "run" / "checkpoints").glob("step_*"))[:-1]:
            subprocess.run(["rm", "-r", str(step)], check=True)  # the user frees space
        assert _trainer(disk / "run", steps=400).step == int(latest.split("_")[1])


@pytest.mark.slow
def test_wm_train_killed_at_random_points_resumes(tmp_path) -> None:
    """SIGKILL the wm-train CLI twice at random moments, checkpointing every step; each rerun
    resumes from an intact checkpoint and leaves no temporaries behind."""
    from tests.test_train import TINY_WM_OVERRIDES
    from world_model import load_world_model

    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=6, size=16))
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "world_model.training.train", f"data=[{h5}]", f"out_dir={out}",
        f"cache_dir={tmp_path / 'cache'}", "steps=100000", "batch_size=4", "clip_len=3",
        "val_every=1", "keep_checkpoints=2", "log_every=50",
        "optim.warmup_steps=1", "optim.decay_steps=1", "num_threads=1", *TINY_WM_OVERRIDES,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng, last = random.Random(), -1
    for attempt in range(2):
        with open(tmp_path / f"train{attempt}.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=log)
        deadline = time.time() + 120
        while not (out / "checkpoints" / "latest").is_file() and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / f"train{attempt}.log").read_text()[-2000:]
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        latest = out / "checkpoints" / (out / "checkpoints" / "latest").read_text()
        load_world_model(latest)
        step = int(latest.name.split("_")[1])
        assert step >= last
        last = step
    resumed = _trainer(out, steps=100000, clip_len=3)
    assert resumed.step >= last and not temporaries(out)


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


def test_a_cost_function_returning_numpy_is_accepted() -> None:
    from tests.test_agent import small_planner

    planner = small_planner()
    plan = planner.plan(lambda a: (a - 0.05).abs().sum((-2, -1)).numpy(), num_envs=1)
    assert plan[0, 0, 0] > 0.0
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        planner.plan(lambda a: [[0.0] * a.shape[1]], num_envs=1)


def test_an_encoder_with_nan_weights_is_caught_before_caching(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.model.encoder import build_encoder
    from world_model.training.latents import cached_latents

    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(2, length=4, size=16))
    encoder = build_encoder(TINY_WM.encoder)
    with torch.no_grad():
        next(iter(encoder.parameters())).fill_(float("nan"))
    with pytest.raises(ValueError, match=r"d\.h5: the encoder produced NaN/inf latents"):
        cached_latents([h5], encoder, tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())
