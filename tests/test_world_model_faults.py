"""Fault injection for world_model/: training killed at random points, on a full disk, with a
NaN loss or validation metric; checkpoints corrupt, truncated, with non-finite weights or a
malformed or older config.json; the latent cache and encoders that produce NaN; datasets the
encoder cannot learn from (frames that never change) and ones recorded before the camera and
physics step joined the env contract (issues 12 and 24; docs/robustness.md).

The full-disk cases mount a small tmpfs (root only) and skip where that is not allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import envs  # noqa: F401  (registers the wm/* ids)
from envs.collect.app import collect
from envs.data.hdf5 import merge_parts
from envs.data.storage import DiskFullError
from tests.faults import (
    ROOT,
    dead_pid,
    edit_config,
    small_collect,
    temporaries,
    tmpfs,
)
from tests.synthetic import synthetic_episodes
from tests.test_train import (
    one_thread,  # noqa: F401  (fixture)
    random_latents,
    tiny_cfg,
    write_h5,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ the latent cache
def test_empty_dataset_error_names_the_file(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.model.encoder import build_encoder
    from world_model.training.latents import cached_latents

    (tmp_path / "parts").mkdir()
    path = merge_parts(tmp_path / "parts", tmp_path / "empty.h5", _root_attrs(), indices=[])
    with pytest.raises(ValueError, match=rf"{path}: no episodes"):
        cached_latents([path], build_encoder(TINY_WM.encoder), tmp_path / "cache")


def _root_attrs() -> dict:
    keys = ("env_id", "env_kwargs", "control_hz", "camera", "image_size", "policy")
    return dict.fromkeys(keys, "x")


def test_corrupt_latent_cache_is_rebuilt(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.model.encoder import build_encoder
    from world_model.training.latents import cached_latents

    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(2, length=4, size=16))
    encoder = build_encoder(TINY_WM.encoder)
    first = cached_latents([h5], encoder, tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.safetensors")
    cache.write_bytes(cache.read_bytes()[:100])  # truncated by a kill or a full disk
    logs: list[str] = []
    again = cached_latents([h5], encoder, tmp_path / "cache", logs.append)
    assert torch.equal(first.latents, again.latents)
    assert any("corrupt" in line and str(cache) in line for line in logs)


# ------------------------------------------------------------------ training and checkpoints
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


# ------------------------------------------------------------------ 1, 6: config.json schema
def test_a_checkpoint_without_its_normalisation_statistics_is_refused(reach_copy) -> None:
    from world_model import load_world_model

    def drop_stats(payload: dict) -> None:
        for key in ("action_mean", "action_std", "state_mean", "state_std"):
            del payload["world_model"]["predictor"][key]

    path = edit_config(reach_copy, drop_stats)
    with pytest.raises(ValueError, match=rf"{path}: world_model.predictor lacks \['action_mean'"):
        load_world_model(reach_copy)


def test_keys_added_after_the_shipped_checkpoints_still_default(tmp_path) -> None:
    """The retired *_tiny checkpoints (copies may still be around) were written before the
    keys in `ADDED_LATER`: reach1_tiny, same architecture, without them reads as the same
    model and loads its weights."""
    from world_model import load_world_model
    from world_model.checkpoint import read_config

    for name in ("reach1_tiny", "reach_lewm", "push_lewm", "pickplace_lewm"):
        stored = read_config(ROOT / "checkpoints" / name)
        assert stored.world_model.predictor.action_std is not None
        assert stored.env.camera_pos == ()
    src = ROOT / "checkpoints" / "reach1_tiny"
    old = tmp_path / "tiny_before_the_keys"
    old.mkdir()
    (old / "model.safetensors").symlink_to(src / "model.safetensors")

    def drop_later_keys(payload: dict) -> None:  # what the retired reach_tiny's config lacked
        wm = payload["world_model"]
        for key in ("objective", "action_block", "history"):
            del wm[key]
        for key in ("latent_layout", "conv_channels", "conv_stem", "proj_hidden"):
            del wm["encoder"][key]
        del wm["encoder"]["inverse_dynamics_out"]  # a retired key, absent = off
        del wm["predictor"]["use_state"]

    shutil.copy(src / "config.json", old / "config.json")
    edit_config(old, drop_later_keys)

    def model_of(stored):  # all but the path and the free-form extra
        return stored.world_model, stored.encoder_hf_config, stored.env

    assert model_of(read_config(old)) == model_of(read_config(src))
    load_world_model(old)


# ------------------------------------------------------------------ 4: camera, sim_dt in the contract
def test_datasets_give_new_checkpoints_their_camera_and_physics_step(tmp_path) -> None:
    from world_model.training.latents import dataset_contract

    out = collect(small_collect(tmp_path / "reach.h5", n=1))
    fresh = dataset_contract([out])
    assert fresh.camera_fovy == 50.0 and fresh.sim_dt == 0.002 and len(fresh.camera_pos) == 3
    with h5py.File(out, "r+") as f:  # a dataset recorded before they joined the stamp
        del f["data"].attrs["content_sha256"]  # (and before the digest)
        stamp = json.loads(f["data"].attrs["env_contract"])
        for key in ("camera_pos", "camera_target", "camera_fovy", "sim_dt"):
            del stamp[key]
        f["data"].attrs["env_contract"] = json.dumps(stamp)
    assert dataset_contract([out]) == fresh  # filled from its `camera` and `env_kwargs` attrs
    from tests.test_train import tiny_cfg
    from world_model.training.trainer import Trainer

    cfg = tiny_cfg(tmp_path / "run", data=[str(out)], steps=1, val_fraction=0.0, batch_size=2)
    Trainer(cfg).run()
    env = json.loads((tmp_path / "run" / "world_model" / "config.json").read_text())["env"]
    assert env["camera_fovy"] == 50.0 and env["sim_dt"] == 0.002 and len(env["camera_pos"]) == 3


# ------------------------------------------------------------------ 5: a non-finite validation metric
def test_a_non_finite_validation_metric_stops_training(tmp_path) -> None:
    from world_model.training.train_state import NonFiniteTrainingError

    trainer = _trainer(tmp_path, val_every=2)
    _train_until(trainer, 2)  # a checkpoint at the first validation pass
    val = trainer.val_clips  # held-out data that blows the model up; training data is fine
    trainer.val_clips = dataclasses.replace(
        val, data=dataclasses.replace(val.data, latents=val.data.latents * float("inf"))
    )
    with pytest.raises(NonFiniteTrainingError, match=r"step 4: non-finite validation .*val/"):
        trainer.run()
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_0000002"
    assert not (tmp_path / "world_model").exists()


# ------------------------------------------------------------------ 3: frames that never change
def _still_episodes(num: int = 3):
    episodes = synthetic_episodes(num, length=4, size=16)
    for ep in episodes:
        ep.pixels[:] = ep.pixels[0]  # a camera pointed at a wall, a renderer that froze
    return episodes


def test_a_dataset_whose_frames_never_change_is_refused_by_name(tmp_path) -> None:
    from tests.test_train import TINY_WM
    from world_model.model.encoder import build_encoder
    from world_model.training.latents import cached_latents
    from world_model.training.lewm import load_frames

    path = write_h5(tmp_path / "still.h5", _still_episodes())
    with pytest.raises(ValueError, match=rf"{path}: in all 3 episodes every frame equals"):
        cached_latents([path], build_encoder(TINY_WM.encoder), tmp_path / "cache")
    with pytest.raises(ValueError, match=rf"{path}: in all 3 episodes every frame equals"):
        load_frames([path])


def test_validation_on_still_clips_reports_no_ratio(tmp_path) -> None:
    from tests.test_train import random_latents

    data = random_latents()
    for start, length in zip(data.starts.tolist(), data.lengths.tolist(), strict=True):
        data.latents[start : start + length] = data.latents[start]  # copy-last error 0
    metrics = _trainer(tmp_path, data=data).validate()
    assert metrics["val/copy_err_h1"] == 0.0 and "val/ratio_h1" not in metrics
    assert all(np.isfinite(v) for v in metrics.values())


def test_a_dataset_without_render_fields_trains_beside_one_with_them(tmp_path) -> None:
    """An older dataset that does not record sim_dt or the camera is unknown there, not
    different: it combines with a new one (the known values win), while a real difference is
    still refused by name."""
    from world_model.training.latents import dataset_contract

    new = collect(small_collect(tmp_path / "new.h5", n=1))
    old = tmp_path / "old.h5"
    shutil.copy(new, old)
    with h5py.File(old, "r+") as f:
        del f["data"].attrs["content_sha256"]  # older files have no digest
        stamp = json.loads(f["data"].attrs["env_contract"])
        stamp["sim_dt"] = None
        f["data"].attrs["env_contract"] = json.dumps(stamp)
        f["data"].attrs["env_kwargs"] = "{}"
        args = json.loads(f["data"].attrs["env_args"])  # its restated copy says the same
        args["env_kwargs"] = {}
        f["data"].attrs["env_args"] = json.dumps(args)
    assert dataset_contract([old]).sim_dt is None
    assert dataset_contract([old, new]) == dataset_contract([new])
    assert dataset_contract([new, old]).sim_dt == 0.002
    with h5py.File(old, "r+") as f:
        stamp["sim_dt"] = 0.004
        f["data"].attrs["env_contract"] = json.dumps(stamp)
    with pytest.raises(ValueError, match="sim_dt"):
        dataset_contract([new, old])
