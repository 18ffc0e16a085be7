"""Energy landscape, as in the V-JEPA 2 paper: energy over a grid of (dx, dy) around the action
that really produced the goal frame. A good world model puts the minimum near the true action."""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
from pathlib import Path

import numpy as np
import torch

from agent.mpc import MPCAgent
from configs.cli import one_line_errors


@torch.no_grad()
def energy_grid(
    agent: MPCAgent,
    pixels: np.ndarray,
    state: np.ndarray,
    goal_pixels: np.ndarray,
    base_action: np.ndarray,
    half_range: float,
    resolution: int = 21,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies (res, res) of one-step actions `base_action` with dx, dy swept over a grid.

    Returns (dx values, dy values, energies[iy, ix]); the grid is one batched rollout.
    """
    agent.reset()
    agent.set_goal(goal_pixels)
    agent.observe(pixels, state)
    cost_fn = agent.cost_function()
    d = np.linspace(-half_range, half_range, resolution)
    dx, dy = np.meshgrid(d, d)  # [res, res] each, dy along rows
    actions = np.repeat(np.asarray(base_action, np.float32)[None], dx.size, axis=0)  # [G, A]
    actions[:, 0], actions[:, 1] = dx.ravel(), dy.ravel()
    actions = np.tile(actions, agent.action_block)  # [G, k * A]: one block of k equal steps
    cand = torch.as_tensor(actions)[None, :, None]  # [1, G, 1, k * A]: E=1, S=G, H=1
    energies = cost_fn(cand)[0].reshape(resolution, resolution).cpu().numpy()
    return d, d, energies


def plot_energy(
    path: Path,
    dxs: np.ndarray,
    dys: np.ndarray,
    energies: np.ndarray,
    true_action: np.ndarray,
    title: str = "",
    imagined: list[float] | None = None,
) -> Path:
    """Heat map with the true action (white cross) and the grid minimum (red dot); with
    `imagined`, a second panel: the planned trajectory's energy after each imagined block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if imagined:
        fig, (ax, ax_plan) = plt.subplots(1, 2, figsize=(8.5, 4))
        ax_plan.plot(np.arange(1, len(imagined) + 1), imagined, "o-", color="tab:blue")
        ax_plan.set_xlabel("imagined block of the chosen plan")
        ax_plan.set_ylabel("energy")
        ax_plan.set_title("why this plan: energy over its horizon")
    else:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    mesh = ax.pcolormesh(dxs * 100, dys * 100, energies, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="energy (latent L1)")
    iy, ix = np.unravel_index(np.nanargmin(energies), energies.shape)
    ax.plot(true_action[0] * 100, true_action[1] * 100, "wx", ms=12, mew=3, label="true action")
    ax.plot(dxs[ix] * 100, dys[iy] * 100, "ro", ms=7, label="energy minimum")
    ax.set_xlabel("dx (cm)")
    ax.set_ylabel("dy (cm)")
    ax.set_title(title or "energy landscape")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def landscape_for_env(agent: MPCAgent, env, seed: int, path: Path) -> Path:
    """The expert's first action from reset(seed), taken for one block of the model's k control
    steps (the grid's candidates are blocks of k equal steps), makes the goal frame; sweep dx,
    dy around it."""
    from envs.common.experts import make_policy

    obs, info = env.reset(seed=seed)
    true_action = make_policy("expert", env, seed=seed)(obs, info)
    for _ in range(agent.action_block):
        goal_obs, *_ = env.step(true_action)
    half = float(env.action_space.high[0])
    dxs, dys, energies = energy_grid(
        agent, obs["pixels"], obs["state"], goal_obs["pixels"], true_action, half
    )
    k = agent.action_block
    step = "one-step" if k == 1 else f"{k}-step block"
    title = f"{env.spec.id if env.spec else 'env'} seed {seed}: {step} energy"
    # The plan the agent would choose from the same start, towards the same goal frame.
    agent.reset()
    agent.set_goal(goal_obs["pixels"])
    agent.trace_imagined = True
    agent.act(obs["pixels"], obs["state"])
    agent.trace_imagined = False
    imagined = list(agent.stats.imagined)
    agent.reset()
    return plot_energy(path, dxs, dys, energies, true_action, title, imagined)


@one_line_errors("wm-energy")
def main(argv: list[str] | None = None) -> None:
    """`wm-energy`: the energy-landscape PNG for one task instance (also an eval option)."""
    import argparse

    from agent.factory import load_agent, make_env

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", default="checkpoints/reach_lewm")
    parser.add_argument("--env", default="wm/PandaReach-v0")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--out", default="energy.png")
    args = parser.parse_args(argv)
    env = make_env(args.env)
    agent = load_agent(args.checkpoint, env=env)  # refuses an env the model was not trained on
    print(landscape_for_env(agent, env, args.seed, Path(args.out)))
    env.close()
