"""Action head (world_model/heads/actor.py) and the planners that use its proposal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.config import override_keys
from agent.mpc import AgentConfig, MPCAgent
from planners import CEMConfig, make_planner
from tests.test_reachability import TINY  # the world model small enough for every test
from world_model import build_world_model, save_world_model
from world_model.heads.actor import (
    ActionHead,
    ActorConfig,
    BlockSampler,
    load_actor,
    save_actor,
    train_actor,
)

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
