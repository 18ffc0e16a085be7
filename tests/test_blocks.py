"""Action blocks: the agent plans H blocks of k control steps with a block-agnostic planner."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from agent.baselines import OracleAgent
from agent.blocks import blocks_to_execute, make_block_planner, tile_bounds, unblock
from agent.config import AgentConfig
from agent.mpc import MPCAgent
from planners import CEMConfig, MPPIConfig
from world_model.model.world_model import latent_energy

LOW = np.array([-0.075, -0.075, -0.075, 0, 0, 0, -1], np.float32)
HIGH = -LOW
K = 5


class BlockModel(torch.nn.Module):
    """Stand-in world model with k = 5: the latent is the end-effector xyz, which each block
    moves by the sum of its k translations; the encoder reads the xyz off pixel (0, 0)."""

    action_block, history = K, 2  # two context frames, one block apart
    device, crop_size, env_contract = torch.device("cpu"), 64, None

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[tuple] = []

    def encode(self, frames: torch.Tensor) -> torch.Tensor:  # (B, T, 3, H, W) -> (B, T, 1, 3)
        return (frames[..., 0, 0].float() / 255.0 - 0.5)[:, :, None]

    def rollout(self, z_ctx, states_ctx, actions, past_actions=None):
        self.calls.append((tuple(actions.shape), None if past_actions is None else past_actions))
        e, s, h, _ = actions.shape
        step = actions.reshape(e, s, h, K, 7)[..., :3].sum(-2)  # [E, S, H, 3] per block
        return z_ctx[:, -1][:, None, None] + step.cumsum(2)[:, :, :, None]  # [E, S, H, 1, 3]

    energy = staticmethod(latent_energy)


def pixel_at(xyz: np.ndarray) -> np.ndarray:
    img = np.zeros((64, 64, 3), np.uint8)
    img[0, 0] = np.round((np.asarray(xyz) + 0.5) * 255)
    return img


def test_block_helpers():
    lo, hi = tile_bounds(LOW, HIGH, 3)
    assert lo.shape == (21,) and np.array_equal(lo[7:14], LOW) and np.array_equal(hi[14:], HIGH)
    plan = np.arange(2 * 21, dtype=np.float32).reshape(2, 21)
    steps = unblock(plan, 7)
    assert steps.shape == (6, 7) and np.array_equal(steps[3], plan[1, :7])
    assert [blocks_to_execute(n, 5) for n in (1, 5, 6, 10)] == [1, 1, 2, 2]


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_agent_executes_whole_blocks_and_feeds_block_context(name: str):
    model = BlockModel()
    if name == "cem":
        cfg = CEMConfig(num_samples=64, iterations=4, horizon=2, num_elites=8)
    else:
        cfg = MPPIConfig(num_samples=64, iterations=4, horizon=2)
    planner = make_block_planner(cfg, LOW, HIGH, K)
    agent = MPCAgent(model, planner, LOW, HIGH, AgentConfig(execute_steps=1))
    target = np.array([0.2, -0.15, 0.1])
    agent.set_goal(pixel_at(target))
    pos, replans = np.zeros(3), []
    for _ in range(2 * K):
        action = agent.act(pixel_at(pos), np.zeros(7, np.float32))
        assert action.shape == (7,) and np.all(action >= LOW) and np.all(action <= HIGH)
        replans.append(agent.stats.replanned)
        pos = pos + action[:3]
    # One plan per block of k steps; the second plan sees the first block as its past action.
    assert replans == [True] + [False] * (K - 1) + [True] + [False] * (K - 1)
    assert model.calls[0][0][-1] == K * 7 and model.calls[0][1] is None
    assert model.calls[-1][1].shape == (1, 1, K * 7)
    assert np.linalg.norm(pos - target) < 0.5 * np.linalg.norm(target)


def test_oracle_scores_blocks_as_control_steps():
    env = gym.make("wm/PandaReach-v0")
    planner = make_block_planner(
        CEMConfig(num_samples=8, iterations=1, horizon=2, num_elites=2), LOW, HIGH, K
    )
    seen = []
    oracle_cost = env.unwrapped.oracle_cost
    env.unwrapped.oracle_cost = lambda a: seen.append(a.shape) or oracle_cost(a)
    agent = OracleAgent(env, planner, LOW, HIGH, execute_steps=K, action_block=K)
    obs, info = env.reset(seed=3)
    agent.reset()
    agent.set_goal(info["goal_pixels"])
    agent.act(obs["pixels"], obs["state"])
    assert seen == [(8, 2 * K, 7)]
    env.close()


def test_traced_plans_draw_their_imagined_energy():
    from agent.video import energy_panel

    model = BlockModel()
    planner = make_block_planner(CEMConfig(num_samples=16, iterations=2, horizon=3), LOW, HIGH, K)
    agent = MPCAgent(model, planner, LOW, HIGH)
    agent.trace_imagined = True
    agent.set_goal(pixel_at(np.array([0.2, 0.0, 0.0])))
    agent.act(pixel_at(np.zeros(3)), np.zeros(7, np.float32))
    imagined = agent.stats.imagined
    assert len(imagined) == 3 and np.all(np.isfinite(imagined))
    # The last imagined energy is what the planner's cost gives the chosen plan.
    plan = torch.as_tensor(agent.last_plan)[None, None]  # [1, 1, H, k * A]
    assert imagined[-1] == pytest.approx(float(agent.cost_function()(plan)[0, 0]), rel=1e-5)
    plain = energy_panel([1.0, 0.8], 96, 20)
    drawn = energy_panel([1.0, 0.8], 96, 20, imagined, K)
    assert (drawn != plain).any(axis=-1).sum() > 10  # the blue curve is there


def test_energy_landscape_with_blocks(tmp_path):
    from agent.energy import energy_grid, plot_energy

    planner = make_block_planner(CEMConfig(num_samples=16, iterations=1, horizon=2), LOW, HIGH, K)
    agent = MPCAgent(BlockModel(), planner, LOW, HIGH)
    goal = np.array([0.1, 0.0, 0.0])
    dxs, _, energies = energy_grid(
        agent, pixel_at(np.zeros(3)), np.zeros(7), pixel_at(goal), np.zeros(7), 0.075, 5
    )
    # One block of k equal steps: the minimum is where k * dx is nearest the goal's 0.1, dy = 0.
    iy, ix = np.unravel_index(np.argmin(energies), energies.shape)
    assert abs(K * dxs[ix] - 0.1) <= K * (dxs[1] - dxs[0]) / 2 + 1e-6
    assert dxs[iy] == 0  # the dy grid holds the same values
    png = plot_energy(tmp_path / "e.png", dxs, dxs, energies, np.zeros(7))
    assert png.stat().st_size > 0
