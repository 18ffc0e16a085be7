"""Fault injection: kills at random points, corrupt and truncated files, a full disk, NaN in
data and weights. Each case once ended in a silent wrong result or a cryptic error (issue 12);
docs/robustness.md tabulates what survives what.

The full-disk cases mount a small tmpfs (root only) and skip where that is not allowed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import envs.collect
from envs.collect import collect
from envs.collect_config import CollectConfig, PandaEnvEntry, PolicyConfig
from envs.collect_parts import StalePartError
from envs.dataset import DatasetError, finished_parts, merge_parts, open_dataset
from envs.storage import DiskFullError
from tests.test_train import random_latents, tiny_cfg, write_h5
from world_model.synthetic import synthetic_episodes

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ helpers
@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP oversubscription on a busy 2-core runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_collect(out: Path, n: int = 3, **kw) -> CollectConfig:
    entry = PandaEnvEntry(
        id=kw.pop("env_id", "wm/PandaReach-v0"),
        task=kw.pop("task", "reach"),
        max_episode_steps=3,
        image_size=kw.pop("image_size", 16),
    )
    policy = PolicyConfig(name=kw.pop("policy", "expert"))
    return CollectConfig(
        env=entry, policy=policy, num_episodes=n, num_workers=0, output=str(out), **kw
    )


def leave_parts(cfg: CollectConfig, monkeypatch: pytest.MonkeyPatch) -> dict[int, Path]:
    """Record every episode of `cfg` but die before the merge (a kill at the last moment)."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the merge")

    with monkeypatch.context() as m:
        m.setattr(envs.collect, "merge_parts", killed)
        with pytest.raises(KeyboardInterrupt):
            collect(cfg)
    return finished_parts(Path(cfg.output + ".parts"))


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name or ".old-" in p.name]


# ------------------------------------------------------------------------------ collection
def test_collect_refuses_parts_of_another_command(tmp_path, monkeypatch) -> None:
    out = tmp_path / "x.h5"
    assert len(leave_parts(small_collect(out, n=3), monkeypatch)) == 3  # reach, expert, seed 0
    other = small_collect(out, n=3, env_id="wm/PandaPush-v0", task="push", policy="random", seed=7)
    with pytest.raises(StalePartError) as err:
        collect(other)
    for expected in ("env.id", "PandaReach", "policy.name", "seed", "start fresh", "x.h5.parts"):
        assert expected in str(err.value)
    with pytest.raises(StalePartError, match="env.image_size"):
        collect(small_collect(out, n=3, image_size=24))
    assert not out.exists()


def test_collect_final_count_is_num_episodes(tmp_path, monkeypatch) -> None:
    out = tmp_path / "x.h5"
    leave_parts(small_collect(out, n=5), monkeypatch)
    collect(small_collect(out, n=3))
    with open_dataset(out) as reader:
        assert [reader.episode_attrs(i)["seed"] for i in range(len(reader))] == [0, 1, 2]
    assert not (tmp_path / "x.h5.parts").exists()
    with pytest.raises(FileExistsError, match="num_episodes=4"):
        collect(small_collect(out, n=4))  # a finished file of another length is not "complete"


def test_collect_rerecords_a_truncated_part(tmp_path, monkeypatch) -> None:
    out = tmp_path / "x.h5"
    parts = leave_parts(small_collect(out, n=3), monkeypatch)
    parts[1].write_bytes(parts[1].read_bytes()[:200])  # bit rot / a bad disk
    collect(small_collect(out, n=3))
    with open_dataset(out) as reader:
        assert len(reader) == 3 and reader[1].actions.shape == (3, 7)


def _run_collect(out: Path, log: Path, *extra: str, workers: int = 0) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "envs.collect", "env=panda_reach", "env.image_size=16",
        "env.max_episode_steps=3", f"num_workers={workers}", f"output={out}",
        f"hydra.run.dir={out.parent / 'hydra'}", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as f:  # a file, not a pipe: tqdm would fill it
        return subprocess.Popen(
            args, cwd=ROOT, env=env, start_new_session=True, stdout=f, stderr=subprocess.STDOUT
        )


def _wait_for_parts(proc: subprocess.Popen, parts: Path, count: int, log: Path) -> None:
    deadline = time.time() + 120
    while len(finished_parts(parts)) < count and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"wm-collect exited early: {log.read_text()[-2000:]}")
        time.sleep(0.02)


def test_collect_killed_at_a_random_point_then_rerun(tmp_path) -> None:
    """SIGKILL after a random number of parts; another command is refused, a shorter one gets
    exactly its count, and the result equals an uninterrupted run episode by episode."""
    out, log = tmp_path / "k.h5", tmp_path / "collect.log"
    proc = _run_collect(out, log, "num_episodes=300")
    _wait_for_parts(proc, tmp_path / "k.h5.parts", random.Random().randint(3, 8), log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left = len(finished_parts(tmp_path / "k.h5.parts"))
    with pytest.raises(StalePartError, match="seed"):
        collect(small_collect(out, n=left, seed=5))
    collect(small_collect(out, n=left - 1))
    reference = collect(small_collect(tmp_path / "ref.h5", n=left - 1))
    with open_dataset(out) as a, open_dataset(reference) as b:
        assert len(a) == left - 1
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.pixels, y.pixels)
            np.testing.assert_array_equal(x.actions, y.actions)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


@pytest.mark.slow
def test_collect_workers_stop_when_the_collector_is_killed(tmp_path) -> None:
    out, log = tmp_path / "w.h5", tmp_path / "collect.log"
    proc = _run_collect(out, log, "num_episodes=2000", workers=2)
    parts = tmp_path / "w.h5.parts"
    _wait_for_parts(proc, parts, 2, log)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill -9 <pid>` does
    proc.wait()
    time.sleep(1.0)
    settled = len(finished_parts(parts))
    time.sleep(1.5)
    try:
        assert len(finished_parts(parts)) == settled, "orphaned workers kept writing parts"
        assert not [p for p in workers if _alive(p)], "orphaned workers still running"
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_collect_checks_the_output_location_before_recording(tmp_path, monkeypatch) -> None:
    recorded = []
    monkeypatch.setattr(envs.collect, "_record", lambda k: recorded.append(k) or (k, True))
    with tmpfs(tmp_path / "ro", "1m") as ro:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        with pytest.raises(PermissionError, match="not writable"):
            collect(small_collect(ro / "x.h5"))
    assert recorded == []


def test_output_that_is_a_directory_is_named(tmp_path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="is a directory"):
        collect(small_collect(tmp_path))


def test_collect_on_a_full_disk(tmp_path) -> None:
    with tmpfs(tmp_path / "small", "96k") as disk:
        out = disk / "x.h5"
        with pytest.raises(DiskFullError, match=f"no space left on device while writing {disk}"):
            collect(small_collect(out, n=50, image_size=64))
        assert not temporaries(disk), "half-written temporaries keep the disk full"
        done = finished_parts(disk / "x.h5.parts")
        assert done, "no part fitted: make the tmpfs larger"
        for part in done.values():  # what was written is whole
            with h5py.File(part) as f:
                assert f[f"data/{part.stem}/actions"].shape == (3, 7)


# ------------------------------------------------------------------------------ NaN data
def test_nan_action_in_a_dataset_is_refused_with_file_episode_step(tmp_path) -> None:
    episodes = synthetic_episodes(3, length=5, size=16)
    episodes[1].actions[2, 4] = np.nan
    path = write_h5(tmp_path / "nan.h5", episodes)
    with pytest.raises(DatasetError, match=r"nan\.h5: data/demo_1: actions .* at step 2"):
        open_dataset(path)
    episodes = synthetic_episodes(2, length=5, size=16)
    episodes[0].states[4, 0] = np.inf
    with pytest.raises(DatasetError, match=r"demo_0: obs/state .* at step 4"):
        open_dataset(write_h5(tmp_path / "inf.h5", episodes))


def test_empty_dataset_error_names_the_file(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.encoder import build_encoder
    from world_model.latents import cached_latents

    (tmp_path / "parts").mkdir()
    path = merge_parts(tmp_path / "parts", tmp_path / "empty.h5", _root_attrs(), indices=[])
    with pytest.raises(ValueError, match=rf"{path}: no episodes"):
        cached_latents([path], build_encoder(TINY_WM.encoder), tmp_path / "cache")


def _root_attrs() -> dict:
    keys = ("env_id", "env_kwargs", "control_hz", "camera", "image_size", "policy")
    return dict.fromkeys(keys, "x")


def test_corrupt_latent_cache_is_rebuilt(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.encoder import build_encoder
    from world_model.latents import cached_latents

    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(2, length=4, size=16))
    encoder = build_encoder(TINY_WM.encoder)
    first = cached_latents([h5], encoder, tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.safetensors")
    cache.write_bytes(cache.read_bytes()[:100])  # truncated by a kill or a full disk
    logs: list[str] = []
    again = cached_latents([h5], encoder, tmp_path / "cache", logs.append)
    assert torch.equal(first.latents, again.latents)
    assert any("corrupt" in line and str(cache) in line for line in logs)


# ------------------------------------------------------------------------------ training
def _trainer(out: Path, data=None, **kw):
    from world_model.trainer import Trainer

    return Trainer(tiny_cfg(out, **kw), latents=data if data is not None else random_latents())


def _train_until(trainer, step: int) -> None:
    """What `run` does, stopping early: steps, then a checkpoint (a kill right after it)."""
    while trainer.step < step:
        trainer.train_step(*trainer.local_batch(trainer.step))
        trainer.step += 1
        if trainer.step % trainer.cfg.ckpt_every == 0:
            trainer.checkpoint()


def test_training_stops_at_the_first_non_finite_loss(tmp_path) -> None:
    from world_model import load_world_model
    from world_model.train_state import NonFiniteTrainingError

    trainer = _trainer(tmp_path, ckpt_every=2)
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
def test_corrupt_latest_checkpoint_falls_back_to_an_intact_one(tmp_path, damage):
    from world_model.checkpoint import CorruptCheckpointError

    _trainer(tmp_path, steps=4, ckpt_every=2).run()
    ckpts = tmp_path / "checkpoints"
    latest = ckpts / "step_0000004"
    damaged = {
        "truncated weights": lambda: _truncate(latest / "model.safetensors"),
        "garbage trainer state": lambda: (latest / "trainer_state.pt").write_bytes(b"\0" * 64),
        "bad json": lambda: (latest / "config.json").write_text("{"),
        "nan weight": lambda: _poison_weights(latest),
        "no latest": lambda: (ckpts / "latest").write_text("step_0000009"),
    }[damage]()
    del damaged
    logs: list[str] = []
    resumed = _trainer_logged(tmp_path, logs, steps=6, ckpt_every=2)
    expected = 4 if damage == "no latest" else 2
    assert resumed.step == expected
    if expected == 2:
        assert any(str(latest) in line for line in logs), logs
        assert any("falling back" in line for line in logs), logs
    for step in ckpts.glob("step_*"):
        _truncate(step / "model.safetensors")
    with pytest.raises(CorruptCheckpointError, match=str(ckpts)):
        _trainer(tmp_path, steps=6)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _trainer_logged(out: Path, logs: list[str], **kw):
    from world_model import train_state

    original = train_state.resume_training

    def resume(*args):
        return original(*args[:-1], logs.append)

    with pytest.MonkeyPatch.context() as m:
        m.setattr("world_model.trainer.resume_training", resume)
        return _trainer(out, **kw)


def test_resume_with_another_architecture_names_the_shapes(tmp_path) -> None:
    from dataclasses import replace

    from tests.test_train import TINY_WM

    _trainer(tmp_path, steps=2, ckpt_every=2).run()
    wider = replace(TINY_WM, predictor=replace(TINY_WM.predictor, width=48))
    with pytest.raises(ValueError, match=r"architecture changed.*\(32,.*\(48,.*resume=false"):
        _trainer(tmp_path, steps=4, world_model=wider)


def test_temporaries_of_killed_runs_are_removed_at_start(tmp_path) -> None:
    _trainer(tmp_path, steps=2, ckpt_every=2).run()
    ckpts, pid = tmp_path / "checkpoints", dead_pid()
    for name in (f".step_0000004.tmp-{pid}", f".step_0000002.old-{pid}"):
        (ckpts / name).mkdir()
        (ckpts / name / "model.safetensors").write_bytes(b"\0" * 1000)
    (ckpts / f".latest.tmp-{pid}").write_text("step_0000004")
    (tmp_path / f".world_model.tmp-{pid}").mkdir()
    live = ckpts / f".step_0000006.tmp-{os.getpid()}"  # a live writer's: left alone
    live.mkdir()
    trainer = _trainer(tmp_path, steps=4, ckpt_every=2)
    assert temporaries(tmp_path) == [live]
    assert trainer.step == 2


def test_training_on_a_full_disk(tmp_path) -> None:
    from world_model import load_world_model

    with tmpfs(tmp_path / "small", "600k") as disk:
        with pytest.raises(DiskFullError, match=f"no space left on device while writing {disk}"):
            _trainer(disk / "run", steps=400, ckpt_every=1, keep_checkpoints=1000).run()
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
        sys.executable, "-m", "world_model.train", f"data=[{h5}]", f"out_dir={out}",
        f"cache_dir={tmp_path / 'cache'}", "steps=100000", "batch_size=4", "clip_len=3",
        "ckpt_every=1", "keep_checkpoints=2", "log_every=50", "val_every=1000",
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
    logs: list[str] = []
    resumed = _trainer_logged(
        out, logs, data=None, steps=100000, clip_len=3, cache_dir=str(tmp_path / "c2")
    )
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
