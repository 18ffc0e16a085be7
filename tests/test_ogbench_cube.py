"""wm/OGBenchCube-v0: fast frames stay close to OGBench's, state round trips, OGBench oracles.

The generic checks (Gymnasium checker, shapes, determinism, oracle_cost vs execution, the
expert reaching the goal) run for this env in tests/test_envs.py through envs.ENV_IDS.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs  # noqa: F401  (registers wm/*)
from envs.common.experts import make_policy

ENV_ID = "wm/OGBenchCube-v0"


@pytest.fixture(scope="module")
def env() -> gym.Env:
    e = gym.make(ENV_ID)
    yield e
    e.close()


def test_fast_frames_stay_close_to_ogbench_frames() -> None:
    """Same states drawn both ways: the cube lands on the same pixels, colours stay close."""
    fast, orig = gym.make(ENV_ID), gym.make(ENV_ID, fast_render=False)
    obs_f, _ = fast.reset(seed=5)
    obs_o, _ = orig.reset(seed=5)
    actions = np.random.default_rng(0).uniform(-1, 1, (4, 7))
    for a in actions:
        obs_f, *_ = fast.step(a)
        obs_o, *_ = orig.step(a)
    np.testing.assert_array_equal(obs_f["state"], obs_o["state"])  # same physics
    diff = np.abs(obs_f["pixels"].astype(int) - obs_o["pixels"].astype(int))
    assert diff.mean() < 8.0, f"mean |fast - original| = {diff.mean():.1f} / 255"

    def red(p: np.ndarray) -> np.ndarray:  # the cube is the only saturated red in the scene
        return (p[..., 0] > 150) & (p[..., 1] < 110)

    centres = [np.argwhere(red(o["pixels"])).mean(axis=0) for o in (obs_f, obs_o)]  # (row, col)
    assert np.linalg.norm(centres[0] - centres[1]) < 1.0  # px (no multisampling: edges alias)
    fast.close()
    orig.close()


def test_action_padding_and_nan(env: gym.Env) -> None:
    np.testing.assert_array_equal(env.action_space.high, [1, 1, 1, 1, 1, 0, 0])
    env.reset(seed=0)
    obs, *_ = env.step(np.full(7, np.nan, np.float32))  # NaN means "no move"
    assert np.all(np.isfinite(obs["state"]))
    assert env.unwrapped.control_hz == pytest.approx(20.0)


def test_sim_state_round_trip_restores_frames(env: gym.Env) -> None:
    obs, _ = env.reset(seed=2)
    base = env.unwrapped
    saved = base.get_sim_state()
    for _ in range(3):
        env.step(env.action_space.sample())
    base.set_sim_state(saved)
    np.testing.assert_array_equal(base.render(), obs["pixels"])
    with pytest.raises(ValueError, match="sim state must be"):
        base.set_sim_state(saved[:-1])


def test_state_goal_distance_is_ogbench_success_test(env: gym.Env) -> None:
    """protocol=dataset scores the cube against the goal frame's cube with OGBench's 4 cm."""
    from envs.common.distance import TaskDistance
    from envs.common.oracle import state_oracle_cost

    env.reset(seed=4)
    dist = TaskDistance(env)
    assert dist.threshold == pytest.approx(0.04) and "task_positions" in dist.describe()["distance"]
    goal = dist.features() + [0.0, 0.03, 0.0]  # the cube 3 cm away: inside OGBench's radius
    costs = state_oracle_cost(env, np.zeros((2, 2, 7)), dist, goal)  # fast path, no frames
    assert costs == pytest.approx([0.03, 0.03], abs=5e-3)
    frame = env.unwrapped.render()
    state_oracle_cost(env, np.ones((1, 3, 7)), dist, goal)
    np.testing.assert_array_equal(env.unwrapped.render(), frame)  # live state untouched


@pytest.mark.parametrize("name", ["ogbench_plan", "ogbench_markov"])
def test_ogbench_oracles_solve_and_chain_tasks(env: gym.Env, name: str) -> None:
    """Play data: the oracle reaches the target, then a new target is drawn (chained tasks)."""
    obs, info = env.reset(seed=7)
    first_target = env.unwrapped.target_pos()
    policy = make_policy(name, env, seed=7)
    hit = None
    for t in range(120):
        obs, _, _, _, info = env.step(policy(obs, info))
        hit = t if hit is None and info["success"] else hit
    assert hit is not None, f"{name} never reached its target"
    assert not np.allclose(env.unwrapped.target_pos(), first_target)  # a new task started


def test_oracle_policy_is_seeded_and_leaves_global_rng_alone(env: gym.Env) -> None:
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=1)
        np.random.seed(0)
        policy = make_policy("ogbench_plan", env, noise=0.1, seed=3)
        runs.append([policy(obs, info) for _ in range(3)])
        assert np.random.random() == np.random.RandomState(0).random()
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="OGBenchCube"):
        make_policy("ogbench_plan", gym.make("wm/DMCReacherEasy-v0"))


def _yaw_quat(degrees: float) -> np.ndarray:
    half = np.deg2rad(degrees) / 2
    return np.array([np.cos(half), 0.0, 0.0, np.sin(half)])  # (w, x, y, z) about world z


def _turned(degrees: float, quat: np.ndarray) -> np.ndarray:
    """`quat` turned by `degrees` about the world's vertical."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, _yaw_quat(degrees), np.asarray(quat, np.float64))
    return out


def test_cube_yaw_error_is_modulo_the_quarter_turn() -> None:
    """A quarter turn looks the same; errors fold into [0, 45] degrees, across 0 / 360 too,
    and a cube tipped onto another face compares by its heading."""
    from envs.ogbench.cube import cube_yaw_error

    def err(a: float, b: float, base: np.ndarray = _yaw_quat(0)) -> float:
        return np.rad2deg(cube_yaw_error(_turned(a, base), _turned(b, base)))

    for turn in (0, 90, 180, 270, -90, 360):
        assert err(turn, 0) == pytest.approx(0, abs=1e-6)
    for a, b, want in [(10, 0, 10), (80, 0, 10), (100, 0, 10), (45, 0, 45), (359, 1, 2),
                       (30, 17, 13), (-14, 0, 14), (200, 5, 15)]:  # fmt: skip
        assert err(a, b) == pytest.approx(want, abs=1e-6), (a, b)
    tipped = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0])  # 90 deg about x
    assert err(20, 0, tipped) == pytest.approx(20, abs=1e-6)
    assert np.rad2deg(cube_yaw_error(_turned(20, tipped), _yaw_quat(0))) == pytest.approx(20)


def test_cube_pose_error_reads_a_recorded_state_and_leaves_the_live_one(env: gym.Env) -> None:
    env.reset(seed=2)
    base = env.unwrapped
    live = base.get_sim_state()
    pos, quat = base.cube_pose()
    q = base.model.joint("object_joint_0").qposadr[0]
    base.data.qpos[q : q + 3] = pos + [0.02, 0.0, 0.0]
    base.data.qpos[q + 3 : q + 7] = _turned(100, quat)  # 10 degrees modulo a quarter turn
    recorded = base.get_sim_state()
    base.set_sim_state(live)
    metres, yaw = base.cube_pose_error(recorded)
    assert metres == pytest.approx(0.02) and np.rad2deg(yaw) == pytest.approx(10, abs=1e-4)
    np.testing.assert_array_equal(base.get_sim_state(), live)
    assert base.cube_pose_error(live) == pytest.approx((0.0, 0.0), abs=1e-9)
