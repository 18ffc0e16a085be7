"""gym-pusht's Push-T from the CLI's point of view: its own goal and success, exact state
restore through its hooks, recorded states for protocol=dataset, replay goals, the oracle, the
DINO-WM / LeWM goal-state test, and the scripted pusher (issue 25, frictions 1 and 3); the
anchors' relative actions (pusht/PushTRelative-v0) and the contract that tells the two
interfaces apart (issue 30)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from agent.replay import ReplayGoal  # noqa: E402
from envs.collect.rollout import dataset_root_attrs, record_episode  # noqa: E402
from envs.common.contract import NATIVE_ACTIONS, EnvContract  # noqa: E402
from envs.common.experts import make_policy  # noqa: E402
from envs.common.oracle import state_oracle_cost  # noqa: E402
from envs.common.sim_state import get_sim_state, set_sim_state, state_kind, storable  # noqa: E402
from envs.data import open_dataset
from envs.data.hdf5 import merge_parts, write_episode_part  # noqa: E402
from envs.foreign.make import make_gym_env  # noqa: E402
from envs.foreign.pusht import goal_distance, part_distances  # noqa: E402
from envs.goals.dataset_goal import DatasetGoal  # noqa: E402
from envs.goals.goal_state import distance_info  # noqa: E402

PUSHT = "gym_pusht:gym_pusht/PushT-v0"
RELATIVE = "pusht/PushTRelative-v0"


def make(max_steps: int = 0, env_id: str = PUSHT):
    return make_gym_env(env_id, image_size=32, max_episode_steps=max_steps)


def run(env, actions) -> list[np.ndarray]:
    return [np.asarray(env.step(a)[0]["state"]).copy() for a in actions]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Two 60-step episodes of the noisy scripted pusher, with simulator states."""
    out = tmp_path_factory.mktemp("pusht") / "pusht.h5"
    env = make(max_steps=60)
    for i, seed in enumerate((3, 4)):
        ep = record_episode(env, make_policy("expert", env, noise=0.02, seed=seed), seed)
        write_episode_part(out.parent / "parts", i, ep)
    attrs = dataset_root_attrs("gym_pusht/PushT-v0", {"image_size": 32}, env, {"name": "expert"})
    merge_parts(out.parent / "parts", out, attrs)
    env.close()
    return out


def test_own_task_has_a_goal_image_success_and_control_rate():
    env = make()
    obs, info = env.reset(seed=0)
    assert info["goal_pixels"].shape == (32, 32, 3) and obs["pixels"].shape == (32, 32, 3)
    assert not np.array_equal(info["goal_pixels"], obs["pixels"])  # the T drawn on the target
    assert 0.0 <= info["distance"] <= 1.0 and info["success"] is False  # 1 - coverage
    assert env.control_hz == 10.0  # its own control_hz, not 1 / dt (the 0.01 s physics step)
    assert "coverage" in distance_info(env)["distance"]
    env.close()


def test_state_restores_exactly_and_replays_deterministically():
    env = make()
    env.reset(seed=1)
    assert state_kind(env) == "hooks" and storable(env)
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high, (8, 7))
    run(env, actions[:3])
    saved = get_sim_state(env)
    live = run(env, actions[3:])
    set_sim_state(env, saved)
    np.testing.assert_array_equal(get_sim_state(env), saved)  # bit-identical read-back
    replay = run(env, actions[3:])
    set_sim_state(env, saved)
    np.testing.assert_array_equal(run(env, actions[3:]), replay)  # every restore, same future
    # The live run had pymunk's contact cache; a restore starts without it: sub-pixel apart.
    np.testing.assert_allclose(live, replay, atol=1.0)
    env.close()


def test_step_dynamics_equals_the_env_step():
    from envs.foreign.pusht import step_dynamics

    env = make()
    env.reset(seed=2)
    base = env.unwrapped
    actions = np.random.default_rng(1).uniform(0, 512, (6, 2)).astype(np.float32)
    saved = get_sim_state(env)
    for a in actions:
        base.step(a)
    stepped = get_sim_state(env)
    set_sim_state(env, saved)
    for a in actions:
        step_dynamics(base, a)
    np.testing.assert_array_equal(get_sim_state(env), stepped)
    env.close()


def test_goal_state_test_is_dino_wm_and_lewm_eval_state():
    goal = np.array([[100.0, 100.0, 0.0], [256.0, 256.0, 0.1]])
    near = goal + [[10.0, 0.0, 0.0], [0.0, 10.0, np.pi / 10]]  # 14 px, 18 degrees
    assert goal_distance(near, goal) < 1.0
    far_angle = goal + [[0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 8]]  # 22.5 degrees
    assert goal_distance(far_angle, goal) > 1.0
    wrapped = goal + [[0.0, 0.0, 0.0], [0.0, 0.0, 2 * np.pi - 0.05]]  # a full turn is no error
    assert goal_distance(wrapped, goal) < 1.0
    agent_only = goal + [[25.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # the agent is part of their test
    assert goal_distance(agent_only, goal) > 1.0
    np.testing.assert_allclose(part_distances(agent_only, goal), [25 / 20, 0.0])


def test_collect_records_states_and_dataset_goals_replay(recorded):
    episode = open_dataset(recorded)[0]
    assert episode.sim_states is not None and episode.sim_states.shape[1] == 12
    env = DatasetGoal(make(), recorded, offset=10)
    obs, info = env.reset(seed=2)
    index, start = env.start
    episode = open_dataset(recorded)[index]
    assert info["goal_pixels"].shape == (32, 32, 3)
    np.testing.assert_array_equal(obs["pixels"], episode.pixels[start])
    assert "DINO-WM" in env.get_wrapper_attr("task_distance").label
    assert env.movable_parts().tolist() == [True, True]  # agent and block both move
    # The recorded actions lead (nearly: pymunk's contact cache) to the recorded goal.
    for action in episode.actions[start : start + 10]:
        _, _, terminated, _, info = env.step(action)
    assert info["success"] and info["distance"] < 0.5 and not terminated
    env.close()


def test_oracle_replays_plans_from_the_recorded_state(recorded):
    env = DatasetGoal(make(), recorded, offset=10)
    env.reset(seed=2)
    index, start = env.start
    recorded_plan = open_dataset(recorded)[index].actions[start : start + 10]
    hold = np.full_like(recorded_plan, 256.0)  # park at the centre
    plans = np.stack([recorded_plan, hold])  # (S=2, H=10, A=7)
    before = get_sim_state(env)
    dist = env.get_wrapper_attr("task_distance")
    cost = state_oracle_cost(env, plans, dist, env.get_wrapper_attr("goal_features"))
    assert cost[0] < 0.5 < cost[1]
    np.testing.assert_array_equal(get_sim_state(env), before)  # the live env is untouched
    env.close()


def test_replay_goals_work_on_pusht():
    env = ReplayGoal(make(), steps=5)
    obs, info = env.reset(seed=0)
    assert info["goal_pixels"].shape == (32, 32, 3) and np.isfinite(info["distance"])
    env.close()


def test_scripted_pusher_solves_the_own_task():
    env = make(max_steps=200)
    obs, info = env.reset(seed=0)
    policy = make_policy("expert", env, seed=0)
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(policy(obs, info))
        if terminated or truncated:
            break
    assert info["success"], f"coverage {1 - info['distance']:.2f}"
    env.close()


def test_a_nan_pose_is_refused_and_a_missing_last_action_is_not(recorded, tmp_path):
    """Issue 32 item 4: a NaN pose reached shapely (GEOSException) through pusht.set_state;
    now it is refused by name, in a dataset with the file, episode and step. The NaN last
    action of frame 0 (no action yet) stays what it is."""
    import shutil

    import h5py

    from envs.data.episode import DatasetError

    env = make()
    env.reset(seed=0)
    state = get_sim_state(env)
    assert np.isnan(state[10:]).all()  # no action yet: by design
    set_sim_state(env, state)  # accepted
    state[6] = np.nan
    with pytest.raises(ValueError, match=r"Push-T state has block_angle=nan"):
        set_sim_state(env, state)
    env.close()
    bad = Path(shutil.copy(recorded, tmp_path / "pusht.h5"))
    with h5py.File(bad, "r+") as f:
        del f["data"].attrs["content_sha256"]  # as another tool writes it
        for name in f["data"]:
            f[f"data/{name}/states"][0, 4] = np.nan  # block_x of every first frame
    with pytest.raises(DatasetError, match=r"pusht.h5: demo_\d: states at step 0: .*block_x=nan"):
        DatasetGoal(make(), bad, offset=10).reset(seed=0)


def test_exports_to_lerobot_and_reads_back(recorded, tmp_path):
    """Issue 32 item 10: frame 0's simulator state is NaN by design (no last action); the
    LeRobot writer took it and the read-back refused it, leaving the directory. Both formats
    now store NaN as "not known at this frame" and read it back the same."""
    from envs.data.lerobot.convert import export_hdf5

    out = export_hdf5(recorded, tmp_path / "pusht_lerobot")
    with open_dataset(recorded) as a, open_dataset(out) as b:
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.sim_states, y.sim_states)  # NaN where NaN
            np.testing.assert_array_equal(x.actions, y.actions)


def test_relative_action_moves_the_target_by_action_scale_from_the_agent():
    env = make(env_id=RELATIVE)
    env.reset(seed=0)
    base = env.unwrapped
    assert base.action_scale == 100.0
    np.testing.assert_array_equal(env.action_space.high, [1, 1, 0, 0, 0, 0, 0])  # padded to 7
    agent = np.array(base.agent.position)
    env.step(np.array([0.5, -0.2, 0, 0, 0, 0, 0], np.float32))
    np.testing.assert_allclose(base._last_action, agent + [50.0, -20.0], atol=1e-4)  # PD target
    # Beyond [-1, 1] is clipped, and so is a target outside the 512 px window.
    agent = np.array(base.agent.position)
    np.testing.assert_allclose(base.absolute_target([3.0, 0.0]), agent + [100.0, 0.0])
    state = get_sim_state(env)
    state[0:2] = [480.0, 30.0]  # the agent near a corner
    set_sim_state(env, state)
    np.testing.assert_allclose(base.absolute_target([1.0, -1.0]), [512.0, 0.0])
    env.close()


def test_relative_state_round_trips_and_step_dynamics_equals_step():
    from envs.foreign.pusht import step_dynamics

    env = make(env_id=RELATIVE)
    env.reset(seed=2)
    assert state_kind(env) == "hooks" and storable(env)
    base = env.unwrapped
    actions = np.random.default_rng(1).uniform(-1, 1, (6, 2)).astype(np.float32)
    saved = get_sim_state(env)
    for a in actions:
        base.step(a)
    stepped = get_sim_state(env)
    set_sim_state(env, saved)
    np.testing.assert_array_equal(get_sim_state(env), saved)  # bit-identical read-back
    for a in actions:  # what the oracle steps: the same relative actions, the same physics
        step_dynamics(base, a)
    np.testing.assert_array_equal(get_sim_state(env), stepped)
    env.close()


def test_scripted_pusher_solves_episodes_with_relative_actions():
    env = make(max_steps=200, env_id=RELATIVE)
    for seed in (3, 10):  # solved in 167 and 123 steps; the pusher is capped at 25 px a step
        obs, info = env.reset(seed=seed)
        policy = make_policy("expert", env, seed=seed)
        for _ in range(200):
            action = policy(obs, info)
            assert np.abs(action[:2]).max() <= 0.25 + 1e-6 and not action[2:].any()
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        assert info["success"], f"seed {seed}: coverage {1 - info['distance']:.2f}"
    env.close()


def test_contract_records_the_action_interface_and_refuses_a_mismatch(tmp_path):
    absolute, relative = make(), make(env_id=RELATIVE)
    trained, driven = EnvContract.from_env(absolute), EnvContract.from_env(relative)
    assert (trained.action_interface, driven.action_interface) == (NATIVE_ACTIONS, "relative:100")
    for model, env in ((trained, driven), (driven, trained)):
        with pytest.raises(ValueError, match="action_interface mismatch") as err:
            model.check_compatible(env)
        assert "=native" in str(err.value) and "=relative:100" in str(err.value)  # one line
        assert "\n" not in str(err.value)
    driven.check_compatible(EnvContract.from_env(relative))  # the same interface passes
    assert trained.combine(driven) is None  # datasets of both never train one model
    # Contracts written before the field (checkpoints, dataset stamps) were gym-pusht's own.
    old = {k: v for k, v in trained.to_dict().items() if k != "action_interface"}
    assert EnvContract.from_dict(old).action_interface == NATIVE_ACTIONS
    # A dataset recorded in the relative env says so.
    attrs = dataset_root_attrs("pusht/PushTRelative-v0", {"image_size": 32}, relative, {})
    assert EnvContract.from_dataset_attrs(attrs).action_interface == "relative:100"
    absolute.close()
    relative.close()
