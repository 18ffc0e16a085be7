"""Fault injection for envs/: wm-collect killed at random points, parts of another command,
a full disk (while recording and in the merge), and datasets holding NaN, out-of-bounds or
string-typed actions. Each case once ended in a silent wrong result or a cryptic error (issues
12 and 24); docs/robustness.md tabulates what survives what.

The full-disk cases mount a small tmpfs (root only) and skip where that is not allowed.
"""

from __future__ import annotations

import contextlib
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

import envs  # noqa: F401  (registers the wm/* ids)
import envs.collect.app
from envs.collect.app import collect
from envs.collect.parts import StalePartError
from envs.data import open_dataset
from envs.data.episode import DatasetError, Episode
from envs.data.hdf5 import finished_parts, write_episode_part
from envs.data.storage import DiskFullError
from tests.faults import (
    ROOT,
    dead_pid,
    leave_parts,
    small_collect,
    temporaries,
    tmpfs,
)
from tests.synthetic import synthetic_episodes
from tests.test_train import (
    one_thread,  # noqa: F401  (fixture)
    write_h5,
)

pytestmark = pytest.mark.usefixtures("one_thread")


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
    with pytest.raises(FileExistsError, match="image_size: file has 16, this command 24"):
        collect(small_collect(out, n=3, image_size=24))


def test_collect_rerecords_a_truncated_part_and_drops_dead_temporaries(tmp_path, monkeypatch):
    out = tmp_path / "x.h5"
    parts = leave_parts(small_collect(out, n=3), monkeypatch)
    parts[1].write_bytes(parts[1].read_bytes()[:200])  # bit rot / a bad disk
    pid = dead_pid()  # a merge and a part write killed half-way
    for stale in (
        f".x.h5.tmp-{pid}",
        f"x.h5.tmp.{pid}",
        "x.h5.tmp",
        f"x.h5.parts/.demo_2.h5.tmp-{pid}",
    ):
        (tmp_path / stale).write_bytes(b"\0" * 4096)
    collect(small_collect(out, n=3))
    with open_dataset(out) as reader:
        assert len(reader) == 3 and reader[1].actions.shape == (3, 7)
    assert not temporaries(tmp_path)


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
    monkeypatch.setattr(envs.collect.app, "_record", lambda k: recorded.append(k) or (k, True))
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
    path = write_h5(tmp_path / "nan.h5", synthetic_episodes(3, length=5, size=16))
    with h5py.File(path, "r+") as f:  # bit rot, or a file from another tool
        f["data/demo_1/actions"][2, 4] = np.nan
    with pytest.raises(DatasetError, match=r"nan\.h5: data/demo_1: actions .* at step 2"):
        open_dataset(path)
    with h5py.File(path, "r+") as f:
        f["data/demo_1/actions"][2, 4] = 0.0
        f["data/demo_2/obs/state"][4, 0] = np.inf
    with pytest.raises(DatasetError, match=r"demo_2: obs/state .* at step 4"):
        open_dataset(path)


def test_an_episode_with_nan_is_never_written(tmp_path) -> None:
    (ep,) = synthetic_episodes(1, length=5, size=16)
    ep.actions[3, 0] = np.nan  # what a simulation that blew up records
    episode = Episode(ep.pixels, ep.states, ep.actions, ep.goal_pixels, ep.goal_state, ep.attrs)
    with pytest.raises(DatasetError, match=r"episode 7 .*actions .* at step 3"):
        write_episode_part(tmp_path / "parts", 7, episode)
    assert not finished_parts(tmp_path / "parts") and not temporaries(tmp_path)


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


# ------------------------------------------------------------------ 2: a disk that fills in the merge
def test_collect_merge_on_a_full_disk_fails_by_name_and_resumes(tmp_path, monkeypatch) -> None:
    """HDF5 aborts the process (``double free``) when the disk fills inside `Group.copy`, so
    the merge checks the free space first; a dead merge's temporary is removed before the
    writable check (it is what fills the disk), and the same command resumes once there is
    room."""
    from envs.collect.app import collect
    from envs.data.storage import DiskFullError
    from tests.faults import leave_parts

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
