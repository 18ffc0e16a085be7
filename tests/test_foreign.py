"""Foreign Gymnasium envs: render size at make time, sim-state save/restore, task distance with
units, the generic oracle, behaviour policies and the errors that name the fix."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the wm/* ids)
from agent.baselines import oracle_cost_fn
from agent.evaluate import summarize
from agent.rollout import EpisodeResult
from agent.stats import wilson_interval
from envs.collect.app import collect, warn_without_sim_states
from envs.collect.config import CollectConfig, PolicyConfig
from envs.collect.rollout import dataset_root_attrs, record_episode
from envs.common.distance import DistanceConfig, TaskDistance
from envs.common.experts import make_policy
from envs.common.oracle import state_oracle_cost
from envs.common.sim_state import (
    SimStateError,
    get_sim_state,
    set_sim_state,
    state_kind,
    storable,
)
from envs.data.hdf5 import merge_parts, write_episode_part
from envs.foreign.adapter import PixelStateAdapter
from envs.foreign.env_hooks import EnvHooks, register_env_hooks
from envs.foreign.make import GymEnvEntry, make_gym_env, takes_render_size, task_name
from envs.goals.dataset_goal import DatasetGoal
from envs.goals.replay_goal import ReplayGoal
from tests.toy_point_env import ToyPointEnv

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
    with pytest.raises(TypeError, match="protocol=replay"):
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


class LockedPoint(ToyPointEnv):
    """The toy point with an uncopyable handle: only hooks can save its state."""

    def __init__(self) -> None:
        super().__init__(unpicklable=True)


def test_env_hooks_plug_in_a_simulator_deepcopy_cannot_save():
    register_env_hooks(
        LockedPoint,
        EnvHooks(
            get_state=lambda base: base.pos.copy(),
            set_state=lambda base, s: setattr(base, "pos", np.array(s)),
        ),
    )
    env = PixelStateAdapter(LockedPoint(), image_size=16)
    env.reset(seed=0)
    assert state_kind(env) == "hooks" and storable(env)
    saved = get_sim_state(env)
    step_n(env, 3)
    set_sim_state(env, saved)
    np.testing.assert_array_equal(env.unwrapped.pos, saved)
    with pytest.raises(ValueError, match="both get_state and set_state"):
        register_env_hooks("x.Y", EnvHooks(get_state=lambda base: base.pos))


def test_collect_warns_once_when_no_state_can_be_recorded(tmp_path, capsys):
    assert not warn_without_sim_states(make_gym_env("Reacher-v5", image_size=16), "Reacher-v5")
    assert capsys.readouterr().err == ""
    cfg = CollectConfig(
        env=GymEnvEntry(id="tests.toy_point_env:ToyPoint-v0", kwargs={"unpicklable": True}),
        policy=PolicyConfig(name="random"),
        num_episodes=2,
        num_workers=0,
        output=str(tmp_path / "toy.h5"),
    )
    collect(cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1, lines  # once per run, not once per episode
    assert "ToyPoint-v0" in lines[0] and "protocol=dataset" in lines[0] and "oracle" in lines[0]


def test_moving_subset_ignores_bodies_that_never_move(tmp_path):
    """Reacher-v5's target body is static within an episode: before, no episode counted as
    moving (every tracked body had to move); now the target is left out."""
    out = tmp_path / "reacher.h5"
    env = make_gym_env("Reacher-v5", image_size=16, max_episode_steps=30)
    for i, seed in enumerate((0, 1)):
        write_episode_part(
            tmp_path / "parts", i, record_episode(env, make_policy("smooth", env, seed=seed), seed)
        )
    merge_parts(
        tmp_path / "parts", out, dataset_root_attrs("Reacher-v5", {}, env, {"name": "smooth"})
    )
    goals = DatasetGoal(make_gym_env("Reacher-v5", image_size=16), out, offset=10)
    label = goals.task_distance.label
    movable = goals.movable_parts()
    assert "'target'" in label and movable.tolist() == [True, True, True, False]  # target last
    flags = [goals.reset(seed=s)[1]["every_position_moves"] for s in range(8)]
    assert any(flags)
    goals.close()


def test_eval_summary_carries_wilson_intervals():
    results = [EpisodeResult(i, i < 8, i < 9, 0.0, 1) for i in range(10)]
    summary = summarize(results, wall_s=1.0)
    assert summary["success_rate"] == 0.8
    assert summary["success_rate_ci95"] == pytest.approx(list(wilson_interval(8, 10)))
    assert summary["success_rate_ci95"] == pytest.approx([0.490, 0.943], abs=1e-3)
    assert summary["success_any_rate_ci95"] == pytest.approx(list(wilson_interval(9, 10)))


MESH_XML = """
<mujoco>
  <asset>
    <mesh name="tet" vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"/>
    <material name="red" rgba="1 0 0 1"/>
  </asset>
  <worldbody>
    <body name="link">
      <geom type="mesh" mesh="tet" material="red" contype="0" conaffinity="0" group="2"/>
      <geom type="capsule" size="0.02 0.05" group="3"/>
    </body>
    <body name="ornament" pos="0.3 0 0">
      <geom type="mesh" mesh="tet" contype="0" conaffinity="0" group="2"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_simple_geoms_draw_collision_primitives_and_boxes_for_lone_meshes():
    import mujoco

    from envs.foreign.mujoco_render import HIDDEN_GROUP, simple_geoms_model

    model = mujoco.MjModel.from_xml_string(MESH_XML)
    fast = simple_geoms_model(model)
    visual_mesh, capsule, ornament = 0, 1, 2
    assert fast.geom_group[visual_mesh] == HIDDEN_GROUP  # hidden: the capsule stands in
    assert fast.geom_group[capsule] <= 2 and fast.geom_matid[capsule] == -1
    np.testing.assert_allclose(fast.geom_rgba[capsule], [1, 0, 0, 1])  # the mesh's colour
    assert fast.geom_type[ornament] == mujoco.mjtGeom.mjGEOM_BOX  # no collider: a box
    assert model.geom_type[ornament] == mujoco.mjtGeom.mjGEOM_MESH  # the original is untouched


def test_simple_geoms_leave_the_physics_model_alone():
    env = make_gym_env("Reacher-v5", image_size=32, simple_geoms=True)
    groups = env.unwrapped.model.geom_group.copy()
    obs, _ = env.reset(seed=0)
    env.step(np.zeros(7, np.float32))
    assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].any()
    assert env.unwrapped.mujoco_renderer.model is not env.unwrapped.model
    np.testing.assert_array_equal(env.unwrapped.model.geom_group, groups)
    env.close()


def test_free_camera_fit_frames_the_scene():
    from envs.foreign.mujoco_render import fit_distance

    square = np.array([[x, y, 0.0] for x in (-1, 1) for y in (-1, 1)])
    model = SimpleNamespace(vis=SimpleNamespace(global_=SimpleNamespace(fovy=90.0)))
    assert fit_distance(square, 90.0, -90.0, model) == pytest.approx(1.05)  # top-down
    default = make_gym_env("Reacher-v5", image_size=32)
    fitted = make_gym_env("Reacher-v5", image_size=32, free_camera={"fit": True, "elevation": -90})
    arena = [_border_fraction(env.reset(seed=0)[0]["pixels"]) for env in (default, fitted)]
    assert fitted.unwrapped.mujoco_renderer.viewer.cam.elevation == -90
    assert arena[1] > 0.85 and arena[1] > arena[0] + 0.1  # the walls span (nearly) the frame
    with pytest.raises(ValueError, match="free_camera"):
        make_gym_env("Reacher-v5", camera_id=0, free_camera={"fit": True})
    with pytest.raises(ValueError, match="unknown keys"):
        make_gym_env("Reacher-v5", free_camera={"zoom": 2})
    entry = GymEnvEntry(id="Reacher-v5", free_camera={"fit": True, "elevation": -90})
    assert entry.make_kwargs()["free_camera"] == {"fit": True, "elevation": -90.0}
    assert "free_camera" not in GymEnvEntry(id="Reacher-v5").make_kwargs()  # old signatures
    with pytest.raises(ValueError, match="distance"):
        GymEnvEntry(id="Reacher-v5", free_camera={"distance": -1.0})
    default.close()
    fitted.close()


def _border_fraction(frame: np.ndarray) -> float:
    """Width fraction of the frame spanned by the arena walls (Reacher's reddish capsules)."""
    red = (frame[..., 0].astype(int) - frame[..., 1]) > 30  # (H, W)
    cols = np.flatnonzero(red.any(axis=0))
    return (cols.max() - cols.min() + 1) / frame.shape[1] if cols.size else 0.0


def test_an_env_with_its_own_renderer_records_what_was_drawn(tmp_path):
    """Issue 32 item 14c: on an env drawn by its own mujoco.Renderer, fast_render does nothing
    (shadows stay) yet the dataset recorded fast_render: true; and a run refused for
    simple_geoms left an empty .parts/ folder."""
    from envs.data import open_dataset

    own = "tests.toy_point_env:OwnRenderer-v0"
    assert GymEnvEntry(id=own).make_kwargs()["fast_render"] is False
    assert GymEnvEntry(id="Reacher-v5").make_kwargs()["fast_render"] is True
    cfg = CollectConfig(
        env=GymEnvEntry(id=own, image_size=16), policy=PolicyConfig(name="random"),
        num_episodes=1, num_workers=0, output=str(tmp_path / "own.h5"),
    )  # fmt: skip
    with open_dataset(collect(cfg)) as reader:
        assert reader.attrs["env_kwargs"]["fast_render"] is False
    cfg.env.simple_geoms, cfg.output = True, str(tmp_path / "geoms.h5")
    with pytest.raises(ValueError, match="simple_geoms / free_camera need a Gymnasium MujocoEnv"):
        collect(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own.h5"]
