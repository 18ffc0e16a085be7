"""Helpers the fault-injection tests share (tests/test_*_faults.py): a small wm-collect config,
a kill before the merge, a dead process id, a small tmpfs, the temporaries a run leaves, and a
way to edit a checkpoint's config.json (the `reach_copy` fixture is in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import envs.collect.app
from envs.collect.app import collect
from envs.collect.config import CollectConfig, PandaEnvEntry, PolicyConfig
from envs.data.hdf5 import finished_parts

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ helpers
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
        m.setattr(envs.collect.app, "merge_parts", killed)
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


def edit_config(checkpoint: Path, edit) -> Path:
    path = checkpoint / "config.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    return path
