"""protocol=dataset: start and goal from a recorded trajectory, scored by configuration."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs.collect.rollout import dataset_root_attrs, record_episode
from envs.common.experts import make_policy
from envs.data.hdf5 import merge_parts, write_episode_part
from envs.goals.dataset_goal import DatasetGoal

ENV_ID = "wm/PandaPush-v0"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Two short expert push episodes (12 steps) with simulator states."""
    out = tmp_path_factory.mktemp("ds") / "push.h5"
    env = gym.make(ENV_ID, max_episode_steps=12)
    for i, seed in enumerate((5, 6)):
        ep = record_episode(env, make_policy("expert", env, noise=0.2, seed=seed), seed)
        write_episode_part(out.parent / "parts", i, ep)
    merge_parts(out.parent / "parts", out, dataset_root_attrs(ENV_ID, {}, env, {"name": "expert"}))
    env.close()
    return out


def test_start_and_goal_are_the_recorded_frames_and_replay_succeeds(recorded):
    from envs.data import open_dataset

    env = DatasetGoal(gym.make(ENV_ID), recorded, offset=5)
    obs, info = env.reset(seed=11)
    index, start = env.start
    episode = open_dataset(recorded)[index]
    # Rendering the restored simulator state reproduces the recorded frames exactly.
    np.testing.assert_array_equal(obs["pixels"], episode.pixels[start])
    np.testing.assert_array_equal(info["goal_pixels"], episode.pixels[start + 5])
    assert env.goal_features.shape == (2, 3)  # ee xyz + cube xyz
    # Replaying the recorded actions from the start reaches the goal configuration.
    for action in episode.actions[start : start + 5]:
        obs, _, _, _, info = env.step(action)
    assert info["success"] and info["distance"] < 0.01
    # Same seed, same start; the env's own task distance is replaced by the configuration one.
    env.reset(seed=11)
    assert env.start == (index, start)
    env.close()


def test_bad_setups_are_named(recorded):
    with pytest.raises(ValueError, match="recorded in"):
        DatasetGoal(gym.make("wm/PandaReach-v0"), recorded, offset=5)
    with pytest.raises(ValueError, match="no episode has 50 steps"):
        DatasetGoal(gym.make(ENV_ID), recorded, offset=50)
    with pytest.raises(ValueError, match="seed"):
        DatasetGoal(gym.make(ENV_ID), recorded, offset=5).reset()


def test_wm_eval_protocol_dataset_rows(recorded, tmp_path):
    """Expert = the recorded actions (always succeeds); random rarely does; same goals."""
    from hydra import compose, initialize_config_module

    from agent.config import eval_config, register_configs
    from agent.evaluate import evaluate

    register_configs()
    common = [
        f"env.id={ENV_ID}",
        "env.protocol=dataset",
        f"env.dataset={recorded}",
        "env.goal_offset=4",
        "env.max_steps=6",
        "episodes=3",
        "videos=0",
    ]
    rates = {}
    for kind in ("expert", "random"):
        with initialize_config_module("configs", version_base="1.3"):
            cfg = eval_config(compose("eval", overrides=[*common, f"agent.kind={kind}"]))
        summary = evaluate(cfg, tmp_path / kind, progress=False)
        rates[kind] = summary["success_rate"]
        flags = [e["every_position_moves"] for e in summary["per_episode"]]
        assert summary["moving_episodes"] == sum(flags) and None not in flags
    assert rates["expert"] == 1.0
    with (
        pytest.raises(ValueError, match="env.dataset"),
        initialize_config_module("configs", version_base="1.3"),
    ):
        eval_config(compose("eval", overrides=["env.protocol=dataset"]))


def test_episodes_that_need_the_cube_moved_are_flagged(tmp_path):
    """`every_position_moves` is true exactly when both the end effector and the cube are
    farther than the threshold from their goal places (computed here from the recording)."""
    from envs.common.sim_state import set_sim_state
    from envs.data import open_dataset

    out = tmp_path / "push40.h5"
    env = gym.make(ENV_ID)
    ep = record_episode(env, make_policy("expert", env, seed=3), 3)  # 40 steps, pushes
    write_episode_part(tmp_path / "parts", 0, ep)
    merge_parts(tmp_path / "parts", out, dataset_root_attrs(ENV_ID, {}, env, {"name": "expert"}))
    episode = open_dataset(out)[0]
    probe = gym.make(ENV_ID)
    probe.reset(seed=3)
    base = probe.unwrapped

    def cube(t: int) -> np.ndarray:
        set_sim_state(probe, episode.sim_states[t])
        return base.data.xpos[base._cube_body].copy()

    goals = DatasetGoal(gym.make(ENV_ID), out, offset=10)
    flags = []
    for seed in range(40):
        _, info = goals.reset(seed=seed)
        _, start = goals.start
        ee = np.linalg.norm(episode.states[start + 10][:3] - episode.states[start][:3])
        moved = np.linalg.norm(cube(start + 10) - cube(start))
        threshold = goals.task_distance.threshold
        assert info["every_position_moves"] == (ee > threshold and moved > threshold)
        flags.append(info["every_position_moves"])
    assert any(flags) and not all(flags)  # windows before and during the push
