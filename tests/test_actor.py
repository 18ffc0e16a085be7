"""Action head (world_model/heads/actor.py) and the planners that use its proposal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agent.blocks import make_block_planner
from agent.config import override_keys
from agent.mpc import AgentConfig, MPCAgent
from planners import CEMConfig, make_planner
from tests.synthetic import synthetic_episodes
from tests.test_lewm import lewm_cfg, tiny_train_cfg
from tests.test_reachability import TINY  # the world model small enough for every test
from tests.test_train import write_h5
from world_model import build_world_model, load_world_model, save_world_model
from world_model.heads.actor import (
    ActionHead,
    ActorConfig,
    BlockSampler,
    clip_samples,
    load_actor,
    save_actor,
    train_actor,
)
from world_model.training.config import TrainConfig
from world_model.training.lewm import LeWMLoss
from world_model.training.lewm_trainer import LeWMTrainer

LOW = np.array([-0.075] * 3 + [0] * 3 + [-1], np.float32)


def integrator_episodes(n: int = 16, length: int = 30, k: int = 2):
    """Latents (T + 1, 1, 4) that integrate a random 2-D action through a fixed linear map:
    the action block is recoverable from the latent change, so an inverse model must learn it."""
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(2, 4, generator=gen)
    latents, actions = [], []
    for _ in range(n):
        a = torch.zeros(length, 7)
        a[:, :2] = torch.randn(length, 2, generator=gen) * 0.05
        z = torch.cumsum(torch.cat([torch.zeros(1, 2), a[:, :2]]), 0) @ mix * 10  # [T + 1, 4]
        latents.append(z[:, None])  # [T + 1, 1, 4]
        actions.append(a)
    return latents, actions


def test_sampler_aligns_blocks_intents_and_previous_blocks():
    k, length = 3, 10
    z = torch.arange(length + 1.0)[:, None, None].expand(-1, 1, 2)  # z_t = t
    a = torch.arange(length * 7.0).reshape(length, 7)  # a_t[0] = 7 t
    sampler = BlockSampler([z], [a], k, goal_window=5, generator=torch.Generator().manual_seed(1))
    zt, physical, goal, prev, block = sampler.sample(500)
    t = zt[:, 0, 0].long()
    assert int(t.max()) <= length - k  # a whole block follows every start
    assert torch.all(physical[:, 0, 0] == k)
    assert torch.all((goal[:, 0, 0] >= k) & (goal[:, 0, 0] <= 5))  # the window
    torch.testing.assert_close(block[:, 0], 7.0 * t)
    torch.testing.assert_close(block[:, 7], 7.0 * (t + 1))
    has_prev = t >= k
    torch.testing.assert_close(prev[has_prev, 0], 7.0 * (t[has_prev] - k))
    assert torch.all(prev[~has_prev] == 0)
    far = BlockSampler([z], [a], k, goal_window=0).sample(2000)[2][:, 0, 0]
    assert int(far.max()) > 5  # goal_window=0: up to the episode's end


def test_head_learns_the_inverse_model_and_round_trips(tmp_path):
    latents, actions = integrator_episodes()
    k = 2
    mean, std = torch.zeros(k * 7), torch.full((k * 7,), 0.05)
    cfg = ActorConfig(steps=600, batch_size=128, hidden_dim=64)
    head, metrics = train_actor(latents, actions, k, mean, std, cfg, log_every=0)
    # the physical intent determines the block's sum, not its split: well below the data's spread
    assert metrics["val_physical_mse"] < 0.75 * metrics["val_zero_mse"]
    ckpt = save_world_model(build_world_model(TINY), tmp_path / "wm")
    assert load_actor(ckpt) is None
    save_actor(head, ckpt, metrics)
    loaded = load_actor(ckpt)
    z, prev = torch.randn(3, 1, 4), torch.zeros(3, k * 7)
    for got, want in zip(loaded(z, z, prev), head(z, z, prev), strict=True):
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="latents"):
        loaded(torch.randn(3, 5), torch.randn(3, 5), prev)


def test_non_finite_head_weights_are_refused(tmp_path):
    ckpt = save_world_model(build_world_model(TINY), tmp_path / "wm")
    head = ActionHead(ActorConfig(), 1, 4, torch.zeros(7), torch.ones(7))
    with torch.no_grad():
        head.mlp[0].weight[0, 0] = float("nan")
    save_actor(head, ckpt)
    with pytest.raises(ValueError, match="non-finite"):
        load_actor(ckpt)


def test_clip_samples_align_intents_previous_blocks_and_goal_windows():
    """The joint variant's samples: every position's physical intent is one block, position
    0 has no previous block, goals lie 1..W blocks ahead and only where the whole window fits."""
    b, t, w = 64, 6, 3
    z = torch.arange(t, dtype=torch.float32)[None, :, None, None].repeat(b, 1, 1, 2)  # z_t = t
    z.requires_grad_(True)
    actions = torch.arange(t - 1.0)[None, :, None].repeat(b, 1, 14)  # block t: all t
    (z_t, physical, prev, block), goal = clip_samples(z, actions, goal_blocks=w)
    assert z_t.shape == (b, t - 1, 1, 2) and torch.all(physical == 1)
    assert torch.all(prev[:, 0] == 0) and torch.equal(prev[:, 1:], actions[:, :-1])
    assert torch.equal(block, actions)
    g_z, g_intent, g_prev, g_block = goal
    assert g_z.shape[1] == t - w  # positions 0 .. T-1-W
    ahead = g_intent[..., 0, 0]
    assert torch.all((ahead >= 1) & (ahead <= w)) and set(ahead.unique().tolist()) == {1, 2, 3}
    assert torch.equal(g_block, actions[:, : t - w]) and torch.equal(g_prev, prev[:, : t - w])
    g_intent.sum().backward()  # the goal latent is a stop-gradient target
    assert torch.all(z.grad[:, : t - w].sum((-1, -2)) <= 0)
    assert clip_samples(z, actions, goal_blocks=0)[1] is None
    with pytest.raises(ValueError, match="goal window"):
        clip_samples(z, actions, goal_blocks=t)


def test_weight_zero_is_todays_lewm_objective_and_the_head_only_adds():
    """No head: the LeWM loss as before, and no head in the optimizer. With one, the LeWM
    parts stay the same numbers and the loss grows by exactly the weighted NLLs."""
    torch.manual_seed(0)
    model = build_world_model(lewm_cfg()).train()
    frames = torch.randint(0, 255, (4, 5, 3, 16, 16), dtype=torch.uint8)
    actions, states = torch.randn(4, 4, 14) * 0.1, torch.randn(4, 5, 7)
    args = (model, 2, 2, 0.1, 16)
    torch.manual_seed(1)
    loss, parts = LeWMLoss(*args)(frames, actions, states)
    head = ActionHead(ActorConfig(hidden_dim=16), 1, 16, torch.zeros(14), torch.ones(14))
    joint = LeWMLoss(*args, actor=head, actor_weights=(0.1, 0.05), goal_blocks=2)
    torch.manual_seed(1)
    joint_loss, joint_parts = joint(frames, actions, states)
    assert torch.equal(joint_parts[: len(parts)], parts) and len(joint_parts) == len(parts) + 2
    extra = 0.1 * joint_parts[-2] + 0.05 * joint_parts[-1]
    torch.testing.assert_close(joint_loss, loss + extra)
    joint_loss.backward()
    assert all(p.grad is not None for p in head.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    with pytest.raises(ValueError, match="needs actor_weight > 0"):
        TrainConfig(world_model=lewm_cfg(), actor_goal_weight=0.05)
    with pytest.raises(ValueError, match="spans 6 control steps"):
        TrainConfig(world_model=lewm_cfg(), clip_len=4, actor_weight=0.1, actor_goal_window=8)
    with pytest.raises(ValueError, match="world_model.heads.actor"):
        TrainConfig(world_model=lewm_cfg(), encoder_from="x", actor_weight=0.1)


def test_joint_training_ships_a_head_that_direct_plans_with(tmp_path):
    """wm-train's lewm recipe with actor weights: the checkpoint carries the head as the frozen
    variant saves it, Direct's proposals from it are finite and inside the bounds, and a
    resumed run ends with the same head as an uninterrupted one. Weight 0 builds no head."""
    torch.set_num_threads(1)
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=10, size=16))
    weights = {"actor_weight": 0.1, "actor_goal_weight": 0.05, "actor_goal_window": 4}
    plain = LeWMTrainer(tiny_train_cfg(tmp_path / "plain", h5, steps=1))
    assert plain.actor is None and plain.optimized() is plain.model
    plain.run()
    assert load_actor(tmp_path / "plain" / "world_model") is None
    straight = LeWMTrainer(tiny_train_cfg(tmp_path / "a", h5, **weights))
    metrics = straight.run()
    assert np.isfinite(metrics["actor_nll_goal"]) and "val/actor_goal_mse" in metrics
    ckpt = tmp_path / "a" / "world_model"
    head, wm = load_actor(ckpt), load_world_model(ckpt)
    entry = json.loads((ckpt / "config.json").read_text())["extra"]["actor"]
    assert entry["file"] == "actor.safetensors" and entry["block_dim"] == 14
    assert entry["config"]["goal_window"] == 4 and entry["joint"]["step"] == 6
    torch.testing.assert_close(head.action_std, wm.predictor.action_std.clamp_min(1e-3))
    direct = make_block_planner(
        CEMConfig(horizon=2, proposal="centre", num_samples=1, iterations=1, num_elites=1),
        LOW, -LOW, wm.action_block,
    )  # fmt: skip
    agent = MPCAgent(wm, direct, LOW, -LOW, AgentConfig(stay_if_better=False), actor=head)
    frames = synthetic_episodes(1, length=4, size=16, seed=5)[0].pixels
    agent.set_goal(frames[-1])
    action = agent.act(frames[0], np.zeros(7, np.float32))
    mean, std = agent.proposal()
    assert mean.shape == (1, 2, 14) and torch.isfinite(mean).all() and torch.isfinite(std).all()
    assert agent.stats.error == "" and np.all(np.abs(action) <= -LOW + 1e-6)

    first = LeWMTrainer(tiny_train_cfg(tmp_path / "b", h5, **weights))
    while first.step < 3:
        first.train_step(*first.local_batch(first.step))
        first.step += 1
    first.checkpoint()
    resumed = LeWMTrainer(tiny_train_cfg(tmp_path / "b", h5, **weights))
    assert resumed.step == 3
    resumed.run()
    a, b = straight.actor.state_dict(), resumed.actor.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="holds no action head"):
        LeWMTrainer(tiny_train_cfg(tmp_path / "plain", h5, steps=2, **weights))
    # Fine-tuning from the checkpoint (wm-improve's rounds) continues its head, not a fresh one.
    tuned = LeWMTrainer(tiny_train_cfg(tmp_path / "c", h5, init_from=str(ckpt), **weights))
    a, b = head.state_dict(), tuned.actor.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def planner(**kw):
    return make_planner(CEMConfig(horizon=2, **kw), LOW, -LOW)


def test_direct_returns_the_proposal_inside_the_bounds():
    direct = planner(proposal="centre", num_samples=1, iterations=1, num_elites=1)
    mean = torch.full((1, 2, 7), 0.05)
    mean[0, 1, 0] = 5.0  # outside the box: clipped
    plan = direct.plan(lambda a: a.square().sum((-1, -2)), 1, (mean, torch.ones_like(mean)))
    assert plan[0, 0, 0] == pytest.approx(0.05) and plan[0, 1, 0] == pytest.approx(0.075)
    assert plan[0, 0, 3] == 0  # frozen rotation stays at its bound
    with pytest.raises(ValueError, match="needs a learned proposal"):
        direct.plan(lambda a: a.sum((-1, -2)), 1)
    with pytest.raises(ValueError, match="non-finite"):
        direct.plan(lambda a: a.sum((-1, -2)), 1, (mean * float("nan"), mean))


def test_a_search_centred_on_the_proposal_keeps_it_unless_the_cost_finds_better():
    centred = planner(proposal="centre", num_samples=32, iterations=2, num_elites=4, init_std=0.25)
    mean = torch.full((1, 2, 7), 0.02)
    mean[..., 3:6] = 0
    target = mean.clone()
    plan = centred.plan(lambda a: (a - target).abs().sum((-1, -2)), 1, (mean, mean))
    torch.testing.assert_close(plan, mean)  # the proposal is the optimum: never lost
    shifted = target + 0.03
    shifted[..., 3:6] = 0
    plan = centred.plan(lambda a: (a - shifted).abs().sum((-1, -2)), 1, (mean, mean))
    assert (plan - shifted).abs().sum() < (mean - shifted).abs().sum()  # it does search


def test_actor_modes_need_a_head_and_presets_pin_their_keys(tmp_path):
    wm = build_world_model(TINY)
    with pytest.raises(ValueError, match="python -m world_model.heads.actor"):
        MPCAgent(wm, planner(proposal="centre"), LOW, -LOW, AgentConfig())
    keys = override_keys(["planner=direct", "episodes=3"])
    assert {"planner.num_samples", "planner.proposal", "planner.iterations"} <= keys
    assert "planner.horizon" not in keys  # the checkpoint's horizon still applies


def test_agent_direct_plans_from_the_head_and_holds_still_when_it_breaks():
    wm = build_world_model(TINY)
    n, d = wm.num_tokens, wm.latent_dim
    head = ActionHead(ActorConfig(hidden_dim=16), n, d, torch.zeros(7), torch.full((7,), 0.05))
    direct = planner(proposal="centre", num_samples=1, iterations=1, num_elites=1)
    agent = MPCAgent(wm, direct, LOW, -LOW, AgentConfig(stay_if_better=False), actor=head)
    frame = np.zeros((64, 64, 3), np.uint8)
    agent.set_goal(frame)
    action = agent.act(frame, np.zeros(7, np.float32))
    proposal = agent.proposal()[0][0, 0].numpy()
    np.testing.assert_allclose(action, np.clip(proposal, LOW, -LOW), atol=1e-6)
    assert agent.stats.error == ""
    with torch.no_grad():
        head.mlp[-1].bias.fill_(float("nan"))
    agent.reset()
    agent.set_goal(frame)
    action = agent.act(frame, np.zeros(7, np.float32))
    assert np.all(np.isfinite(action)) and "non-finite" in agent.stats.error


def test_the_shipped_cube_checkpoint_plans_direct_with_no_flags():
    """checkpoints/cube_lewm recommends Direct: load_agent (wm-eval, the ROS node) takes it
    from config.json, and its commands stay inside the env's bounds on the real task."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers wm/OGBenchCube-v0)
    from agent.factory import load_agent

    env = gym.make("wm/OGBenchCube-v0")
    agent = load_agent("checkpoints/cube_lewm", env=env)
    assert agent.planner.cfg.proposal == "centre" and agent.planner.cfg.num_samples == 1
    obs, info = env.reset(seed=3)
    agent.reset()
    agent.set_goal(info["goal_pixels"])
    low, high = env.action_space.low, env.action_space.high
    for _ in range(6):
        action = agent.act(obs["pixels"], obs["state"])
        assert np.all(action >= low - 1e-6) and np.all(action <= high + 1e-6)
        obs, *_ = env.step(action)
    assert agent.stats.error == ""
    env.close()
