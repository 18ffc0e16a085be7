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

    from agent.checkpoint import run_checkpoint
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
        summary = evaluate(cfg, tmp_path / kind, run_checkpoint(cfg), progress=False)
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


def _edit_states(src: Path, dst: Path, edit) -> Path:
    """A copy of ``src`` whose every ``data/demo_K/states`` is replaced by ``edit(states, K)``,
    without a content digest (as another tool writes it: the digest would refuse any edit)."""
    import shutil

    import h5py

    from envs.data.hdf5 import DIGEST_ATTR

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        del f["data"].attrs[DIGEST_ATTR]
        for k, name in enumerate(sorted(f["data"])):
            g = f[f"data/{name}"]
            states = edit(g["states"][()], k)
            del g["states"]
            g.create_dataset("states", data=states)
    return dst


def _nan_at_start(states, k):
    if k == 0:
        states[0, 3] = np.nan
    return states


def _huge(states, k):
    if k == 1:
        states[2, 5] = 1e300
    return states


def _inf(states, k):
    if k == 0:
        states[4, 1] = -np.inf
    return states


@pytest.mark.parametrize(
    "edit, message",
    [
        (_nan_at_start, r"push.h5: demo_0: states at step 0: .*first at index 3: nan"),
        (_huge, r"push.h5: data/demo_1: states holds 1 values .*step 2, index 5: 1e\+300"),
        (_inf, r"push.h5: data/demo_0: states holds 1 values .*step 4, index 1: -inf"),
        (lambda s, k: s[:, :-1], r"push.h5: demo_\d: states at step \d+ have \(\d+,\) numbers"),
    ],
    ids=["nan", "1e300", "inf", "wrong length"],
)
def test_bad_simulator_states_are_refused_by_file_episode_and_step(
    recorded, tmp_path, edit, message
):
    """Issue 32 item 4: NaN states gave NaN distances with exit 0, 1e300 "distance inf", a
    wrong length a raw mujoco TypeError. Now one line naming the file, episode and step."""
    from envs.data.episode import DatasetError

    bad = _edit_states(recorded, tmp_path / "push.h5", edit)
    with pytest.raises(DatasetError, match=message):
        env = DatasetGoal(gym.make(ENV_ID), bad, offset=5)
        env.reset(seed=11)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"control_hz": 10.0}, r"control_hz mismatch: the dataset was recorded with "
         r"control_hz=5.0, the env has control_hz=10.0"),
        ({"pos_bound": 0.02}, r"action_low mismatch: .*-0.075.*-0.02"),
        ({"image_size": 32}, r"image_size mismatch: .*image_size=64, the env has image_size=32"),
        ({"camera_fovy": 70.0}, r"camera_fovy mismatch: .*=50.0, the env has camera_fovy=70.0"),
        ({"sim_dt": 0.001}, r"sim_dt mismatch"),
    ],
    ids=["rate", "action box", "image size", "camera", "physics step"],
)  # fmt: skip
def test_the_eval_env_must_be_the_datasets(recorded, kwargs, field):
    """Issue 32 items 5 and 14b: protocol=dataset checked only the env id, so a dataset of
    another rate, action box, image size or camera was replayed without a word, by every
    agent kind. DatasetGoal now checks the dataset's recorded env contract."""
    with pytest.raises(ValueError, match=rf"push.h5: the dataset's env vs the eval env: {field}"):
        DatasetGoal(gym.make(ENV_ID, **kwargs), recorded, offset=5)


def test_every_agent_kind_meets_the_dataset_check(recorded, tmp_path):
    from agent.checkpoint import run_checkpoint
    from agent.config import AgentConfig, EnvSection, EvalConfig
    from agent.evaluate import evaluate

    for kind in ("random", "oracle"):
        section = EnvSection(
            id=ENV_ID, kwargs={"control_hz": 10.0}, protocol="dataset",
            dataset=str(recorded), goal_offset=4, max_steps=4,
        )  # fmt: skip
        cfg = EvalConfig(env=section, agent=AgentConfig(kind=kind), episodes=1, videos=0)
        with pytest.raises(ValueError, match=r"control_hz mismatch"):
            evaluate(cfg, tmp_path / kind, run_checkpoint(cfg), progress=False)
