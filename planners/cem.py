"""Cross-entropy method over action sequences, in the style of V-JEPA 2-AC's planner.

V-JEPA 2 (arXiv 2506.09985, Sec. 4 "Planning") minimises the L1 energy between the predicted and
the goal latent with CEM: sample Gaussian action sequences, keep the top-k, refit mean and std
(with momentum in the released code), repeat, execute the first action of the mean. Ours adds
per-dimension bounds (no max-norm: clamping each step's norm measured no gain on the cube,
docs/experiments.md), the incumbent mean kept as a candidate, and a warm start from the shifted
previous plan (TD-MPC2, Hansen et al. 2024).
"""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import SamplingPlanner, elite_mask
from planners.config import CEMConfig


class CEMPlanner(SamplingPlanner):
    """Batched CEM; the loop (sample -> score -> elites -> refit) lives in `SamplingPlanner.plan`.

    Example:
        planner = CEMPlanner(CEMConfig(action_low=[-1.0, -1.0], action_high=[1.0, 1.0]))
        actions = planner.plan(lambda a: a.square().sum((-1, -2)), num_envs=4)  # (4, H, 2)
    """

    cfg: CEMConfig

    def __init__(self, cfg: CEMConfig, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(cfg, device, seed)

    def _refit(
        self, elites: Tensor, elite_costs: Tensor, mean: Tensor, std: Tensor, iteration: int
    ) -> tuple[Tensor, Tensor]:
        """Momentum-smoothed Gaussian fit to the finite elites.

        elites (E, K, H, A), elite_costs (E, K), mean/std (E, H, A) -> new mean, std (E, H, A).
        mu <- m * mu + (1 - m) * mean(elites); sigma likewise, floored at min_std so
        the search never collapses onto a single point before the last iteration.
        """
        weight = elite_mask(elite_costs).to(elites.dtype)[:, :, None, None]  # (E, K, 1, 1)
        count = weight.sum(1).clamp_min(1.0)  # (E, 1, 1)
        elite_mean = (weight * elites).sum(1) / count  # (E, H, A)
        elite_var = (weight * (elites - elite_mean.unsqueeze(1)).square()).sum(1) / count
        m = self.cfg.momentum
        new_mean = m * mean + (1 - m) * elite_mean
        new_std = m * std + (1 - m) * elite_var.sqrt()
        return new_mean, torch.maximum(new_std, self._min_std())
