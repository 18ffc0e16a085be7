"""bench/anchors.py: protocol=dataset rows on the anchors' tasks, Wilson intervals, the table."""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from bench import anchors
from envs.collect.rollout import dataset_root_attrs, record_episode
from envs.common.experts import make_policy
from envs.common.sim_state import set_sim_state
from envs.data import open_dataset
from envs.data.hdf5 import merge_parts, write_episode_part


@pytest.fixture(scope="module")
def reacher_data(tmp_path_factory) -> Path:
    """Two 30-step noisy-expert reacher episodes with simulator states."""
    out = tmp_path_factory.mktemp("anchors") / "reacher.h5"
    env = gym.make("wm/DMCReacherEasy-v0", max_episode_steps=30)
    for i, seed in enumerate((3, 4)):
        ep = record_episode(env, make_policy("expert", env, noise=0.8, seed=seed), seed)
        write_episode_part(out.parent / "parts", i, ep)
    attrs = dataset_root_attrs("wm/DMCReacherEasy-v0", {}, env, {"name": "expert"})
    merge_parts(out.parent / "parts", out, attrs)
    env.close()
    return out


@pytest.mark.parametrize("kind", ["random", "oracle"])
def test_rows_run_the_protocol_in_chunks_and_fill_the_table(
    reacher_data: Path, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anchors, "OUT", tmp_path)  # never touch bench/results from a test
    args = argparse.Namespace(
        task="reacher", agent=kind, dataset=str(reacher_data), checkpoint=None, episodes=1,
        first=0, override=["planner.num_samples=16", "planner.iterations=2",
                           "planner.num_elites=4"],
        train_data=None, train_time=None, label=None,
    )  # fmt: skip
    assert anchors.run_row(args)["episodes"] == 1
    args.first = 1  # a second chunk (another process) merges into the same row
    row = anchors.run_row(args)
    assert row["episodes"] == 2 and 0.0 <= row["success_any"] <= 1.0
    assert [e["seed"] for e in row["per_episode"]] == [anchors.SEED, anchors.SEED + 1]
    assert row["distance"]["threshold"] == pytest.approx(0.06)  # the suite's own radius
    assert row["dataset_size"] == {"path": str(reacher_data), "episodes": 2, "steps": 60}
    recipe = row["provenance"]["dataset"]  # how the eval set was made, from its attrs
    assert recipe["env_id"] == "wm/DMCReacherEasy-v0" and recipe["episodes"] == 2
    assert recipe["policy"] == {"name": "expert"} and recipe["first_seed"] == 3
    assert row["provenance"]["machine"]["device"] in ("cpu", *_cuda_names())
    table = (tmp_path / "anchors.md").read_text()
    assert "| reacher (wm/DMCReacherEasy-v0) |" in table and "86" in table  # LeWM's figure
    # The thick-arm twin shares the pixel-free rows; its learned cell is its own.
    twin = next(line for line in table.splitlines() if line.startswith("| reacher1 "))
    assert "as reacher (same recorded states" in twin and "| not run |" in twin
    # A labelled variant is kept beside the headline row instead of replacing it.
    args.label, args.first = "variant", 0
    variant = anchors.run_row(args)
    assert variant["episodes"] == 1 and variant["label"] == "variant"
    rows = json.loads((tmp_path / "anchors.json").read_text())["rows"]
    assert rows[f"reacher:{kind}"]["episodes"] == 2 and f"reacher:{kind}:variant" in rows
    assert f"| reacher:{kind}:variant |" in (tmp_path / "anchors.md").read_text()


def _cuda_names() -> list[str]:
    import torch

    return [torch.cuda.get_device_name()] if torch.cuda.is_available() else []


def test_reacher_v1_draws_a_thicker_arm_with_the_same_physics() -> None:
    """v1 only changes pixels: the same seed and actions give the same states, and the arm
    covers several times more pixels (what an encoder trained at 64 px needs to see it)."""
    runs = {}
    for env_id in ("wm/DMCReacherEasy-v0", "wm/DMCReacherEasy-v1"):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=5)
        states, frames = [obs["state"]], [obs["pixels"]]
        for t in range(6):
            action = np.zeros(7, np.float32)
            action[:2] = (0.8, -0.6) if t % 2 else (-0.5, 0.9)
            obs, *_ = env.step(action)
            states.append(obs["state"])
            frames.append(obs["pixels"])
        runs[env_id] = np.stack(states), np.stack(frames).astype(int)
    (s0, f0), (s1, f1) = runs.values()
    np.testing.assert_array_equal(s0, s1)
    # Arm pixels: those that change between the frames (the target and the arena stay put).
    moving0 = (np.abs(np.diff(f0, axis=0)).sum(-1) > 30).sum()
    moving1 = (np.abs(np.diff(f1, axis=0)).sum(-1) > 30).sum()
    assert moving1 > 1.5 * moving0 > 0  # measured 1.9x


def test_collect_refuses_a_setting_the_id_fixes() -> None:
    from envs.collect.config import DMCEnvEntry

    with pytest.raises(ValueError, match="arm_scale=3.0"):
        DMCEnvEntry(id="wm/DMCReacherEasy-v1", task="reacher_easy", arm_scale=1.0)
    assert DMCEnvEntry(id="wm/DMCReacherEasy-v1", task="reacher_easy", arm_scale=3.0)


def test_probe_reads_the_fingertip_on_reacher(reacher_data: Path) -> None:
    """bench/probe.py on a non-Panda env: `task` is the fingertip the success test compares,
    per recorded frame, and the Panda-only columns are absent (reacher's state has no gripper)."""
    from bench.probe import probe_targets

    truth = probe_targets(str(reacher_data))
    assert set(truth) == {"task"}
    assert truth["task"].shape == (62, 3)
    env = gym.make("wm/DMCReacherEasy-v0")
    env.reset(seed=0)
    ep = next(iter(open_dataset(str(reacher_data))))
    set_sim_state(env, ep.sim_states[7])
    assert truth["task"][7] == pytest.approx(env.unwrapped.task_positions().ravel())
    assert truth["task"][:31, :2].std(0).min() > 0.01  # the arm moves within an episode
    env.close()


def _write_episodes(out: str, seeds: list[int]) -> None:
    anchors.OUT = Path(out)  # a forked child: set its own module global
    setup = {"task": "reacher", "agent": "random", "label": None, "planner": {}}
    setup |= {"dataset_size": {"episodes": 1, "steps": 1}}
    for seed in seeds:
        episode = {"seed": seed, "start": [0, 0], "trivial": False, "success_any": True,
                   "success_end": False, "final_distance": 0.1, "plan_ms": [], "wall_s": 0.0}  # fmt: skip
        anchors.save_episode(setup, episode)


def test_parallel_chunks_lose_no_episode(tmp_path: Path) -> None:
    """Two processes merging episodes into one row at once keep every episode (the row is
    read, merged and written under a lock; a kill never leaves a half-written JSON)."""
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_write_episodes, args=(str(tmp_path), list(range(i, 60, 2))))
        for i in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    row = json.loads((tmp_path / "anchors.json").read_text())["rows"]["reacher:random"]
    assert sorted(e["seed"] for e in row["per_episode"]) == list(range(60))
    assert not list(tmp_path.glob(".anchors.json.tmp-*"))


def test_cube_rows_carry_the_strict_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cube row records the strict test (3 cm and 15 degrees) per episode, read from the
    simulator against the goal frame's recorded state; the recorded plan, replayed, meets it."""
    monkeypatch.setattr(anchors, "OUT", tmp_path)
    out = tmp_path / "cube.h5"
    env = gym.make("wm/OGBenchCube-v0", max_episode_steps=30)
    ep = record_episode(env, make_policy("ogbench_plan", env, noise=0.1, seed=1), 1)
    write_episode_part(tmp_path / "parts", 0, ep)
    attrs = dataset_root_attrs("wm/OGBenchCube-v0", {}, env, {"name": "ogbench_plan"})
    merge_parts(tmp_path / "parts", out, attrs)
    env.close()
    wrapped = anchors._StartInfo(
        anchors.DatasetGoal(anchors.make_env("wm/OGBenchCube-v0"), out, anchors.GOAL_OFFSET)
    )
    wrapped.reset(seed=anchors.SEED)
    assert wrapped.strict_any is False
    start = wrapped.get_wrapper_attr("start")[1]
    goal_state = wrapped.get_wrapper_attr("goal_sim_state")
    np.testing.assert_array_equal(goal_state, ep.sim_states[start + anchors.GOAL_OFFSET])
    for _ in range(anchors.GOAL_OFFSET):  # the recorded actions reproduce the goal frame
        wrapped.step(wrapped.get_wrapper_attr("replay_action")(None, None))
    assert wrapped.strict_end is True and wrapped.strict_any is True
    wrapped.close()
    args = argparse.Namespace(
        task="cube", agent="random", dataset=str(out), checkpoint=None, episodes=1, first=0,
        override=[], train_data=None, train_time=None, label=None,
    )  # fmt: skip
    row = anchors.run_row(args)
    assert isinstance(row["per_episode"][0]["strict_any"], bool)
    assert 0 <= row["strict_any"] <= row["success_any"] and "strict_any_ci95" in row


def test_the_strict_column_shows_dashes_for_rows_without_it() -> None:
    setup = {"task": "cube", "agent": "random", "label": None, "planner": {}}
    setup |= {"dataset_size": {"episodes": 1, "steps": 100}}
    base = {"start": [0, 0], "success_end": False, "final_distance": 0.1, "plan_ms": [],
            "wall_s": 0.0}  # fmt: skip
    strict = [
        base | {"seed": s, "trivial": t, "success_any": a, "strict_any": x, "strict_end": x}
        for s, t, a, x in [(0, True, True, True), (1, False, True, True), (2, False, True, False),
                           (3, False, False, False)]
    ]  # fmt: skip
    old = [{k: v for k, v in e.items() if not k.startswith("strict")} for e in strict]
    rows = {"cube:random": anchors.aggregate(setup, strict)}
    rows["cube:random:old"] = anchors.aggregate(setup | {"label": "old"}, old)
    rows["cube:random:mixed"] = anchors.aggregate(setup | {"label": "m"}, strict[:2] + old[2:])
    assert rows["cube:random"]["strict_any"] == 0.5
    assert rows["cube:random"]["strict_any_not_at_start"] == pytest.approx(1 / 3)
    assert "strict_any" not in rows["cube:random:old"]
    table = anchors.to_markdown({"rows": rows})
    header = next(line for line in table.splitlines() if line.startswith("| row |"))
    assert "| strict (3 cm, 15 deg) [95 %] / when not met at start |" in header
    line = next(x for x in table.splitlines() if x.startswith("| cube:random |"))
    lo, hi = (round(100 * v) for v in rows["cube:random"]["strict_any_ci95"])
    assert f"| 0.67 of 3 | 50 [{lo}, {hi}] / 0.33 of 3 |" in line
    for key in ("cube:random:old", "cube:random:mixed"):
        line = next(x for x in table.splitlines() if x.startswith(f"| {key} |"))
        assert "| 0.67 of 3 | - |" in line
    assert len(header.split("|")) == len(line.split("|"))
