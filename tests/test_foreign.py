"""Foreign Gymnasium envs: render size at make time, sim-state save/restore, task distance with
units, the generic oracle, behaviour policies and the errors that name the fix."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the wm/* ids)
from agent.baselines import oracle_cost_fn
from agent.replay import ReplayGoal
from envs.distance import DistanceConfig, TaskDistance
from envs.experts import make_policy
from envs.foreign import GymEnvEntry, make_gym_env, takes_render_size, task_name
from envs.oracle import state_oracle_cost
from envs.sim_state import SimStateError, get_sim_state, set_sim_state, state_kind

TOY = "tests.toy_point_env:ToyPoint-v0"


def step_n(env: gym.Env, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        env.step(rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32))


def test_mujoco_env_renders_at_image_size_without_resizing():
    assert takes_render_size("Reacher-v5") and not takes_render_size("Pendulum-v1")
    env = make_gym_env("Reacher-v5", image_size=48)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (48, 48, 3)
    assert env.env.render().shape == (48, 48, 3)  # the env itself renders 48 px
    assert env.control_hz == pytest.approx(50.0)  # 1 / dt (frame_skip 2 x 0.01 s)
    env.close()


def test_camera_options_refused_where_the_env_has_none():
    with pytest.raises(ValueError, match="camera"):
        make_gym_env("Pendulum-v1", camera_name="top")


@pytest.mark.parametrize(
    ("env_id", "kind"),
    [("Reacher-v5", "mujoco"), ("Pendulum-v1", "classic"), (TOY, "deepcopy")],
)
def test_sim_state_round_trip_replays_identically(env_id, kind):
    env = make_gym_env(env_id, image_size=32)
    env.reset(seed=1)
    assert state_kind(env) == kind
    step_n(env, 3)
    saved = get_sim_state(env)
    dist = TaskDistance(env)
    step_n(env, 5, seed=1)
    after = dist.features()
    set_sim_state(env, saved)
    step_n(env, 5, seed=1)
    np.testing.assert_allclose(dist.features(), after)
    env.close()


def test_protocol_env_uses_its_own_state_methods():
    env = gym.make("wm/DMCPointMassEasy-v0")
    env.reset(seed=0)
    assert state_kind(env) == "protocol"
    np.testing.assert_array_equal(get_sim_state(env), env.unwrapped.get_sim_state())
    env.close()


def test_uncopyable_simulator_error_names_attribute_and_fix():
    env = gym.make(TOY, unpicklable=True)
    env.reset(seed=0)
    with pytest.raises(SimStateError, match=r"'world'.*get_sim_state\(\).*set_sim_state"):
        get_sim_state(env)


def test_distance_uses_body_positions_in_metres_and_checks_names():
    env = make_gym_env("Reacher-v5", image_size=32)
    env.reset(seed=0)
    dist = TaskDistance(env, DistanceConfig(bodies=["fingertip"]))
    assert (
        dist.unit == "m" and dist.threshold == 0.05 and "fingertip" in dist.describe()["distance"]
    )
    before = dist.features()
    step_n(env, 10)
    moved = dist(dist.features(), before)
    assert 0 < moved < 0.25  # the fingertip stays within the 0.21 m arm's reach
    with pytest.raises(ValueError, match="not a body"):
        TaskDistance(env, DistanceConfig(bodies=["gripper"]))
    env.close()


def test_distance_user_callable_and_labelled_fallback():
    env = make_gym_env(TOY)
    env.reset(seed=0)
    user = TaskDistance(env, DistanceConfig(fn="tests.toy_point_env:position", threshold=0.02))
    assert user.kind == "user" and user.threshold == 0.02
    np.testing.assert_allclose(user.features(), env.unwrapped.pos[None])
    assert "mixed units" in TaskDistance(env).label
    pend = make_gym_env("Pendulum-v1")
    pend.reset(seed=0)
    tip = TaskDistance(pend).features()
    assert np.linalg.norm(tip) == pytest.approx(1.0)  # 1 m pole
    env.close()
    pend.close()


@pytest.mark.parametrize("env_id", ["Reacher-v5", "Pendulum-v1"])
def test_state_oracle_is_pure_and_prefers_plans_that_reach(env_id):
    env = ReplayGoal(make_gym_env(env_id, image_size=32), steps=4, policy="smooth")
    env.reset(seed=5)
    start = np.asarray(get_sim_state(env), np.float64)
    rng = np.random.default_rng(0)
    plans = rng.uniform(-1, 1, (32, 4, 7))
    cost = oracle_cost_fn(env)
    c1, c2 = cost(plans), cost(plans)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(np.asarray(get_sim_state(env), np.float64), start)
    # The replayed behaviour actions themselves get (back) to the goal: cost ~ 0 for them.
    policy = make_policy("smooth", env, seed=5 + env.seed_offset)
    obs, info = env.reset(seed=5)
    replay = np.stack([policy(obs, info) for _ in range(4)])[None]
    assert cost(replay)[0] < 1e-6 < c1.min()
    env.close()


def test_oracle_without_goal_state_says_which_option_to_set():
    env = make_gym_env("Reacher-v5", image_size=32)
    with pytest.raises(TypeError, match="replay_goal_steps"):
        oracle_cost_fn(env)
    env.close()


def test_generic_oracle_cost_drops_padded_action_dims_and_nan():
    env = ReplayGoal(make_gym_env("Reacher-v5", image_size=32), steps=2)
    env.reset(seed=0)
    plans = np.zeros((2, 3, 7))
    plans[1, :, 2:] = 5.0  # padded dims: ignored
    plans[1, 0, 0] = np.nan  # NaN counts as 0
    goal, dist = env.goal_features, env.task_distance
    c = state_oracle_cost(env, plans, dist, goal)
    assert c[0] == pytest.approx(c[1])
    env.close()


def test_policies_for_foreign_envs():
    env = make_gym_env("Pendulum-v1")
    obs, info = env.reset(seed=0)
    smooth = make_policy("smooth", env, seed=0)
    acts = np.stack([smooth(obs, info) for _ in range(50)])
    assert np.all(acts >= env.action_space.low) and np.all(acts <= env.action_space.high)
    assert np.corrcoef(acts[:-1, 0], acts[1:, 0])[0, 1] > 0.5  # temporally correlated
    user = make_policy("tests.toy_point_env:hold_still", env, seed=0)
    assert not np.any(user(obs, info))
    with pytest.raises(ValueError, match="experts exist for wm/PandaReach-v0"):
        make_policy("expert", env)
    env.close()


def test_module_id_form_imports_the_registering_package():
    env = make_gym_env(TOY, image_size=16)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (16, 16, 3)
    assert task_name(TOY) == "toypoint_v0"
    with pytest.raises(ValueError, match="foreign"):
        GymEnvEntry(id="wm/PandaReach-v0")
    env.close()
