"""Reachability head: hindsight labels, learns temporal distance, round-trips in a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.mpc import AgentConfig, MPCAgent
from world_model import WorldModelConfig, build_world_model, save_world_model
from world_model.reachability import (
    PairSampler,
    ReachabilityConfig,
    ReachabilityHead,
    load_head,
    save_head,
    train_head,
)

# A world model small enough to build in every test, and a one-iteration CEM in Panda's bounds.
TINY = WorldModelConfig(
    encoder={"hidden_size": 32, "num_layers": 1, "num_heads": 2, "latent_pool": 2},
    predictor={"embed_dim": 32, "width": 48, "depth": 1, "num_heads": 2},
)


def small_planner():
    from planners import CEMConfig, make_planner

    low = np.array([-0.075] * 3 + [0] * 3 + [-1], np.float32)
    return make_planner(CEMConfig(num_samples=8, iterations=1, num_elites=2), low, -low), low


def drifting_episodes(n: int = 12, length: int = 30) -> list[torch.Tensor]:
    """Latents (T, 2, 4) whose first channel moves by 1/length per step from a random start."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        z = torch.randn(1, 2, 4, generator=gen).expand(length + 1, -1, -1).clone()
        z[:, 0, 0] += torch.arange(length + 1) * (3.0 / length)
        out.append(z)
    return out


def test_pairs_are_hindsight_labels_clipped_to_the_budget():
    eps = drifting_episodes()
    cfg = ReachabilityConfig(budget=8, far_fraction=1.0)
    sampler = PairSampler(eps, cfg, torch.Generator().manual_seed(1))
    z, goal, label = sampler.sample(2000)
    steps = torch.round((goal[:, 0, 0] - z[:, 0, 0]) * 10).long()  # true separation
    assert torch.all(steps >= 0)
    assert torch.equal(label.long(), steps.clamp(max=8))
    assert (steps > 8).float().mean() > 0.2  # hard negatives from the same episode


def test_cross_episode_goals_are_labelled_out_of_reach():
    eps = drifting_episodes()
    cfg = ReachabilityConfig(budget=8, far_fraction=0.0, cross_fraction=0.5)
    z, goal, label = PairSampler(eps, cfg, torch.Generator().manual_seed(2)).sample(4000)
    other = (z[:, 1] != goal[:, 1]).any(-1)  # the second token is constant within an episode
    assert 0.4 < other.float().mean() < 0.6
    assert torch.all(label[other] == 8)
    # the rest stay hindsight pairs of one episode, within the budget here (far_fraction=0)
    steps = torch.round((goal[~other, 0, 0] - z[~other, 0, 0]) * 10).long()
    assert torch.equal(label[~other].long(), steps) and torch.all(steps <= 8)
    with pytest.raises(ValueError, match="cross_fraction"):
        ReachabilityConfig(cross_fraction=1.5)


def test_head_learns_temporal_distance_and_round_trips(tmp_path):
    cfg = ReachabilityConfig(budget=10, steps=400, batch_size=128, embed_dim=32, hidden_dim=64)
    head, metrics = train_head(drifting_episodes(), cfg, log_every=0)
    assert metrics["val_spearman"] > 0.8 and metrics["val_mae_steps"] < 2.5
    model_cfg = TINY
    ckpt = save_world_model(build_world_model(model_cfg), tmp_path / "wm")
    assert load_head(ckpt) is None
    save_head(head, ckpt, metrics)
    loaded = load_head(ckpt)
    z = torch.randn(3, 2, 4)
    torch.testing.assert_close(loaded(z, z[:1]), head(z, z[:1]))
    with pytest.raises(ValueError, match="latents"):
        loaded(torch.randn(3, 5), torch.randn(3, 5))


def test_agent_energy_adds_the_head_only_when_weighted(tmp_path):
    model_cfg = TINY
    wm = build_world_model(model_cfg)
    planner, low = small_planner()
    with pytest.raises(ValueError, match="no reachability head"):
        MPCAgent(wm, planner, low, -low, AgentConfig(reachability_weight=1.0))
    n, d = wm.num_tokens, wm.latent_dim
    head = ReachabilityHead(ReachabilityConfig(budget=5), n, d)
    z, goal = torch.randn(1, 4, 3, n, d), torch.randn(1, n, d)
    both = MPCAgent(wm, planner, low, -low, AgentConfig(reachability_weight=2.0), head)
    dist = MPCAgent(wm, planner, low, -low, AgentConfig())
    only = MPCAgent(
        wm, planner, low, -low, AgentConfig(distance_weight=0, reachability_weight=1.0), head
    )
    with torch.no_grad():
        expected = dist.plan_energy(z, goal) + 2.0 * only.plan_energy(z, goal)
        torch.testing.assert_close(both.plan_energy(z, goal), expected)
        # A margin subtracts steps from the head and floors at 0: past the budget it is off.
        cfg = AgentConfig(reachability_weight=2.0, reachability_margin=1.5)
        margin = MPCAgent(wm, planner, low, -low, cfg, head)
        steps = head(z, goal[:, None, None])
        expected = dist.plan_energy(z, goal) + 2.0 * (steps - 1.5).clamp(min=0) / 5
        torch.testing.assert_close(margin.plan_energy(z, goal), expected)
        cfg = AgentConfig(reachability_weight=2.0, reachability_margin=5.0)
        off = MPCAgent(wm, planner, low, -low, cfg, head)
        torch.testing.assert_close(off.plan_energy(z, goal), dist.plan_energy(z, goal))
    with pytest.raises(ValueError, match="reachability_margin"):
        AgentConfig(reachability_margin=-1.0)


def test_subgoal_proposer_learns_the_stride_and_steers_the_agent(tmp_path):
    from world_model.subgoals import SubgoalConfig, load_proposer, save_proposer, train_proposer

    cfg = SubgoalConfig(stride=3, steps=400, batch_size=128, hidden_dim=64)
    proposer, metrics = train_proposer(drifting_episodes(), cfg, log_every=0)
    # Far better than proposing the current latent or the goal itself.
    assert metrics["val_mse_vs_current"] < 0.3 and metrics["val_mse_vs_goal"] < 0.3
    model_cfg = TINY
    ckpt = save_world_model(build_world_model(model_cfg), tmp_path / "wm")
    save_proposer(proposer, ckpt, metrics)
    z = drifting_episodes(1)[0]
    torch.testing.assert_close(
        load_proposer(ckpt)(z[:2], z[-1:].expand(2, -1, -1)),
        proposer(z[:2], z[-1:].expand(2, -1, -1)),
    )
    planner, low = small_planner()
    wm = build_world_model(model_cfg)
    agent = MPCAgent(wm, planner, low, -low, AgentConfig(), subgoals=proposer)
    with torch.no_grad():
        target = agent.planning_target(z[:1], z[-1:])  # 3 steps along the drift, not the goal
    # Closer to frame 3 than half its 0.3 separation from the current frame (goal: 3.0 away).
    assert abs(float(target[0, 0, 0] - z[3, 0, 0])) < 0.15


def test_metric_head_is_zero_at_the_goal_and_learns_temporal_distance():
    cfg = ReachabilityConfig(
        budget=10, steps=400, batch_size=128, embed_dim=16, hidden_dim=32, kind="metric"
    )
    head, metrics = train_head(drifting_episodes(), cfg, log_every=0)
    assert metrics["val_spearman"] > 0.8
    z = torch.randn(5, 2, 4)
    with torch.no_grad():
        assert torch.all(head(z, z) == 0)  # a distance: exactly 0 at the goal, whatever z
        assert torch.all(head(z, z.flip(0))[[0, 1, 3, 4]] > 0)
    with pytest.raises(ValueError, match="kind"):
        ReachabilityConfig(kind="quasimetric")


def test_task_goal_proposer_uses_only_successful_episodes_and_their_goal():
    from world_model.subgoals import SubgoalConfig, sample_triplets, train_proposer

    eps = drifting_episodes(6, length=20)
    goals = torch.stack([e[-1] + 10.0 for e in eps])  # a task goal beyond every episode's end
    z, goal, target = sample_triplets(eps, 4, 500, torch.Generator().manual_seed(0), goals)
    assert torch.all(goal[:, 0, 0] - z[:, 0, 0] > 9.9)  # the task goal, not a later frame
    ahead = torch.round((target[:, 0, 0] - z[:, 0, 0]) * 20 / 3).long()  # 3 / 20 per frame
    assert torch.all((ahead >= 0) & (ahead <= 4)) and (ahead == 4).float().mean() > 0.6
    cfg = SubgoalConfig(stride=4, steps=50, hidden_dim=16, goal="task", only_success=True)
    with pytest.raises(ValueError, match="one encoded task goal"):
        train_proposer(eps, cfg, log_every=0)
    with pytest.raises(ValueError, match="1 of 6 episodes succeeded"):
        train_proposer(eps, cfg, 0, goals, torch.tensor([1, 0, 0, 0, 0, 0]).bool())
    _, metrics = train_proposer(eps, cfg, 0, goals, torch.tensor([1, 1, 1, 0, 1, 0]).bool())
    assert np.isfinite(metrics["val_mse"])
    with pytest.raises(ValueError, match="goal="):
        SubgoalConfig(goal="demo")


def test_reachability_switch_hands_over_to_the_distance_near_the_goal():
    model_cfg = TINY
    wm = build_world_model(model_cfg)
    planner, low = small_planner()
    n, d = wm.num_tokens, wm.latent_dim
    head = ReachabilityHead(ReachabilityConfig(budget=10, kind="metric"), n, d)
    cfg = AgentConfig(reachability_weight=2.0, reachability_switch=3.0)
    agent = MPCAgent(wm, planner, low, -low, cfg, head)
    goal = torch.randn(1, n, d)
    with torch.no_grad():
        far = goal + 100.0  # the metric head saturates near its budget, 10 > 3 steps
        assert float(head(far, goal)[0]) > 3.0
        assert agent.energy_weights(far, goal) == (0.0, 2.0)  # head alone while far
        assert agent.energy_weights(goal, goal) == (1.0, 0.0)  # the goal itself: 0 steps
        z = torch.randn(1, 2, 3, n, d)
        only_distance = MPCAgent(wm, planner, low, -low, AgentConfig())
        torch.testing.assert_close(
            agent.plan_energy(z, goal, weights=(1.0, 0.0)), only_distance.plan_energy(z, goal)
        )
    with pytest.raises(ValueError, match="reachability_switch needs"):
        AgentConfig(reachability_switch=3.0)
