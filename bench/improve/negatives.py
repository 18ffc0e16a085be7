"""Hard negatives, and the plan diagnosis on the candidates CEM itself proposes.

From a saved start, plain CEM over the model searches as the anchors' planner does; every
candidate it scores in every iteration is kept with its imagined energy. The lowest energies
that are also far enough apart (`diverse_best`) are the hard negatives: each is executed open
loop from the same start and recorded (imagined success; for real, often a grasp that
missed). A uniform draw of the other candidates joins them, the simulator computes every one's
real final distance to the goal (`agent.baselines.oracle_cost_fn`, no rendering), and
`bench.plan_diagnosis.ranking` says how well the imagined energy orders them: bench
plan_diagnosis asks it of noisy experts, this of what the planner visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agent.baselines import oracle_cost_fn
from bench.plan_diagnosis import ranking


class CandidateLog:
    """A cost function `(1, S, H, k * A) -> (1, S)` that keeps every candidate it scores."""

    def __init__(self, cost_fn: Any) -> None:
        self.cost_fn = cost_fn
        self.plans: list[np.ndarray] = []  # each (S, H, k * A)
        self.energies: list[np.ndarray] = []  # each (S,)

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        costs = self.cost_fn(actions)  # [1, S]
        self.plans.append(actions[0].detach().cpu().numpy())
        self.energies.append(costs[0].detach().double().cpu().numpy())
        return costs

    def pool(self) -> tuple[np.ndarray, np.ndarray]:
        """Every candidate `(P, H, k * A)` and its imagined energy `(P,)`, NaN as +inf."""
        energy = np.concatenate(self.energies)
        return np.concatenate(self.plans), np.where(np.isfinite(energy), energy, np.inf)


def diverse_best(
    plans: np.ndarray, energy: np.ndarray, n: int, min_distance: float, half_range: np.ndarray
) -> tuple[list[int], bool]:
    """Indices of the `n` lowest energies whose plans `(P, H, k * A)` lie at least
    `min_distance` apart (RMS difference in units of each dimension's half-range `(k * A,)`,
    frozen dimensions left out), picked greedily from the lowest; when fewer are that far
    apart the next lowest fill the list, and the flag says so. Non-finite energies are never
    picked; a search without any finite energy is refused (a broken model)."""
    order = [int(i) for i in np.argsort(energy, kind="stable") if np.isfinite(energy[i])]
    if len(order) < n:
        raise ValueError(
            f"CEM scored {len(order)} candidates with a finite imagined energy, fewer than "
            f"num_negatives={n}: the model gives NaN/inf latents"
        )
    free = half_range > 0
    scaled = plans[..., free] / half_range[free]  # (P, H, F) in half-ranges
    picked: list[int] = []
    for i in order:
        gaps = [np.sqrt(np.mean((scaled[i] - scaled[j]) ** 2)) for j in picked]
        if all(gap >= min_distance for gap in gaps):
            picked.append(i)
        if len(picked) == n:
            return picked, True
    picked += [i for i in order if i not in picked][: n - len(picked)]
    return picked, False


@dataclass
class Search:
    """One start's CEM search: its hard negatives and the diagnosis of its candidates."""

    plans: np.ndarray
    """(n, H * k, A) the hard negatives as control steps, lowest imagined energy first."""
    energies: np.ndarray
    """(n,) their imagined energies."""
    plan_distances: np.ndarray
    """(n,) their real distance to the goal at the plan's end (the env's task distance)."""
    diverse: bool
    """All `n` lie `negative_min_distance` apart."""
    diagnosis: dict[str, Any]
    """`bench.plan_diagnosis.ranking` over the diagnosed candidates, and their count."""


def search_start(env: Any, cem: Any, seed: int, cfg: Any, rng: np.random.Generator) -> Search:
    """Reset `env` to the protocol=dataset start `seed`, search it with the CEM agent `cem`,
    and diagnose `cfg.diagnosis_candidates` of the candidates (the env is left at the start)."""
    obs, info = env.reset(seed=seed)
    cem.reset()
    cem.set_goal(info["goal_pixels"])
    cem.observe(obs["pixels"], obs["state"])
    log = CandidateLog(cem.cost_function())
    cem.planner.plan(log, num_envs=1)
    plans, energy = log.pool()  # (P, H, k * A), (P,)
    half = cem.planner.bounds.half_range.cpu().numpy()  # (k * A,)
    n = cfg.num_negatives
    picked, diverse = diverse_best(plans, energy, n, cfg.negative_min_distance, half)
    rest = np.array([i for i in range(len(plans)) if i not in picked and np.isfinite(energy[i])])
    drawn = rng.choice(rest, min(len(rest), cfg.diagnosis_candidates - n), replace=False)
    chosen = np.concatenate([picked, drawn]).astype(int)
    steps = plans[chosen].reshape(len(chosen), -1, cem.action_low.size)  # (C, H * k, A)
    true = np.asarray(oracle_cost_fn(env)(steps), np.float64)  # (C,) at the plan's end
    threshold = float(env.get_wrapper_attr("task_distance").threshold)
    diagnosis = ranking(energy[chosen], true, threshold) | {"candidates": len(chosen)}
    return Search(steps[:n], energy[chosen[:n]], true[:n], diverse, diagnosis)


def negative_figures(attrs: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """A round's hard-negative and diagnosis figures from its recorded negatives' attrs (the
    diagnosis is stored on each start's imagined favourite, rank 0)."""
    starts = [a for a in attrs if a["rank"] == 0]
    spearman = [a["diag_spearman"] for a in starts if np.isfinite(a["diag_spearman"])]
    return {
        "episodes": len(attrs),
        "starts": len(starts),
        "candidates_per_start": int(np.mean([a["diag_candidates"] for a in starts])),
        "spearman": float(np.mean(spearman)) if spearman else None,
        "dist_imagined_favourite": float(np.mean([a["diag_dist_energy_argmin"] for a in starts])),
        "dist_real_favourite": float(np.mean([a["diag_dist_best"] for a in starts])),
        "imagined_favourite_fails": float(np.mean([a["diag_energy_argmin_fails"] for a in starts])),
        # how often a hard negative is no negative: it reaches the goal for real
        "negatives_reach_goal": float(np.mean([a["plan_distance"] <= threshold for a in attrs])),
        "diverse_starts": sum(bool(a["diverse"]) for a in starts),
    }
