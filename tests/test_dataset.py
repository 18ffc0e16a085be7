"""Datasets: round trip, corrupt/truncated files refused, wm-collect resume after a kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import envs  # noqa: F401
from envs.collect.app import collect, episode_plan
from envs.collect.config import CollectConfig, PandaEnvEntry, PolicyConfig
from envs.collect.rollout import dataset_root_attrs, record_episode
from envs.common.experts import make_policy
from envs.data import open_dataset
from envs.data.episode import DatasetError
from envs.data.hdf5 import discard_temporaries, finished_parts, merge_parts, write_episode_part

ROOT = Path(__file__).resolve().parents[1]


def _small_cfg(out: Path, n: int = 3, workers: int = 0) -> CollectConfig:
    entry = PandaEnvEntry(id="wm/PandaReach-v0", task="reach", max_episode_steps=6, image_size=32)
    return CollectConfig(
        env=entry,
        policy=PolicyConfig(name="mixed", expert_fraction=0.5, noise=0.0, noise_max=0.2),
        num_episodes=n,
        num_workers=workers,
        output=str(out),
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "reach.h5"
    return collect(_small_cfg(out))


def test_round_trip_layout_and_values(dataset: Path) -> None:
    cfg = _small_cfg(dataset)
    with open_dataset(dataset) as reader:
        assert len(reader) == 3
        assert reader.attrs["env_id"] == "wm/PandaReach-v0"
        assert reader.attrs["control_hz"] == 5.0 and reader.attrs["image_size"] == 32
        assert reader.attrs["env_kwargs"]["image_size"] == 32
        assert reader.attrs["format_version"] == 1 and reader.attrs["total"] == 18
        episodes = list(reader)
    for k, ep in enumerate(episodes):
        assert ep.pixels.shape == (7, 32, 32, 3) and ep.pixels.dtype == np.uint8
        assert ep.states.shape == (7, 7) and ep.actions.shape == (6, 7)
        assert ep.goal_pixels.shape == (32, 32, 3) and ep.goal_state.shape == (7,)
        assert ep.attrs["num_samples"] == 6 and ep.attrs["seed"] == k
        assert ep.attrs["env_id"] == "wm/PandaReach-v0"
    # Bit-exact against recording the same episode again (seeded, deterministic).
    plan = episode_plan(cfg, 1)
    env = gym.make("wm/PandaReach-v0", max_episode_steps=6, image_size=32)
    policy = make_policy(plan["policy"], env, noise=plan["noise"], seed=plan["seed"])
    again = record_episode(env, policy, plan["seed"])
    env.close()
    np.testing.assert_array_equal(again.pixels, episodes[1].pixels)
    np.testing.assert_array_equal(again.actions, episodes[1].actions)
    np.testing.assert_array_equal(again.goal_pixels, episodes[1].goal_pixels)
    with h5py.File(dataset) as f:  # robomimic names and compression
        g = f["data/demo_0"]
        assert g["obs/pixels"].compression == "gzip" and "dones" in g and "rewards" in g


def test_truncated_file_is_refused(dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.h5"
    data = dataset.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated.h5.*truncated or corrupt"):
        open_dataset(bad)


def test_corrupt_bytes_are_refused(dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.h5"
    data = bytearray(dataset.read_bytes())
    rng = np.random.default_rng(0)
    for pos in rng.integers(len(data) // 4, len(data), 200):
        data[pos] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="corrupt.h5"), open_dataset(bad) as reader:
        for _ in reader:
            pass


def test_wrong_layout_is_refused(dataset: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(DatasetError, match="garbage.h5"):
        open_dataset(garbage)
    broken = tmp_path / "broken.h5"
    shutil.copy(dataset, broken)
    with h5py.File(broken, "a") as f:
        del f["data/demo_1/actions"]
        f["data/demo_1/actions"] = np.zeros((2, 7), np.float32)
    with pytest.raises(DatasetError, match="broken.h5: data/demo_1: inconsistent lengths"):
        open_dataset(broken)
    with pytest.raises(DatasetError, match="no such dataset file"):
        open_dataset(tmp_path / "missing.h5")


def test_parts_merge_and_stale_temporaries(tmp_path: Path) -> None:
    env = gym.make("wm/PandaPush-v0", max_episode_steps=3, image_size=16)
    parts = tmp_path / "x.h5.parts"
    for k in (0, 2):
        ep = record_episode(env, make_policy("random", env, seed=k), seed=k)
        write_episode_part(parts, k, ep, compression="lzf")
    (parts / "demo_1.h5.tmp.123").write_bytes(b"half-written")  # a killed writer's leftover
    assert sorted(finished_parts(parts)) == [0, 2]
    assert discard_temporaries(parts) == 1 and not (parts / "demo_1.h5.tmp.123").exists()
    out = merge_parts(parts, tmp_path / "x.h5", dataset_root_attrs("wm/PandaPush-v0", {}, env, {}))
    env.close()
    with open_dataset(out) as reader:
        assert reader.names == ["demo_0", "demo_2"]
    assert not parts.exists()


def test_bad_collect_config_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_episodes=0"):
        _small_cfg(tmp_path / "x.h5", n=0)
    with pytest.raises(ValueError, match="policy.name='greedy'"):
        PolicyConfig(name="greedy")
    with pytest.raises(ValueError, match="disagree"):
        PandaEnvEntry(id="wm/PandaPush-v0", task="reach")


def test_collect_killed_midway_resumes(tmp_path: Path) -> None:
    """Kill wm-collect (SIGKILL, whole process group) mid-run; rerun completes the file."""
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    args = [
        sys.executable, "-m", "envs.collect", "env=panda_reach", "env.image_size=32",
        "env.max_episode_steps=10", "num_episodes=400", "num_workers=0", f"output={out}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]  # fmt: skip
    with open(tmp_path / "collect.log", "w") as log:  # a file, not a pipe: tqdm would fill it
        proc = subprocess.Popen(
            args, cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 120
        while len(finished_parts(parts)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(
                f"wm-collect exited early: {(tmp_path / 'collect.log').read_text()[-2000:]}"
            )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = finished_parts(parts)
    assert 3 <= len(done) < 400 and not out.exists()
    for path in done.values():  # every finished part is whole
        with h5py.File(path) as f:
            assert f[f"data/{path.stem}/obs/pixels"].shape == (11, 32, 32, 3)
    cfg = _small_cfg(out, n=len(done) + 2)  # resume: finish just past the kill point
    cfg.env.max_episode_steps = 10
    cfg.policy = PolicyConfig()  # the CLI run used the default policy
    collect(cfg)
    with open_dataset(out) as reader:
        seeds = [reader.episode_attrs(i)["seed"] for i in range(len(reader))]
    assert seeds == list(range(cfg.num_episodes))
    assert collect(cfg) == out  # a third run finds it complete


@pytest.mark.slow
def test_collect_with_spawn_workers(tmp_path: Path) -> None:
    out = collect(_small_cfg(tmp_path / "pool.h5", n=4, workers=2))
    with open_dataset(out) as reader:
        assert len(reader) == 4


@pytest.mark.parametrize("workers", [0, 2])
def test_collect_parts_on_a_full_disk_fail_in_one_line(tmp_path: Path, workers: int) -> None:
    """Issue 32 item 8: on a 400 KiB tmpfs, writing parts segfaulted (rc 139) with no workers
    and printed dozens of h5py tracebacks with two; both left a .tmp part. Now one line, no
    temporary, the finished parts kept for the rerun."""
    from tests.faults import temporaries, tmpfs

    with tmpfs(tmp_path / "small", "400k") as disk:
        args = [
            sys.executable, "-m", "envs.collect", "env=panda_push", "num_episodes=12",
            f"num_workers={workers}", f"output={disk / 'p.h5'}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ]  # fmt: skip
        res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert res.returncode == 1, res.stderr[-2000:]
        for noise in ("Traceback", "HDF5-DIAG", "h5py"):
            assert noise not in res.stderr, res.stderr[-2000:]
        assert res.stderr.count("wm-collect: error:") == 1
        error = res.stderr[res.stderr.index("wm-collect: error:") :].splitlines()[0]
        assert f"no space left on device while writing {disk}/p.h5.parts/demo_" in error
        assert "finished episodes" in error and "run the same command again" in error
        assert not temporaries(disk) and finished_parts(disk / "p.h5.parts")


def _property_dataset(path: Path) -> Path:
    """Two synthetic episodes with simulator states, written as wm-collect writes them."""
    import json

    from envs.common.contract import EnvContract
    from envs.data.episode import Episode
    from tests.synthetic import synthetic_episodes

    contract = EnvContract(
        "synthetic", 5.0, (-0.25,) * 2 + (0.0,) * 5, (0.25,) * 2 + (0.0,) * 5, 16, 7, 7,
        camera_pos=(1.0, 0.0, 1.0), camera_target=(0.0, 0.0, 0.0), camera_fovy=45.0,
        sim_dt=0.002,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for k, ep in enumerate(synthetic_episodes(2, length=4, size=16)):
        ep = Episode(
            ep.pixels, ep.states, ep.actions, ep.goal_pixels, ep.goal_state,
            {"env_id": "synthetic", "seed": k, "success": True, "distance": 0.01},
            rewards=np.zeros(4, np.float32), sim_states=rng.normal(size=(5, 6)),
        )  # fmt: skip
        write_episode_part(path.with_suffix(".parts"), k, ep)
    kwargs = {"image_size": 16, "control_hz": 5.0, "sim_dt": 0.002}
    root = {
        "env_id": "synthetic", "env_revision": 2, "env_kwargs": json.dumps(kwargs),
        "env_args": json.dumps({"env_name": "synthetic", "env_kwargs": kwargs}),
        "control_hz": 5.0, "image_size": 16, "policy": json.dumps({"name": "random"}),
        "camera": json.dumps({"name": "front", "pos": [1.0, 0.0, 1.0], "target": [0, 0, 0]}),
        "env_contract": json.dumps(contract.to_dict()),
    }  # fmt: skip
    return merge_parts(path.with_suffix(".parts"), path, root)


def _hdf5_result(path: Path) -> tuple:
    """Everything a reader gives training and evaluation: attrs, arrays, the env contract."""
    from envs.common.contract import EnvContract
    from envs.data.hdf5 import DIGEST_ATTR

    with open_dataset(path) as reader:
        episodes = [
            (e.pixels, e.states, e.actions, e.goal_pixels, e.goal_state, e.rewards,
             e.sim_states, e.attrs)
            for e in reader
        ]  # fmt: skip
        attrs = {k: v for k, v in reader.attrs.items() if k != DIGEST_ATTR}
        return attrs, episodes, EnvContract.from_dataset_attrs(reader.attrs)


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict | list | tuple) and type(a) is type(b) and len(a) == len(b):
        pairs = (
            zip(a.items(), b.items(), strict=True)
            if isinstance(a, dict)
            else zip(a, b, strict=True)
        )
        return all(_same(x, y) for x, y in pairs)
    return a == b


def test_every_recorded_field_perturbed_is_refused_or_changes_nothing(tmp_path: Path) -> None:
    """Issue 32, property: change any one attr (or delete it) or one value of any dataset of
    a small HDF5 file; the reader refuses it, or training and evaluation get exactly what
    they got before. Never a silently different dataset."""
    from tests.synthetic import perturbed

    original = _property_dataset(tmp_path / "d.h5")
    expected = _hdf5_result(original)
    with h5py.File(original) as f:
        objects = ["data"] + [f"data/{name}" for name in f["data"]]
        objects += [
            f"data/{d}/{k}" for d in f["data"] for k in ("obs", "goal") if k in f["data"][d]
        ]
        attrs = [(o, k) for o in objects for k in f[o].attrs]
        arrays = []
        f["data"].visititems(
            lambda n, o: arrays.append(f"data/{n}") if isinstance(o, h5py.Dataset) else None
        )
    cases = [("attr", o, k) for o, k in attrs] + [("del", o, k) for o, k in attrs]
    cases += [("array", a, None) for a in arrays]
    outcomes = {"refused": 0, "same": 0}
    for kind, obj, key in cases:
        copy = Path(shutil.copy(original, tmp_path / "p.h5"))
        with h5py.File(copy, "r+") as f:
            if kind == "attr":
                f[obj].attrs[key] = perturbed(f[obj].attrs[key])
            elif kind == "del":
                del f[obj].attrs[key]
            else:
                f[obj][...] = perturbed(f[obj][()])
        try:
            got = _hdf5_result(copy)
        except ValueError:  # DatasetError, or a contract that cannot be built
            outcomes["refused"] += 1
            continue
        assert _same(got, expected), f"{kind} {obj} {key}: a silently different dataset"
        outcomes["same"] += 1
    assert outcomes["refused"] >= len(cases) - 1, outcomes  # only dropping the digest reads
