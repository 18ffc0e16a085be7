"""Fault injection, round two (issue 24): inputs that once ran to a silent wrong result or a
crash without a name. A checkpoint without its normalisation statistics, a malformed
config.json, a camera or physics step the model was not trained with, out-of-bounds or
string-typed actions, frames that never change, a disk that fills during a merge or a video,
and named errors buried under a Hydra traceback. docs/robustness.md tabulates them.

The full-disk cases mount a small tmpfs (root only) and skip where that is not allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import envs  # noqa: F401  (registers the wm/* ids)
from envs.data import open_dataset
from envs.data.episode import DatasetError
from tests.synthetic import synthetic_episodes
from tests.test_envs_faults import ROOT, dead_pid, small_collect, temporaries, tmpfs
from tests.test_train import one_thread, write_h5  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
RUN_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": ""}


def _edit_config(checkpoint: Path, edit) -> Path:
    path = checkpoint / "config.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def reach_copy(tmp_path) -> Path:
    """A copy of the shipped reach checkpoint (weights symlinked: only config.json changes)."""
    copy = tmp_path / "reach"
    copy.mkdir()
    src = ROOT / "checkpoints" / "reach_lewm"
    shutil.copy(src / "config.json", copy / "config.json")
    (copy / "model.safetensors").symlink_to(src / "model.safetensors")
    return copy


# ------------------------------------------------------------------ 1, 6: config.json schema
def test_a_checkpoint_without_its_normalisation_statistics_is_refused(reach_copy) -> None:
    from world_model import load_world_model

    def drop_stats(payload: dict) -> None:
        for key in ("action_mean", "action_std", "state_mean", "state_std"):
            del payload["world_model"]["predictor"][key]

    path = _edit_config(reach_copy, drop_stats)
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
    _edit_config(old, drop_later_keys)

    def model_of(stored):  # all but the path and the free-form extra
        return stored.world_model, stored.encoder_hf_config, stored.env

    assert model_of(read_config(old)) == model_of(read_config(src))
    load_world_model(old)


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
        _edit_config(reach_copy, lambda p: p["env"].update(control_hz="fast"))
    elif "depth" in message:
        _edit_config(reach_copy, lambda p: p["world_model"]["predictor"].update(depth="3"))
    else:
        _edit_config(reach_copy, lambda p: p.update(extra=[]))
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


def test_datasets_give_new_checkpoints_their_camera_and_physics_step(tmp_path) -> None:
    from envs.collect.app import collect
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


# ------------------------------------------------------------------ 5, 7: dataset values
@pytest.mark.parametrize("scale", [100.0, 1e30])
def test_actions_outside_the_recorded_bounds_are_refused(tmp_path, scale) -> None:
    path = write_h5(tmp_path / "big.h5", synthetic_episodes(3, length=5, size=16))
    with h5py.File(path, "r+") as f:  # a units bug in a converter, or a corrupt float
        f["data/demo_1/actions"][...] *= scale
    with pytest.raises(
        DatasetError, match=r"big\.h5: data/demo_1: .*outside the recorded bounds \(first at step"
    ):
        open_dataset(path)


def test_actions_at_the_float32_bounds_pass(tmp_path) -> None:
    (ep,) = synthetic_episodes(1, length=4, size=16)
    ep.actions[:, :2] = np.float32(0.25)  # exactly the bound, as the recorder clips it
    with open_dataset(write_h5(tmp_path / "edge.h5", [ep])) as reader:
        assert len(reader) == 1


def test_string_typed_actions_are_named(tmp_path) -> None:
    path = write_h5(tmp_path / "text.h5", synthetic_episodes(2, length=4, size=16))
    with h5py.File(path, "r+") as f:
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = np.full((4, 7), b"0.1", dtype="S8")
    with pytest.raises(DatasetError, match=r"text\.h5: data/demo_0: actions has dtype \|S8"):
        open_dataset(path)


def test_a_non_finite_validation_metric_stops_training(tmp_path) -> None:
    from tests.test_world_model_faults import _train_until, _trainer
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
    from tests.test_world_model_faults import _trainer

    data = random_latents()
    for start, length in zip(data.starts.tolist(), data.lengths.tolist(), strict=True):
        data.latents[start : start + length] = data.latents[start]  # copy-last error 0
    metrics = _trainer(tmp_path, data=data).validate()
    assert metrics["val/copy_err_h1"] == 0.0 and "val/ratio_h1" not in metrics
    assert all(np.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------------ 2: a disk that fills in the merge
def test_collect_merge_on_a_full_disk_fails_by_name_and_resumes(tmp_path, monkeypatch) -> None:
    """HDF5 aborts the process (``double free``) when the disk fills inside `Group.copy`, so
    the merge checks the free space first; a dead merge's temporary is removed before the
    writable check (it is what fills the disk), and the same command resumes once there is
    room."""
    from envs.collect.app import collect
    from envs.data.storage import DiskFullError
    from tests.test_envs_faults import leave_parts

    leave_parts(small_collect(tmp_path / "rec" / "x.h5", n=3), monkeypatch)
    parts_bytes = sum(p.stat().st_size for p in (tmp_path / "rec" / "x.h5.parts").iterdir())
    room = (parts_bytes + 32 * 1024) // 4096 * 4096 + 4096  # the parts and a little more
    with tmpfs(tmp_path / "small", str(room)) as disk:
        shutil.copytree(tmp_path / "rec" / "x.h5.parts", disk / "x.h5.parts")
        out = disk / "x.h5"
        with pytest.raises(DiskFullError, match=rf"while writing {out}: it needs about"):
            collect(small_collect(out, n=3))
        stale = disk / f".x.h5.tmp-{dead_pid()}"  # what a merge that HDF5 aborted leaves
        with pytest.raises(OSError), open(stale, "wb") as f:
            while True:  # fill the disk, as the aborted merge did
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(DiskFullError, match=rf"while writing {out}: it needs about"):
            collect(small_collect(out, n=3))  # not "output location ... not writable"
        assert not temporaries(disk) and len(list((disk / "x.h5.parts").iterdir())) == 3
        grow = str(2 * room + 128 * 1024)
        subprocess.run(["mount", "-o", f"remount,size={grow}", str(disk)], check=True)
        collect(small_collect(out, n=3))
        with open_dataset(out) as reader:
            assert len(reader) == 3


# ------------------------------------------------------------------ 7: a video on a full disk
def test_a_video_on_a_full_disk_is_named_and_removed(tmp_path) -> None:
    from agent.video import write_video
    from envs.data.storage import DiskFullError

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


def test_hydra_full_error_still_shows_the_traceback(monkeypatch, capsys) -> None:
    from configs.cli import one_line_errors

    @one_line_errors("wm-collect")
    def task(message: str) -> None:
        raise DatasetError(message)

    with pytest.raises(SystemExit) as done:
        task("x.h5: no 'data' group")
    assert done.value.code == 1
    assert capsys.readouterr().err == "wm-collect: error: x.h5: no 'data' group\n"
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # Hydra's switch: the traceback, as before
    with pytest.raises(DatasetError, match="no 'data' group"):
        task("x.h5: no 'data' group")
    with pytest.raises(AttributeError):  # a bug is no named error: its traceback stays
        one_line_errors("wm-eval")(lambda: None.get)()


def test_a_dataset_without_render_fields_trains_beside_one_with_them(tmp_path) -> None:
    """An older dataset that does not record sim_dt or the camera is unknown there, not
    different: it combines with a new one (the known values win), while a real difference is
    still refused by name."""
    from envs.collect.app import collect
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
