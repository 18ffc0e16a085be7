"""Agent layer: the MPC loop on a tiny world model, baselines, replay goals, eval and demo apps."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import envs  # noqa: F401
from agent.baselines import OracleAgent, RandomAgent
from agent.checkpoint import read_checkpoint
from agent.config import AgentConfig, EnvSection, EvalConfig
from agent.energy import energy_grid, plot_energy
from agent.factory import load_agent, make_agent, make_env
from agent.mpc import MPCAgent
from agent.recommend import set_recommended
from agent.rollout import run_episode
from agent.video import compose_frame
from envs.common.contract import EnvContract
from envs.goals.replay_goal import ReplayGoal
from planners import CEMConfig, make_planner
from tests.test_ros_fakes import NaNWorldModel
from world_model import WorldModelConfig, build_world_model, save_world_model

REPO = Path(__file__).resolve().parent.parent
LOW = np.array([-0.075, -0.075, -0.075, 0, 0, 0, -1], np.float32)
HIGH = -LOW


def reach_contract(**env_kwargs) -> EnvContract:
    env = gym.make("wm/PandaReach-v0", **env_kwargs)
    contract = EnvContract.from_env(env)
    env.close()
    return contract


def tiny_world_model(history: int = 1):
    cfg = WorldModelConfig(
        encoder={"hidden_size": 32, "num_layers": 1, "num_heads": 2, "latent_pool": 2},
        predictor={"embed_dim": 32, "width": 48, "depth": 1, "num_heads": 2},
        history=history,
    )
    return build_world_model(cfg, env_contract=reach_contract())


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_world_model(tiny_world_model(), path)
    return path


def small_planner(**kw):
    cfg = CEMConfig(num_samples=16, iterations=2, horizon=2, num_elites=4, **kw)
    return make_planner(cfg, LOW, HIGH)


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)


def test_mpc_agent_acts_inside_bounds_and_records_latency():
    agent = MPCAgent(tiny_world_model(), small_planner(), LOW, HIGH, AgentConfig(execute_steps=2))
    with pytest.raises(RuntimeError, match="set_goal"):
        agent.act(image(0), np.zeros(7))
    agent.set_goal(image(1))
    a1 = agent.act(image(0), np.zeros(7, np.float32))
    assert agent.stats.replanned and agent.stats.plan_ms > 0 and np.isfinite(agent.stats.energy)
    a2 = agent.act(image(2), np.zeros(7, np.float32))
    assert not agent.stats.replanned  # second action of the same plan (execute_steps=2)
    for a in (a1, a2):
        assert a.shape == (7,) and np.all(a >= LOW) and np.all(a <= HIGH)
        assert np.all(a[3:6] == 0)  # frozen rotation is never commanded


def test_mpc_agent_uses_history_as_context():
    agent = MPCAgent(tiny_world_model(history=3), small_planner(), LOW, HIGH)
    agent.set_goal(image(1))
    for t in range(4):
        agent.act(image(t), np.full(7, 0.1 * t, np.float32))
    assert len(agent._history) == 3
    assert agent._history[0][2] is not None  # the action that led to each kept frame


def test_nan_energies_hold_still():
    low = np.array([-0.075, -0.075, 0.01, 0, 0, 0, -1], np.float32)  # zero outside dz's range
    high = np.array([0.075, 0.075, 0.075, 0, 0, 0, 1], np.float32)
    planner = make_planner(
        CEMConfig(num_samples=8, iterations=2, horizon=1, num_elites=2), low, high
    )
    agent = MPCAgent(NaNWorldModel(), planner, low, high)
    agent.set_goal(image(0))
    a = agent.act(image(1), np.zeros(7))
    assert np.all(np.isfinite(a)) and np.all(a >= low) and np.all(a <= high)
    np.testing.assert_allclose(a, np.clip(0, low, high))


def test_subgoals_switch_after_hold_steps():
    agent = MPCAgent(
        tiny_world_model(), small_planner(), LOW, HIGH, AgentConfig(subgoal_hold_steps=(2,))
    )
    agent.set_goal([image(5), image(6)])
    g0 = agent._current_goal()
    agent.act(image(0), np.zeros(7))
    agent.act(image(0), np.zeros(7))
    assert not torch.equal(agent._current_goal(), g0)
    with pytest.raises(ValueError, match="subgoal_hold_steps"):
        MPCAgent(tiny_world_model(), small_planner(), LOW, HIGH).set_goal([image(1), image(2)])


def test_recommended_settings_are_validated(tiny_checkpoint, tmp_path):
    """Only agent.* / planner.* settings may travel with a checkpoint; the file stays intact."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    before = (checkpoint / "config.json").read_text()
    for bad in ({"env.id": "x"}, {"agent.checkpoint": "elsewhere"}):
        with pytest.raises(ValueError, match="only agent"):
            set_recommended(checkpoint, bad)
    assert (checkpoint / "config.json").read_text() == before
    assert read_checkpoint(checkpoint).recommended == {}
    mode = (checkpoint / "config.json").stat().st_mode
    set_recommended(checkpoint, {"planner.horizon": 3})
    assert read_checkpoint(checkpoint).recommended == {"planner.horizon": 3}
    assert (checkpoint / "config.json").stat().st_mode == mode
    assert load_agent(str(checkpoint)) is not None  # still a loadable checkpoint


def test_agent_config_rejects_bad_values():
    with pytest.raises(ValueError, match="execute_steps"):
        AgentConfig(execute_steps=0)
    with pytest.raises(ValueError, match="energy_reduce"):
        AgentConfig(energy_reduce="mean")


def test_load_agent_from_checkpoint(tiny_checkpoint):
    agent = load_agent(tiny_checkpoint, "mppi", num_samples=8, iterations=1, horizon=1)
    agent.set_goal(image(0))
    a = agent.act(image(1), np.zeros(7))
    assert a.shape == (7,) and np.all(np.abs(a[:3]) <= 0.075)
    assert agent.image_size == 64


def test_load_agent_applies_the_checkpoints_recommended_settings(tiny_checkpoint, tmp_path):
    """The ROS 2 / scripting path plans as wm-eval does: the checkpoint's recommended CEM
    budget and energy unless the caller says otherwise; MPPI takes the settings every planner
    shares (the horizon and sample budget), never CEM's own (elites, momentum)."""
    import shutil

    from agent.recommend import set_recommended

    path = tmp_path / "rec"
    shutil.copytree(tiny_checkpoint, path)
    set_recommended(
        path,
        {"planner.horizon": 3, "planner.num_samples": 24, "planner.momentum": 0.3,
         "agent.energy_reduce": "sum"},
    )  # fmt: skip
    agent = load_agent(path)
    assert (agent.planner.cfg.horizon, agent.planner.cfg.num_samples) == (3, 24)
    assert agent.cfg.energy_reduce == "sum"
    agent = load_agent(path, num_samples=20, num_elites=4)
    assert (agent.planner.cfg.horizon, agent.planner.cfg.num_samples) == (3, 20)
    agent = load_agent(path, "mppi")
    assert (agent.planner.cfg.horizon, agent.planner.cfg.num_samples) == (3, 24)
    assert agent.planner.cfg.momentum == 0.0 and agent.cfg.energy_reduce == "sum"
    plain = load_agent(path, recommended=False)
    assert plain.planner.cfg.horizon != 3 and plain.cfg.energy_reduce == "last"
    with pytest.raises(ValueError, match="no_such_field"):  # refused before it is written
        set_recommended(path, {"agent.no_such_field": 1})


def test_stay_if_better_holds_still_at_the_goal_and_moves_elsewhere(tiny_checkpoint):
    """At the goal image, staying costs 0 (the observed latent is the goal's), which no
    imagined plan beats: the command is exactly zero, and the reported energy is staying's.
    When a plan beats staying the agent plans as usual; without the option it never stops."""
    budget = {"num_samples": 16, "num_elites": 4, "iterations": 2, "horizon": 2}
    stay = load_agent(tiny_checkpoint, agent_cfg=AgentConfig(), **budget)  # on by default
    stay.set_goal(image(0))
    assert np.array_equal(stay.act(image(0), np.zeros(7)), np.zeros(7, np.float32))
    assert stay.stats.energy == 0.0
    stay.reset()
    stay.set_goal(image(0))
    stay.observe(image(1), np.zeros(7))
    assert stay.stay_energy() > 0  # away from the goal, staying costs something
    stay.reset()
    stay.set_goal(image(0))
    stay.stay_energy = lambda: float("inf")  # any plan beats staying: it plans as usual
    plain = load_agent(tiny_checkpoint, agent_cfg=AgentConfig(stay_if_better=False), **budget)
    plain.set_goal(image(0))
    moved = plain.act(image(0), np.zeros(7))
    assert np.abs(moved).max() > 0  # without the option it never stops
    assert np.array_equal(stay.act(image(0), np.zeros(7)), moved)


def test_load_agent_takes_bounds_from_the_checkpoint_contract(tiny_checkpoint):
    agent = load_agent(tiny_checkpoint, num_samples=8, num_elites=2, iterations=1)
    np.testing.assert_allclose(agent.action_high, reach_contract().action_high)
    assert agent.contract == reach_contract()


@pytest.mark.parametrize(
    "env_kwargs, message",
    [
        ({"control_hz": 10.0}, r"control_hz mismatch.*control_hz=5\.0.*control_hz=10\.0"),
        ({"pos_bound": 0.1}, r"action bounds widened in dimension 0.*\[-0\.075, 0\.075\].*0\.1"),
        ({"image_size": 96}, r"image_size mismatch.*image_size=64.*image_size=96"),
    ],
)
def test_load_agent_refuses_an_env_the_checkpoint_was_not_trained_on(
    tiny_checkpoint, env_kwargs, message
):
    env = gym.make("wm/PandaReach-v0", **env_kwargs)
    with pytest.raises(ValueError, match=message):
        load_agent(tiny_checkpoint, env=env)
    env.close()


def test_load_agent_refuses_another_task_and_accepts_narrower_bounds(tiny_checkpoint):
    push = gym.make("wm/PandaPush-v0")
    with pytest.raises(ValueError, match="env_id mismatch.*PandaReach.*PandaPush"):
        load_agent(tiny_checkpoint, env=push)
    push.close()
    narrow = gym.make("wm/PandaReach-v0", pos_bound=0.05)  # the user narrowed it explicitly
    agent = load_agent(tiny_checkpoint, env=narrow, num_samples=8, num_elites=2, iterations=1)
    assert agent.action_high[0] == pytest.approx(0.05)
    agent.set_goal(image(0))
    assert np.abs(agent.act(image(1), np.zeros(7))[:3]).max() <= 0.05 + 1e-7
    narrow.close()
    with pytest.raises(ValueError, match="widen"):  # a planner may narrow, never widen
        load_agent(
            tiny_checkpoint,
            action_low=[-0.2] * 3 + [0] * 3 + [-1],
            action_high=[0.2] * 3 + [0] * 3 + [1],
        )


def test_shipped_checkpoints_carry_their_env_contract():
    from world_model import load_world_model

    shipped = [
        ("reach_lewm", "wm/PandaReach-v0"),
        ("push_lewm", "wm/PandaPush-v0"),
        ("reach1_tiny", "wm/PandaReach-v1"),
    ]
    for name, env_id in shipped:
        contract = load_world_model(REPO / "checkpoints" / name).env_contract
        env = gym.make(env_id)
        contract.check_compatible(EnvContract.from_env(env))  # exact: no narrowing either
        # They predate the camera and physics step in the contract: those are unknown.
        unknown = {"camera_pos": (), "camera_target": (), "camera_fovy": None, "sim_dt": None}
        assert contract == dataclasses.replace(EnvContract.from_env(env), **unknown)
        env.close()


def test_videos_play_at_the_env_control_rate(tmp_path):
    from agent.checkpoint import run_checkpoint
    from agent.evaluate import evaluate

    cfg = EvalConfig(
        env=EnvSection(id="wm/DMCPointMassEasy-v0", max_steps=3),
        agent=AgentConfig(kind="random"),
        planner={"name": "cem"},
        episodes=1,
        videos=1,
    )
    summary = evaluate(cfg, tmp_path, run_checkpoint(cfg), progress=False)
    import imageio.v2 as imageio

    reader = imageio.get_reader(summary["videos"][0])
    assert reader.get_meta_data()["fps"] == pytest.approx(12.5)  # 4 x 0.02 s per action
    reader.close()


def test_energy_landscape_is_one_batched_grid(tiny_checkpoint, tmp_path):
    agent = load_agent(tiny_checkpoint)
    dxs, dys, energies = energy_grid(
        agent, image(0), np.zeros(7), image(1), np.zeros(7), 0.075, resolution=5
    )
    assert energies.shape == (5, 5) and np.all(np.isfinite(energies))
    assert energies.std() > 0  # the action changes the prediction
    png = plot_energy(tmp_path / "e.png", dxs, dys, energies, np.zeros(7))
    assert png.stat().st_size > 1000


def test_energy_landscape_goal_is_one_block_of_the_true_action(monkeypatch, tmp_path):
    """With a model of k-step blocks the grid's candidates are k equal steps, so the goal frame
    is the true action taken k times: the minimum belongs at the white cross."""
    import agent.energy as energy

    class CountSteps(gym.Wrapper):
        steps = 0

        def step(self, action):
            self.steps += 1
            return self.env.step(action)

    class BlockAgent:  # what landscape_for_env reads of an agent, with k = 2
        action_block, trace_imagined = 2, False
        stats = type("Stats", (), {"imagined": [0.2, 0.1]})()

        def reset(self):
            pass

        def set_goal(self, goal):
            pass

        def act(self, pixels, state):
            return np.zeros(7, np.float32)

    seen = {}
    monkeypatch.setattr(energy, "energy_grid", lambda *a: (np.zeros(3), np.zeros(3), np.eye(3)))
    monkeypatch.setattr(energy, "explain_plan", lambda *a: None)  # its own test below
    monkeypatch.setattr(energy, "plot_energy", lambda path, *args: seen.update(args=args) or path)
    env = CountSteps(gym.make("wm/PandaReach-v0"))
    energy.landscape_for_env(BlockAgent(), env, 3, tmp_path / "e.png")
    title = seen["args"][4]  # plot_energy(path, dxs, dys, energies, true_action, title, ...)
    assert env.steps == 2 and "2-step block actions" in title, (env.steps, title)
    env.close()


def test_random_and_expert_baselines_on_reach():
    env = gym.make("wm/PandaReach-v0")
    from agent.baselines import PolicyAgent
    from envs.common.experts import make_policy

    expert = PolicyAgent(make_policy("expert", env), env.action_space.low, env.action_space.high)
    random_agent = RandomAgent(env.action_space.low, env.action_space.high, seed=0)
    r_exp = run_episode(env, expert, seed=3, max_steps=20)
    r_rand = run_episode(env, random_agent, seed=3, max_steps=20)
    assert r_exp.success and r_exp.final_distance < 0.05
    assert r_rand.final_distance > r_exp.final_distance
    env.close()


def test_oracle_plans_on_true_dynamics():
    env = gym.make("wm/PandaReach-v0")
    planner = make_planner(
        CEMConfig(num_samples=32, iterations=2, horizon=1, num_elites=4),
        env.action_space.low,
        env.action_space.high,
    )
    oracle = OracleAgent(env, planner, env.action_space.low, env.action_space.high)
    r = run_episode(env, oracle, seed=4, max_steps=12)
    assert r.success, r.distances
    env.close()


def test_replay_goal_for_dm_control_env():
    env = ReplayGoal(gym.make("wm/DMCPointMassEasy-v0"), steps=5)
    obs, info = env.reset(seed=2)
    assert info["goal_pixels"].shape == obs["pixels"].shape
    assert info["distance"] > 0  # 5 random steps moved the mass
    with pytest.raises(ValueError, match="seed"):
        env.reset()
    env.close()


def test_replay_goal_for_a_plain_gymnasium_id():
    env = make_env("Reacher-v5", {"image_size": 32}, protocol="replay", goal_offset=3)
    obs, info = env.reset(seed=0)
    assert obs["pixels"].shape == (32, 32, 3) and info["goal_pixels"].shape == (32, 32, 3)
    _, _, _, _, info = env.step(np.zeros(7, np.float32))
    assert np.isfinite(info["distance"])
    env.close()


def test_compose_frame_layout():
    frame = compose_frame(image(0), image(1), [3.0, 2.0, 1.5], total_steps=10, size=96)
    assert frame.shape == (96, 288, 3) and frame.dtype == np.uint8


def run_app(module: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_wm_eval_writes_results(tiny_checkpoint, tmp_path):
    """Also: the checkpoint's recommended settings apply, except those given explicitly."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    recommended = {"planner.horizon": 2, "planner.iterations": 5, "agent.energy_reduce": "sum"}
    set_recommended(checkpoint, recommended)
    out = tmp_path / "eval"
    proc = run_app(
        "agent.eval",
        f"agent.checkpoint={checkpoint}",
        "episodes=2",
        "env.max_steps=3",
        "videos=1",
        "planner.num_samples=16",
        "planner.iterations=2",
        f"out_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for key in ("success_rate", "episodes", "mean_final_distance", "plan_ms_p50", "plan_ms_p95"):
        assert key in results
    assert results["episodes"] == 2 and results["plans"] == 6
    used = results["config"]
    assert used["planner"]["horizon"] == 2 and used["agent"]["energy_reduce"] == "sum"
    assert used["planner"]["iterations"] == 2  # the command line wins over the checkpoint
    # At start-up: the plan that runs and the layer of each value not from the config files.
    assert "plans with cem over 2 steps (2 of the 3-step budget), 16 samples x 2" in proc.stdout
    assert "recommended_eval: planner.horizon=2 agent.energy_reduce=sum\n" in proc.stdout
    assert "env.max_steps=3 episodes=2 out_dir=" in proc.stdout  # the command line's
    assert (out / "videos" / "episode_000.mp4").stat().st_size > 1000
    assert (out / "energy.png").exists()


@pytest.mark.slow
def test_wm_eval_rejects_unknown_agent(tmp_path):
    proc = run_app("agent.eval", "agent.kind=telepathy", f"out_dir={tmp_path}")
    assert proc.returncode != 0 and "agent.kind" in proc.stderr


def test_expert_subgoals_restore_the_episode_start():
    from agent.replay import expert_subgoals

    env = gym.make("wm/PandaPickPlace-v0")
    obs, info = env.reset(seed=11)
    goals = expert_subgoals(env, 11, [3, 8])
    assert len(goals) == 3 and all(g.shape == obs["pixels"].shape for g in goals)
    np.testing.assert_array_equal(goals[-1], info["goal_pixels"])
    assert not np.array_equal(goals[0], obs["pixels"])  # the demonstration moved
    again, _ = env.reset(seed=11)
    np.testing.assert_array_equal(again["pixels"], obs["pixels"])
    env.close()


@pytest.mark.slow
def test_wm_demo_reaches_with_the_shipped_checkpoint(tmp_path):
    """The README's main command, on 3 fixed seeds: the shipped model must actually reach."""
    out = tmp_path / "demo"
    proc = run_app("agent.demo", "episodes=3", "videos=1", f"out_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "success rate" in proc.stdout and str(out / "videos") in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["success_rate"] >= 2 / 3, results["per_episode"]
    assert results["mean_final_distance"] < 0.05
    assert (out / "videos" / "episode_000.mp4").exists()


def test_demo_task_selects_env_budget_and_checkpoint():
    """`wm-demo task=push` is the push env, its 40-step budget and the shipped lewm model,
    which then plans with the settings that checkpoint recommends."""
    from hydra import compose, initialize_config_module

    from agent.config import apply_recommended, eval_config, register_configs

    register_configs()
    with initialize_config_module("configs", version_base="1.3"):
        reach = compose("demo")
        push = compose("demo", overrides=["task=pickplace", "env.max_steps=30"])
    assert (reach.env.id, reach.env.max_steps) == ("wm/PandaReach-v1", 20)
    assert reach.agent.checkpoint == "checkpoints/reach1_tiny"  # the best shipped reach model
    assert push.env.id == "wm/PandaPickPlace-v0" and push.env.max_steps == 30
    assert push.agent.checkpoint == "checkpoints/pickplace_lewm"
    recommended = read_checkpoint(REPO / push.agent.checkpoint).recommended
    typed, applied = apply_recommended(eval_config(push), ["task=pickplace"], recommended)
    assert applied["planner.horizon"] == 5
    assert typed.planner.horizon == 5 and typed.agent.energy_reduce == "sum"
    typed, applied = apply_recommended(eval_config(push), ["planner.horizon=1"], recommended)
    assert typed.planner.horizon == 1 and "planner.horizon" not in applied


def test_wm_energy_cli_writes_the_png(tiny_checkpoint, tmp_path):
    from agent.energy import main

    main(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "e.png"), "--seed", "3"])
    assert (tmp_path / "e.png").stat().st_size > 1000


# ----------------------------------------------------------------- issue 32: faults, agent side
def test_goal_images_read_like_observations_or_are_refused():
    """A float goal in [0, 1] was cast to uint8 (a black frame), 300 wrapped to 44 and a 2-D
    array became 64 sub-goals; a goal now reads like act()'s observations or is refused."""
    agent = MPCAgent(tiny_world_model(), small_planner(), LOW, HIGH)
    agent.set_goal(image(1))
    as_uint8 = agent._goals[0]
    agent.set_goal(image(1) / 255.0)
    torch.testing.assert_close(agent._goals[0], as_uint8, atol=1e-5, rtol=0)
    bad = {
        "values in": [image(1) * 1.2, image(1).astype(np.int64) + 100, -(image(1) / 255.0)],
        "finite": [np.full((64, 64, 3), np.nan)],
        r"\(H, W, 3\)": [np.zeros((64, 64)), np.zeros((64, 64, 4), np.uint8), [np.zeros(3)]],
    }
    for words, goals in bad.items():
        for goal in goals:
            with pytest.raises(ValueError, match=words):
                agent.set_goal(goal)
    torch.testing.assert_close(agent._goals[0], as_uint8, atol=1e-5, rtol=0)  # unchanged


def test_a_negative_seed_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^seed=-5: must be >= 0"):
        EvalConfig(planner={"name": "cem"}, seed=-5)


@pytest.mark.parametrize(
    "entry",
    [{"planner.num_samples": "many"}, {"agent.stay_if_better": "yes"}, {"planner.horizon": 0},
     {"planner.bogus": 1}, {"planner.init_std": True}],
)  # fmt: skip
def test_recommended_settings_of_the_wrong_type_are_named(tiny_checkpoint, tmp_path, entry):
    """{"planner.num_samples": "many"} in config.json once failed deep in CEMConfig with
    "'<' not supported between instances of 'str' and 'int'"."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["extra"]["recommended_eval"] = entry
    (checkpoint / "config.json").write_text(json.dumps(config))
    (key,) = entry
    with pytest.raises(ValueError, match=rf"ckpt/config\.json: extra\.recommended_eval.*{key[8:]}"):
        read_checkpoint(checkpoint)


def test_a_checkpoint_path_that_is_a_file_is_named_as_a_file(tiny_checkpoint):
    from world_model import load_world_model

    with pytest.raises(NotADirectoryError, match=r"config\.json is a file"):
        read_checkpoint(tiny_checkpoint / "config.json")
    with pytest.raises(FileNotFoundError, match=r"config\.json is a file, not a world-model"):
        load_world_model(tiny_checkpoint / "config.json")


def test_wm_energy_errors_are_one_line(capsys):
    from agent.energy import main

    with pytest.raises(SystemExit) as done:
        main(["--checkpoint", "/nope"])
    assert done.value.code == 1
    assert capsys.readouterr().err.startswith("wm-energy: error: agent.checkpoint=/nope does not")


def test_model_free_agents_borrow_no_unnamed_checkpoint():
    """The oracle without agent.checkpoint once planned reach_lewm's blocks (k = 2) on any
    env; it takes a checkpoint's blocks and settings only when named or trained on the env."""
    from agent.checkpoint import run_checkpoint

    reach_lewm = str(REPO / "checkpoints" / "reach_lewm")
    cfg = EvalConfig(
        env=EnvSection(id="wm/DMCPointMassEasy-v0"),
        agent=AgentConfig(kind="oracle", checkpoint=reach_lewm),
        planner={"name": "cem"},
    )
    borrowed = run_checkpoint(cfg, named=True)
    assert borrowed.action_block == 2 and borrowed.recommended  # named: the user's choice
    unnamed = run_checkpoint(cfg)
    assert unnamed.action_block == 1 and unnamed.recommended == {}
    env = make_env(cfg.env.id)
    assert make_agent(cfg, env, unnamed).action_block == 1
    env.close()
    for same_env in (
        dataclasses.replace(cfg, env=EnvSection(id="wm/PandaReach-v0")),
        dataclasses.replace(cfg, agent=AgentConfig(kind="learned", checkpoint=reach_lewm)),
    ):
        assert run_checkpoint(same_env).action_block == 2


def test_a_run_parses_config_json_once(monkeypatch):
    """The checkpoint is read once per process (issue 31): `run_checkpoint` parses config.json
    and the model, its head and the env's goal offset all come from that one read."""
    import world_model.checkpoint as stored
    from agent.checkpoint import run_checkpoint
    from agent.factory import env_from_config

    reads = []
    read = stored.read_checkpoint_json
    monkeypatch.setattr(stored, "read_checkpoint_json", lambda d: reads.append(d) or read(d))
    cfg = EvalConfig(
        env=EnvSection(id="wm/PandaPush-v0", protocol="replay"),
        agent=AgentConfig(
            checkpoint=str(REPO / "checkpoints" / "push_lewm"), reachability_weight=0.5
        ),
        planner={"name": "cem", "horizon": 2},
    )
    checkpoint = run_checkpoint(cfg)
    env = env_from_config(cfg, checkpoint)
    agent = make_agent(cfg, env, checkpoint)
    env.close()
    assert agent.reachability is not None  # the head, declared in the same config.json
    assert len(reads) == 1, reads


def test_cfg_job_prints_the_settings_that_run(tiny_checkpoint, tmp_path, capsys):
    """`wm-eval --cfg job` printed eval.yaml's horizon 1 while the checkpoint's recommended 5
    ran (issue 31); it now prints what runs, each value marked with the layer that set it."""
    from agent.eval import cfg_job_overrides, show_settings

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    set_recommended(checkpoint, {"planner.horizon": 2, "planner.iterations": 5})
    argv = ["--cfg", "job", f"agent.checkpoint={checkpoint}", "planner.iterations=3"]
    assert show_settings("eval", "wm-eval", argv)
    shown = capsys.readouterr().out
    assert f"  horizon: 2  # {checkpoint} recommended_eval\n" in shown
    assert "  iterations: 3  # command line\n" in shown
    assert "  num_samples: 256\n" in shown  # the config files' (unmarked)
    assert cfg_job_overrides(["-c", "job", "--resolve", "episodes=2"]) == ["episodes=2"]
    for hydra_s in (["--cfg", "hydra"], ["--cfg", "job", "--package", "env"], ["episodes=2"]):
        assert cfg_job_overrides(hydra_s) is None  # Hydra's own


def test_a_horizon_past_the_budget_is_cut_unless_given():
    """push_lewm recommends 5 blocks of 2 control steps; a 6-step budget plans 3 blocks, and
    a horizon given on the command line stands (with a line saying so)."""
    from agent.settings import resolve

    checkpoint = read_checkpoint(REPO / "checkpoints" / "push_lewm")
    cfg = EvalConfig(env=EnvSection(id="wm/PandaPush-v0", max_steps=6), planner={"name": "cem"})
    settings = resolve(cfg, [], checkpoint)
    assert settings.cfg.planner.horizon == 3 and settings.cfg.planner.num_samples == 128
    note = settings.notes["planner.horizon"]
    assert "plans 10 control steps (blocks of 2), past env.max_steps=6: cut to 3" in note
    given_cfg = dataclasses.replace(cfg, planner=dataclasses.replace(cfg.planner, horizon=5))
    given = resolve(given_cfg, ["planner.horizon=5"], checkpoint)  # as Hydra composed it
    assert given.cfg.planner.horizon == 5 and "kept as given" in given.notes["planner.horizon"]
    roomy = resolve(dataclasses.replace(cfg, env=EnvSection(max_steps=20)), [], checkpoint)
    assert roomy.cfg.planner.horizon == 5 and roomy.notes == {}


def test_env_settings_are_spelled_as_in_wm_collect(monkeypatch, capsys):
    """`env.free_camera.fit=true` worked in wm-collect and was refused by wm-eval, whose Hydra
    hint (`+env.free_camera.fit=true`) added a key nothing read (issue 31)."""
    from hydra import compose, initialize_config_module

    from agent.config import env_overrides, eval_config, register_configs
    from agent.eval import main
    from envs.collect.config import register_configs as register_collect
    from envs.foreign.make import GymEnvEntry

    register_configs()
    register_collect()
    settings = ["env.id=Reacher-v5", "env.free_camera.fit=true", "env.simple_geoms=true"]
    with initialize_config_module("configs", version_base="1.3"):
        typed = eval_config(
            compose("eval", overrides=env_overrides([*settings, "+env.kwargs.frame_skip=10"]))
        )
        collect = compose("collect", overrides=["env=gym", *settings])
    assert typed.env.kwargs == {
        "free_camera": {"fit": True},
        "simple_geoms": True,
        "frame_skip": 10,
    }
    entry = GymEnvEntry(**OmegaConf.to_container(collect.env))
    assert entry.make_kwargs()["free_camera"] == {"fit": True} and entry.simple_geoms
    with pytest.raises(
        ValueError, match=r"'max_step' is no env setting.*'\+env\.kwargs\.max_step=3'"
    ):
        env_overrides(["env.max_step=3"])  # a typo, not a gym.make keyword
    monkeypatch.setattr(sys, "argv", ["wm-eval", "--cfg", "job", *settings])
    assert main() is None  # printed, did not run
    assert (
        "  kwargs:\n    free_camera:\n      fit: true  # command line\n" in capsys.readouterr().out
    )


def test_energy_png_explains_the_first_plan(tiny_checkpoint, tmp_path):
    """energy.png's plan panel was one dot for a horizon-1 model (issue 31); it now shows every
    candidate's energy per iteration and the chosen plan's distance to the goal, imagined
    against the simulator's frames for the same actions, from the observed frame on."""
    from agent.energy import explain_plan, plot_energy

    budget = {"num_samples": 8, "num_elites": 2, "iterations": 2, "horizon": 2}
    agent = load_agent(tiny_checkpoint, **budget)
    env = gym.make("wm/PandaReach-v0")
    obs, info = env.reset(seed=4)
    plan = explain_plan(agent, env, obs, info["goal_pixels"])
    env.close()
    assert [c.shape for c in plan.candidates] == [(8,), (8,)]
    assert plan.chosen == pytest.approx(plan.candidates[-1].min())
    assert plan.imagined.shape == plan.real.shape == (3,)  # now, then after each block
    assert plan.imagined[0] == plan.real[0] and np.isfinite(plan.real).all()
    dxs = np.linspace(-0.075, 0.075, 3)
    png = plot_energy(tmp_path / "e.png", dxs, dxs, np.eye(3), np.zeros(7), "t", plan, "h")
    assert png.stat().st_size > 1000
