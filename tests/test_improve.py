"""wm-improve (bench/improve): rounds that grow the aggregated dataset, resume where a kill
stopped, write loadable checkpoints and figures, and refuse bad input by name.

The end-to-end rounds run on dm_control reacher with a tiny lewm model (tests/test_lewm.py's)
and a tiny action head, at budgets of a few steps: the figures mean nothing, the plumbing is
what is checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the wm/* ids)
from bench.improve.config import ImproveConfig
from envs.collect.rollout import dataset_root_attrs, record_episode
from envs.common.experts import make_policy
from envs.data import open_dataset
from envs.data.hdf5 import append_parts, merge_parts, write_episode_part
from tests.synthetic import synthetic_episodes

ROOT = Path(__file__).resolve().parents[1]
REACHER = "wm/DMCReacherEasy-v0"
TOY = "tests.toy_point_env:ToyPoint-v0"  # pure NumPy: no simulator state a dataset can hold
DIRECT = {
    "planner.proposal": "centre", "planner.num_samples": 1, "planner.num_elites": 1,
    "planner.iterations": 1, "planner.horizon": 1, "agent.execute_steps": 2,
    "agent.energy_reduce": "sum", "planner.select": "best", "agent.stay_if_better": False,
}  # fmt: skip


def _record(out: Path, env: gym.Env, env_id: str, seeds: list[int], policy) -> Path:
    parts = out.with_name(out.stem + "_parts")
    for i, seed in enumerate(seeds):
        write_episode_part(parts, i, record_episode(env, policy(env, seed), seed))
    merge_parts(parts, out, dataset_root_attrs(env_id, {}, env, {"name": "test"}))
    env.close()
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Reacher training and validation sets (noisy expert, 30 steps, simulator states), a toy
    set without states, and a tiny lewm checkpoint with an action head that recommends Direct."""
    from agent.recommend import set_recommended
    from tests.test_lewm import tiny_train_cfg
    from tests.toy_point_env import hold_still
    from world_model import load_world_model
    from world_model.heads.actor import ActorConfig, load_actions, save_actor, train_actor
    from world_model.heads.extras import encode_episodes
    from world_model.training.lewm_trainer import LeWMTrainer

    root = tmp_path_factory.mktemp("improve")
    expert = lambda env, seed: make_policy("expert", env, noise=0.8, seed=seed)  # noqa: E731
    train = _record(root / "train.h5", gym.make(REACHER, max_episode_steps=30), REACHER,
                    [3, 4, 5, 6], expert)  # fmt: skip
    val = _record(root / "val.h5", gym.make(REACHER, max_episode_steps=30), REACHER,
                  [200, 201], expert)  # fmt: skip
    from envs.foreign.make import make_gym_env

    toy = _record(root / "toy.h5", make_gym_env(TOY, max_episode_steps=12), TOY, [1],
                  lambda env, seed: hold_still(env))  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    LeWMTrainer(tiny_train_cfg(root / "run", train, steps=4)).run()
    checkpoint = root / "checkpoint"
    shutil.copytree(root / "run" / "world_model", checkpoint)
    model = load_world_model(checkpoint)
    latents, actions = encode_episodes(model, [str(train)]), load_actions([str(train)])
    head, _ = train_actor(
        latents, actions, model.action_block, model.predictor.action_mean,
        model.predictor.action_std, ActorConfig(steps=5, batch_size=16, hidden_dim=16),
        log_every=0,
    )  # fmt: skip
    save_actor(head, checkpoint)
    set_recommended(checkpoint, DIRECT)
    torch.set_num_threads(before)
    return {"root": root, "train": train, "val": val, "toy": toy, "checkpoint": checkpoint}


def tiny(inputs: dict[str, Path], out_dir: Path, **kw) -> ImproveConfig:
    """Two act episodes of 8 steps, one start x 2 hard negatives, 2 fine-tune steps."""
    base = dict(
        checkpoint=str(inputs["checkpoint"]), data=str(inputs["train"]),
        val_data=str(inputs["val"]), out_dir=str(out_dir), rounds=1, goal_offset=4, budget=8,
        act_episodes=2, negative_starts=1, num_negatives=2, negative_horizon=2,
        negative_samples=16, negative_iterations=2, negative_elites=4, diagnosis_candidates=6,
        finetune_steps=2, actor_steps=5, val_episodes=2,
    )  # fmt: skip
    return ImproveConfig(**(base | kw))


def _digest(path: Path) -> str:
    with open_dataset(path) as reader:
        return reader.attrs["content_sha256"]


def _episodes(path: Path) -> dict[str, dict]:
    with open_dataset(path) as reader:
        return {reader.episode_attrs(i)["name"]: reader[i] for i in range(len(reader))}


@pytest.mark.slow
def test_rounds_grow_the_data_resume_and_write_loadable_checkpoints(inputs, tmp_path):
    from agent.checkpoint import read_checkpoint
    from bench.improve.rounds import run
    from world_model import load_world_model
    from world_model.heads.actor import load_actor

    out = tmp_path / "out"
    lines: list[str] = []
    first = run(tiny(inputs, out), lines.append)
    # The aggregated dataset holds round 1's 2 act episodes and 1 x 2 hard negatives, each
    # with its simulator states and budget + 1 frames, from the training data's starts.
    episodes = _episodes(out / "aggregated.h5")
    assert sorted(episodes) == ["demo_100000", "demo_100001", "demo_150000", "demo_150001"]
    for ep in episodes.values():
        assert ep.sim_states is not None and len(ep.sim_states) == len(ep.pixels) == 9
        assert ep.attrs["round"] == 1 and ep.attrs["seed"] in (3, 4, 5, 6)  # the task instance
    negatives = [ep.attrs for ep in episodes.values() if ep.attrs["kind"] == "negative"]
    assert [a["rank"] for a in negatives] == [0, 1] and negatives[0]["plan_steps"] == 4
    # the imagined favourite is the first negative: the diagnosis scored the same outcome
    assert negatives[0]["diag_dist_energy_argmin"] == pytest.approx(negatives[0]["plan_distance"])
    assert negatives[0]["imagined_energy"] <= negatives[1]["imagined_energy"]
    # rounds.json holds every phase's figures, as written
    stored = json.loads((out / "rounds.json").read_text())
    assert stored == first and set(stored["rounds"]) == {"0", "1"}
    one = stored["rounds"]["1"]
    assert {"act", "negatives", "finetune", "validate", "logged"} <= set(one)
    assert one["act"]["episodes"] == 2 and one["negatives"]["episodes"] == 2
    assert one["negatives"]["starts"] == 1 and one["negatives"]["candidates_per_start"] == 6
    for key in ("dist_imagined_favourite", "dist_real_favourite", "imagined_favourite_fails"):
        assert np.isfinite(one["negatives"][key])
    assert one["negatives"]["dist_real_favourite"] <= one["negatives"]["dist_imagined_favourite"]
    lo, hi = one["validate"]["ci95"]
    assert one["validate"]["episodes"] == 2 and lo <= one["validate"]["success"] <= hi
    assert all(one[p]["cpu_min"] >= 0 for p in ("act", "negatives", "finetune", "validate"))
    assert any(line.startswith("round 1: +4 episodes") for line in lines)
    assert list((out / "tb").glob("events.out.tfevents.*"))
    # The round's checkpoint loads, with the planner it was given and a retrained head.
    ckpt = out / "round_1"
    assert load_world_model(ckpt).action_block == 2 and load_actor(ckpt) is not None
    assert read_checkpoint(ckpt).recommended == DIRECT
    trained = json.loads((ckpt / "config.json").read_text())["extra"]
    assert trained["train_config"]["init_from"] == str(inputs["checkpoint"])
    assert trained["train_config"]["optim"]["encoder_lr_scale"] == 0.1

    # A second invocation asking for 2 rounds resumes: round 1 is not done again.
    weights = (ckpt / "model.safetensors").stat().st_mtime_ns
    second = run(tiny(inputs, out, rounds=2), lines.append)
    assert second["rounds"]["1"] == one
    assert (ckpt / "model.safetensors").stat().st_mtime_ns == weights
    episodes = _episodes(out / "aggregated.h5")
    assert len(episodes) == 8 and {"demo_200000", "demo_250001"} <= set(episodes)
    assert second["rounds"]["2"]["checkpoint_in"] == str(ckpt)
    # Killed during round 2's validation: only that phase runs again.
    stored = json.loads((out / "rounds.json").read_text())
    del stored["rounds"]["2"]["validate"], stored["rounds"]["2"]["logged"]
    (out / "rounds.json").write_text(json.dumps(stored))
    digest = _digest(out / "aggregated.h5")
    weights = (out / "round_2" / "model.safetensors").stat().st_mtime_ns
    third = run(tiny(inputs, out, rounds=2), lines.append)
    assert "validate" in third["rounds"]["2"]
    assert _digest(out / "aggregated.h5") == digest
    assert (out / "round_2" / "model.safetensors").stat().st_mtime_ns == weights
    # Other settings on the same out_dir are refused: the figures would mix two runs.
    with pytest.raises(ValueError, match="act_episodes=2 there, 3 here"):
        run(tiny(inputs, out, rounds=2, act_episodes=3), lines.append)


def test_bad_input_is_refused_by_name(inputs, tmp_path):
    from bench.improve.task import check_not_heldout, open_task

    with pytest.raises(ValueError, match="act_episodes=0: must be >= 1"):
        tiny(inputs, tmp_path, act_episodes=0)
    with pytest.raises(ValueError, match="val_data is required"):
        open_task(tiny(inputs, tmp_path, val_data=""))
    # an env whose simulator state cannot be stored
    with pytest.raises(ValueError, match="restarts the simulator from saved states"):
        open_task(tiny(inputs, tmp_path, data=str(inputs["toy"])))
    # a dataset of another env: as the validation set, or as a resumed run's aggregated data
    with pytest.raises(ValueError, match="recorded in 'ToyPoint-v0'"):
        open_task(tiny(inputs, tmp_path, val_data=str(inputs["toy"])))
    shutil.copy(inputs["toy"], tmp_path / "aggregated.h5")
    with pytest.raises(ValueError, match="env_id mismatch"):
        open_task(tiny(inputs, tmp_path))
    # a checkpoint without the recipe it was trained with
    bare = tmp_path / "bare"
    shutil.copytree(inputs["checkpoint"], bare)
    payload = json.loads((bare / "config.json").read_text())
    del payload["extra"]["train_config"]
    (bare / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="records no extra.train_config"):
        open_task(tiny(inputs, tmp_path, checkpoint=str(bare)))
    # the bench's held-out sets are never a validation set
    with pytest.raises(ValueError, match="held-out set of cube"):
        check_not_heldout("data/ogbench_cube_eval.h5")
    # episodes too short for the checkpoint's training clips (4 frames, 2 steps apart)
    with pytest.raises(ValueError, match="training clips span 7"):
        open_task(tiny(inputs, tmp_path, budget=5, goal_offset=4, negative_horizon=1))


def test_the_command_prints_one_line_per_bad_input(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "bench.improve.app", "num_negatives=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.strip() == "wm-improve: error: num_negatives=0: must be >= 1"


def test_append_parts_adds_once_and_survives_a_kill(tmp_path):
    """aggregated.h5 grows by whole parts; a part merged by a run killed before it deleted the
    part is not added twice."""
    from tests.test_train import write_h5

    out = write_h5(tmp_path / "agg.h5", synthetic_episodes(2, length=3, size=16))
    with open_dataset(out) as reader:
        keep = ("env_id", "env_kwargs", "control_hz", "camera", "image_size", "policy")
        attrs = {k: v for k, v in reader.attrs.items() if k in (*keep, "env_contract")}
    parts = tmp_path / "parts"
    new = synthetic_episodes(2, length=3, size=16, seed=1)
    for index, ep in zip((10, 11), new, strict=True):
        write_episode_part(parts, index, ep)
    assert append_parts(parts, out, attrs) == [10, 11] and not parts.exists()
    write_episode_part(parts, 11, new[1])  # left behind by a kill after the rename
    write_episode_part(parts, 12, new[0])
    assert append_parts(parts, out, attrs) == [12]
    with open_dataset(out) as reader:
        assert reader.names == ["demo_0", "demo_1", "demo_10", "demo_11", "demo_12"]
        np.testing.assert_array_equal(reader[3].pixels, new[1].pixels)


def test_diverse_best_skips_near_copies_and_says_when_it_cannot():
    from bench.improve.negatives import diverse_best

    half = np.array([1.0, 1.0, 0.0])  # the last dimension is frozen
    plans = np.zeros((4, 2, 3))
    plans[1, :, 0] = 0.01  # a near copy of plan 0
    plans[2, :, 0] = 0.5
    plans[3, :, 2] = 9.0  # differs only in the frozen dimension
    energy = np.array([0.1, 0.2, 0.3, np.nan])
    assert diverse_best(plans, energy, 2, 0.1, half) == ([0, 2], True)
    assert diverse_best(plans, energy, 3, 0.1, half) == ([0, 2, 1], False)
    with pytest.raises(ValueError, match="fewer than num_negatives=4"):
        diverse_best(plans, energy, 4, 0.1, half)


def test_the_encoder_learns_at_its_fraction_of_the_rate():
    from tests.test_lewm import lewm_cfg
    from world_model.model.world_model import build_world_model
    from world_model.training.config import OptimConfig
    from world_model.training.train_state import make_optimizer

    model = build_world_model(lewm_cfg())
    encoder = {id(p) for p in model.encoder.parameters()}
    opt = make_optimizer(model, OptimConfig(lr=1e-3, encoder_lr_scale=0.1))
    for group in opt.param_groups:
        in_encoder = {id(p) in encoder for p in group["params"]}
        assert len(in_encoder) == 1
        assert group["lr"] == pytest.approx(1e-4 if in_encoder.pop() else 1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # the logged rate: the predictor's
    assert len(make_optimizer(model, replace(OptimConfig(), lr=1e-3)).param_groups) == 2


def test_finetune_continues_a_joint_recipe_at_a_lower_rate(tmp_path):
    """The shipped cube model trains its head with the model (train.actor_weight): a round's
    fine-tune keeps that recipe, on the checkpoint's own lewm config, at finetune_lr_scale."""
    from bench.improve.finetune import finetune_config

    cfg = finetune_config(
        Path("checkpoints/cube_lewm"), ["d.h5"], tmp_path, 600, 0.1, 0, lr_scale=0.3
    )
    assert cfg.world_model.objective == "lewm" and cfg.init_from == "checkpoints/cube_lewm"
    assert (cfg.actor_weight, cfg.actor_goal_weight) == (0.1, 0.05)
    assert cfg.optim.lr == pytest.approx(0.3e-3) and cfg.optim.encoder_lr_scale == 0.1
