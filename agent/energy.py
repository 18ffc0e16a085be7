"""The demo's energy.png: what explains the agent's first plan, cheaply.

Three panels: the energy landscape as in the V-JEPA 2 paper (energy over a grid of (dx, dy)
around the action that really produced the goal frame: a good world model puts the minimum
near the true action), the energies of every candidate the planner scored, and the chosen
plan's latent distance to the goal after each block, imagined by the world model against the
frames the simulator renders for the same actions.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agent.blocks import unblock
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


@dataclass
class PlanTrace:
    """What explains one plan: what the planner weighed and where the chosen plan leads."""

    candidates: list[np.ndarray]
    """Every candidate's energy `(S,)` per planner iteration, in the order scored."""
    chosen: float
    """The chosen plan's energy (the planner's best of the last iteration)."""
    stay: float | None
    """The energy of holding still (`agent.stay_if_better`; None when off): the agent holds
    still instead when it is no higher than `chosen`."""
    imagined: np.ndarray
    """`(H + 1,)` latent distance to the goal: the observed frame, then after each block the
    world model imagines for the chosen plan."""
    real: np.ndarray
    """`(H + 1,)` the same for the frames the simulator renders for the plan's actions."""
    block: int
    """Control steps per block k."""
    reduce: str = "last"
    """How the energy reads the plan (`agent.energy_reduce`): at its end, or summed over it."""


@torch.no_grad()
def explain_plan(
    agent: MPCAgent, env, obs: dict[str, np.ndarray], goal_pixels: np.ndarray
) -> PlanTrace:
    """Plan once from `obs` towards `goal_pixels` as `agent.act` would, recording every
    candidate's energy, then run the chosen plan's actions in `env` (from the state `obs` was
    rendered in) to set the imagined latent distances beside the real ones. Costs one plan, H
    imagined blocks and H * k simulator steps."""
    agent.reset()
    agent.set_goal(goal_pixels)
    agent.observe(obs["pixels"], obs["state"])
    cost_fn, scored = agent.cost_function(), []

    def traced(candidates: torch.Tensor) -> torch.Tensor:
        energies = cost_fn(candidates)  # [1, S]
        scored.append(energies[0].float().cpu().numpy())
        return energies

    plan = agent.planner.plan(traced, 1, agent.proposal())[0].cpu().numpy()  # [H, k * A]
    chosen = float(agent.planner.last_cost[0])
    stay = agent.stay_energy()
    imagined = [agent.goal_distance(obs["pixels"]), *agent.imagined_distances(plan)]
    low, high = env.action_space.low, env.action_space.high
    real = [imagined[0]]
    for block in plan:
        for action in unblock(block[None], low.size):  # [k, A]
            obs, *_ = env.step(np.clip(action, low, high).astype(np.float32))
        real.append(agent.goal_distance(obs["pixels"]))
    agent.reset()
    imagined, real = np.array(imagined), np.array(real)
    return PlanTrace(
        scored, chosen, stay, imagined, real, agent.action_block, agent.cfg.energy_reduce
    )


def plot_energy(
    path: Path,
    dxs: np.ndarray,
    dys: np.ndarray,
    energies: np.ndarray,
    true_action: np.ndarray,
    title: str = "",
    plan: PlanTrace | None = None,
    heading: str = "",
) -> Path:
    """Heat map of `energies` (`title` above it) with the true action (white cross) and the
    grid minimum (red dot); with `plan`, two more panels: the candidates' energies per planner
    iteration, and the chosen plan's latent distance to the goal, imagined against real.
    `heading` goes above them all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # constrained layout keeps every title, label and colorbar inside the figure
    if plan is not None:
        fig, (ax, ax_cand, ax_plan) = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
        plot_candidates(ax_cand, plan)
        plot_plan(ax_plan, plan)
    else:
        fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    mesh = ax.pcolormesh(dxs * 100, dys * 100, energies, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="energy (latent L1)")
    iy, ix = np.unravel_index(np.nanargmin(energies), energies.shape)
    ax.plot(true_action[0] * 100, true_action[1] * 100, "wx", ms=12, mew=3, label="true action")
    ax.plot(dxs[ix] * 100, dys[iy] * 100, "ro", ms=7, label="energy minimum")
    ax.set_xlabel("dx (cm)")
    ax.set_ylabel("dy (cm)")
    ax.set_title(title or "energy landscape", fontsize=10)
    ax.legend(loc="upper right", fontsize=7)
    if heading:
        fig.suptitle(heading, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_candidates(ax, plan: PlanTrace) -> None:
    """Each planner iteration's candidate energies, sorted: how the search narrows, and where
    the chosen plan and holding still sit among them."""
    import matplotlib.pyplot as plt

    shades = plt.cm.Blues(np.linspace(0.35, 1.0, len(plan.candidates)))
    for i, (scored, shade) in enumerate(zip(plan.candidates, shades, strict=True)):
        ax.plot(np.sort(scored), ".", ms=3, color=shade, label=f"iteration {i + 1}")
    ax.axhline(plan.chosen, color="tab:red", lw=1.2, label="chosen plan")
    if plan.stay is not None:
        ax.axhline(plan.stay, color="grey", ls=":", lw=1.2, label="hold still")
    ax.set_xlabel("candidate, by energy")
    ax.set_ylabel(
        "energy, summed over the plan" if plan.reduce == "sum" else "energy at the plan's end"
    )
    ax.set_title(f"{len(plan.candidates[0])} candidates per iteration", fontsize=10)
    ax.legend(fontsize=7)


def plot_plan(ax, plan: PlanTrace) -> None:
    """The chosen plan's latent distance to the goal after each block, as the world model
    imagines it and as the simulator's frames give it."""
    steps = np.arange(len(plan.imagined)) * plan.block  # control steps
    ax.plot(steps, plan.imagined, "o-", color="tab:blue", label="imagined (world model)")
    ax.plot(steps, plan.real, "s--", color="black", label="real (simulator frames)")
    ax.set_xlabel("control steps of the chosen plan")
    ax.set_ylabel("latent distance to the goal")
    ax.set_xticks(steps)
    ax.set_title("where the chosen plan leads", fontsize=10)
    ax.legend(fontsize=7)


def landscape_for_env(agent: MPCAgent, env, seed: int, path: Path) -> Path:
    """The expert's first action from reset(seed), taken for one block of the model's k control
    steps (the grid's candidates are blocks of k equal steps), makes the goal frame; sweep dx,
    dy around it, then explain the plan the agent makes from the same start towards that
    goal (`explain_plan`)."""
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
    title = f"energy of {step} actions around the true one"
    env_id = env.spec.id if env.spec else "env"
    heading = f"{env_id} seed {seed}: what the agent weighs for its first plan"
    obs, _ = env.reset(seed=seed)  # the same start, the simulator where obs was rendered
    plan = explain_plan(agent, env, obs, goal_obs["pixels"])
    return plot_energy(path, dxs, dys, energies, true_action, title, plan, heading)


@one_line_errors("wm-energy")
def main(argv: list[str] | None = None) -> None:
    """`wm-energy`: energy.png (landscape, candidates, the chosen plan) for one task instance."""
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
