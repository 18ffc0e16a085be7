"""agent.kind=true_dynamics: the learned energy scored on rendered simulator frames."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401
from agent.factory import load_agent
from agent.true_dynamics import TrueDynamicsAgent
from envs.common.contract import EnvContract
from envs.common.sim_state import get_sim_state, set_sim_state
from world_model import WorldModelConfig, build_world_model, save_world_model


def test_true_dynamics_cost_is_the_energy_of_the_real_final_frame(tmp_path):
    env = gym.make("wm/PandaReach-v0")
    cfg = WorldModelConfig(
        encoder={"hidden_size": 32, "num_layers": 1, "num_heads": 2, "latent_pool": 2},
        predictor={"embed_dim": 32, "width": 48, "depth": 1, "num_heads": 2},
    )
    save_world_model(build_world_model(cfg, env_contract=EnvContract.from_env(env)), tmp_path)
    obs, info = env.reset(seed=0)
    learned = load_agent(tmp_path, env=env, num_samples=4, num_elites=2, iterations=1, horizon=2)
    agent = TrueDynamicsAgent(env, learned)
    agent.set_goal(info["goal_pixels"])
    agent.observe(obs["pixels"], obs["state"])
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(0)
    plans = rng.uniform(low, high, (3, 2, low.size)).astype(np.float32)  # [S, H, A], k = 1
    before = get_sim_state(env)
    cost = agent.cost_function()(torch.as_tensor(plans)[None])  # [1, S]
    assert cost.shape == (1, 3) and torch.isfinite(cost).all()
    np.testing.assert_array_equal(get_sim_state(env), before)  # the live env is untouched
    for s in range(3):  # by hand: step the simulator, render, encode, score
        for a in plans[s]:
            env.unwrapped.step(a)
        z = agent.encode_image(env.unwrapped.render())[None, None, None]  # [1, 1, 1, N, D]
        expected = agent.plan_energy(z, agent._current_goal())[0, 0, -1]
        set_sim_state(env, before)
        torch.testing.assert_close(cost[0, s], expected, rtol=1e-4, atol=1e-5)
    assert agent.act(obs["pixels"], obs["state"]).shape == low.shape
    env.close()
