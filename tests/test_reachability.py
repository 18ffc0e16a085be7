"""Reachability head: hindsight labels, learns temporal distance, round-trips in a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.mpc import AgentConfig, MPCAgent
from world_model import WorldModelConfig, build_world_model, save_world_model
from world_model.heads.reachability import (
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


def test_head_saved_with_a_kind_loads_only_as_the_mlp(tmp_path):
    """Heads written before `kind` was deleted record it: "mlp" loads, "metric" is refused."""
    import json

    ckpt = save_world_model(build_world_model(TINY), tmp_path / "wm")
    save_head(ReachabilityHead(ReachabilityConfig(budget=5), 4, 32), ckpt)
    path = ckpt / "config.json"
    payload = json.loads(path.read_text())
    payload["extra"]["reachability"]["config"]["kind"] = "mlp"
    path.write_text(json.dumps(payload))
    assert load_head(ckpt) is not None
    payload["extra"]["reachability"]["config"]["kind"] = "metric"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="kind='metric' was deleted"):
        load_head(ckpt)
