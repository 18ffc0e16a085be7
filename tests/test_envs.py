"""Every wm/* env: Gymnasium checker, shapes, determinism, clipping, oracle, experts, vector envs."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.common.experts import make_policy

PANDA_IDS = [i for i in envs.ENV_IDS if "Panda" in i]


@pytest.fixture(scope="module", params=envs.ENV_IDS)
def env(request: pytest.FixtureRequest) -> gym.Env:
    e = gym.make(request.param)
    yield e
    e.close()


@pytest.mark.filterwarnings("ignore::UserWarning")  # zero-width (frozen) action dims warn
def test_check_env(env: gym.Env) -> None:
    check_env(env.unwrapped, skip_render_check=True)


def test_spaces_shapes_and_info(env: gym.Env) -> None:
    obs, info = env.reset(seed=0)
    assert env.action_space.shape == (7,) and env.action_space.dtype == np.float32
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert obs["state"].shape == (7,) and obs["state"].dtype == np.float32
    assert info["goal_pixels"].shape == (64, 64, 3) and info["goal_pixels"].dtype == np.uint8
    assert info["goal_state"].shape == (7,)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(info["success"], bool) and isinstance(info["distance"], float)
    assert np.all(np.isfinite(obs["state"])) and np.isfinite(reward)
    assert obs["pixels"].std() > 5  # not a blank frame


def test_reset_seed_is_deterministic(env: gym.Env) -> None:
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high, (3, 7))
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=123)
        frames = [obs["pixels"], info["goal_pixels"]]
        states = [obs["state"]]
        for a in actions:
            obs, *_ = env.step(a)
            frames.append(obs["pixels"])
            states.append(obs["state"])
        runs.append((np.stack(frames), np.stack(states)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other, _ = env.reset(seed=124)
    assert not np.array_equal(other["state"], runs[0][1][0])  # another seed, another instance


def test_oracle_matches_execution_and_restores_state(env: gym.Env) -> None:
    env.reset(seed=3)
    base = env.unwrapped
    rng = np.random.default_rng(1)
    plans = rng.uniform(env.action_space.low, env.action_space.high, (4, 3, 7))
    before = base.get_sim_state()
    costs = base.oracle_cost(plans)
    assert costs.shape == (4,)
    np.testing.assert_array_equal(before, base.get_sim_state())
    for a in plans[2]:
        *_, info = env.step(a)
    assert info["distance"] == pytest.approx(costs[2], abs=1e-9)
    base.set_sim_state(before)  # replaying from a restored state gives the same outcome
    for a in plans[2]:
        *_, info_again = env.step(a)
    assert info_again["distance"] == pytest.approx(info["distance"], abs=1e-9)


def test_step_dynamics_ends_where_step_does(env: gym.Env) -> None:
    """The oracle's render-free step (envs/common/oracle.py) must land the simulator in
    `step`'s state."""
    base = env.unwrapped
    if not hasattr(base, "step_dynamics"):
        pytest.skip(f"{env.spec.id} has no step_dynamics")
    env.reset(seed=5)
    start = base.get_sim_state()
    plan = np.random.default_rng(2).uniform(env.action_space.low, env.action_space.high, (3, 7))
    for a in plan:
        env.step(a)
    stepped = base.get_sim_state()
    base.set_sim_state(start)
    for a in plan:
        base.step_dynamics(a)
    np.testing.assert_array_equal(base.get_sim_state(), stepped)
    assert not np.array_equal(stepped, start)  # the plan moved something


@pytest.mark.parametrize("env_id", PANDA_IDS)
def test_panda_action_clipping_and_bounds(env_id: str) -> None:
    e = gym.make(env_id)
    e.reset(seed=0)
    np.testing.assert_allclose(e.action_space.high, [0.075] * 3 + [0.0] * 3 + [1.0])
    start = e.unwrapped.ee_pos()
    obs, *_ = e.step(np.array([5.0, 0, 0, 3.0, 3.0, 3.0, 0], np.float32))  # far out of bounds
    moved = e.unwrapped.ee_pos() - start
    assert 0.05 < moved[0] <= 0.0751 + 1e-3 and abs(moved[1]) < 0.01
    np.testing.assert_allclose(obs["state"][3:6], 0.0, atol=0.02)  # rotation stayed frozen
    obs, *_ = e.step(np.full(7, np.nan, np.float32))  # NaN means "no move", never a blow-up
    assert np.all(np.isfinite(obs["state"]))
    e.close()
    wide = gym.make(env_id, pos_bound=0.1, rot_bound=0.2, image_size=32)
    np.testing.assert_allclose(wide.action_space.high, [0.1] * 3 + [0.2] * 3 + [1.0], rtol=1e-6)
    assert wide.reset(seed=0)[0]["pixels"].shape == (32, 32, 3)
    wide.close()


def test_bad_config_values_are_named() -> None:
    with pytest.raises(ValueError, match="image_size=1000"):
        gym.make("wm/PandaReach-v0", image_size=1000)
    with pytest.raises(ValueError, match="sim_dt"):
        gym.make("wm/PandaReach-v0", sim_dt=0.003)
    with pytest.raises(ValueError, match="contradicts"):
        gym.make("wm/PandaReach-v0", task="push")
    with pytest.raises(TypeError):
        gym.make("wm/PandaReach-v0", imag_size=64)  # typo: no silent kwargs sink


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_expert_succeeds(env_id: str) -> None:
    e = gym.make(env_id)
    for seed in (0, 1, 2):
        obs, info = e.reset(seed=seed)
        policy = make_policy("expert", e, seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = e.step(policy(obs, info))
            done = terminated or truncated
        assert info["success"], f"{env_id} seed {seed}: distance {info['distance']:.3f}"
    e.close()


def test_goal_image_matches_goal_state_pose() -> None:
    """Reach goal: the goal state's xyz is the sampled target, and the image differs from start."""
    e = gym.make("wm/PandaReach-v0")
    obs, info = e.reset(seed=4)
    np.testing.assert_allclose(info["goal_state"][:3], e.unwrapped.goal_pos, atol=2e-3)
    assert np.abs(info["goal_pixels"].astype(int) - obs["pixels"]).sum() > 1000
    e.close()


def test_async_vector_env_spawn() -> None:
    vec = envs.make_vec("wm/PandaReach-v0", 2, context="spawn")
    obs, info = vec.reset(seed=[0, 1])
    assert obs["pixels"].shape == (2, 64, 64, 3) and obs["state"].shape == (2, 7)
    for _ in range(2):
        obs, reward, term, trunc, info = vec.step(vec.action_space.sample())
    assert info["success"].shape == (2,) and np.all(np.isfinite(info["distance"]))
    vec.close()


def test_generic_adapter_records_any_rgb_array_env() -> None:
    from envs.collect.rollout import record_episode
    from envs.foreign.adapter import PixelStateAdapter

    inner = gym.make("InvertedPendulum-v5", render_mode="rgb_array", max_episode_steps=5)
    env = PixelStateAdapter(inner, image_size=32)
    check_env(env, skip_render_check=True)
    assert env.action_space.shape == (7,) and env.action_space.high[1] == 0.0
    ep = record_episode(env, make_policy("random", env, seed=0), seed=0)
    assert ep.pixels.shape[1:] == (32, 32, 3) and ep.states.shape[1] == 7
    np.testing.assert_array_equal(ep.goal_pixels, ep.pixels[-1])  # hindsight goal
    env.close()


def test_menagerie_robot_needs_its_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="MENAGERIE_ROOT"):
        gym.make("wm/PandaReach-v0", robot="menagerie")
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="franka_emika_panda"):
        gym.make("wm/PandaReach-v0", robot="menagerie")


def test_make_vec_refuses_fork() -> None:
    with pytest.raises(ValueError, match="spawn or forkserver"):
        envs.make_vec("wm/PandaReach-v0", 2, context="fork")


def test_making_a_v0_task_prints_no_out_of_date_warning() -> None:
    """Our -v0 / -v1 ids are sibling tasks; Gymnasium's "consider v1" would mislead users."""
    code = "import envs, gymnasium as gym; gym.make('wm/PandaReach-v0').close()"
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )
    assert "out of date" not in done.stderr, done.stderr
