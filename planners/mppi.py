"""Model predictive path integral control over action sequences.

MPPI (Williams et al. 2017, "Information theoretic MPC", Alg. 2) replaces CEM's hard elite
average by an exponentially weighted one, w_i ~ exp(-(c_i - c_min) / lambda). Following
TD-MPC2's latent MPPI we iterate the update a few times per action and may restrict it to the
top-k candidates; the sampling std follows a fixed decaying schedule instead of being refit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import SamplingPlanner, elite_mask
from planners.config import MPPIConfig


class MPPIPlanner(SamplingPlanner):
    """Batched MPPI; the loop (sample -> score -> elites -> refit) lives in `SamplingPlanner.plan`.

    Example:
        planner = MPPIPlanner(MPPIConfig(action_low=[-1.0, -1.0], action_high=[1.0, 1.0]))
        actions = planner.plan(lambda a: a.square().sum((-1, -2)), num_envs=4)  # (4, H, 2)
    """

    cfg: MPPIConfig

    def __init__(self, cfg: MPPIConfig, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(cfg, device, seed)

    def _sample_std(self, iteration: int) -> Tensor:
        """Noise schedule: sigma_i = max(init_std * decay^i, min_std) * half-range, `(A,)`."""
        scale = max(self.cfg.init_std * self.cfg.noise_decay**iteration, self.cfg.min_std)
        return scale * self.bounds.half_range

    def _refit(
        self, elites: Tensor, elite_costs: Tensor, mean: Tensor, std: Tensor, iteration: int
    ) -> tuple[Tensor, Tensor]:
        """Temperature-weighted mean of the elites; std comes from the schedule.

        elites (E, K, H, A), elite_costs (E, K) sorted ascending -> new mean, std (E, H, A).
        Costs are shifted by the best and divided by the spread of the finite elite costs, so
        `temperature` is scale-free: learned energies differ by orders of magnitude across models.
        """
        finite = elite_mask(elite_costs).bool()  # (E, K)
        best = elite_costs[:, :1]  # (E, 1) topk sorts ascending
        worst = elite_costs.masked_fill(~finite, float("-inf")).amax(1, keepdim=True)  # (E, 1)
        spread = (worst - best).clamp_min(1e-12) if self.cfg.normalize_costs else 1.0
        z = (elite_costs - best) / (spread * self.cfg.temperature)  # (E, K), +inf stays +inf
        z = z.nan_to_num(nan=float("inf"))  # inf / inf when the spread itself overflows
        weight = (-z).softmax(dim=1).nan_to_num(0.0).to(elites.dtype)  # (E, K); exp(-inf) = 0
        target = (weight[:, :, None, None] * elites).sum(1)  # (E, H, A)
        m = self.cfg.momentum
        new_mean = m * mean + (1 - m) * target
        return new_mean, self._sample_std(iteration + 1).expand_as(std)
