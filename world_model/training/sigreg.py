"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA; used by LeWorldModel).

Why: an encoder trained end to end on next-latent prediction alone collapses (a constant
latent predicts itself perfectly). SIGReg pushes the batch of latents towards an isotropic
Gaussian, which rules out collapse without EMA targets or stop-gradients.

How (LeWM, arXiv 2603.19312): project the latents on M random unit directions, resampled at
every call; for each 1-D projection compute the Epps-Pulley statistic against N(0, 1),

    EP = n * integral_{-T}^{T} |ecf(t) - exp(-t^2 / 2)|^2 exp(-t^2 / 2) dt,

with ecf(t) = mean_i exp(i t x_i) the empirical characteristic function of the n samples;
the integrand is even, so it is integrated over [0, T] (T = 3) with the trapezoid rule on
`knots` points and doubled. The result is averaged over directions (and over leading dims,
e.g. time steps). For n Gaussian samples E[EP] ~= 1.05 whatever n; for a collapsed or
low-rank batch it grows linearly with n.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

T_MAX = 3.0  # upper integration limit of the characteristic-function gap (LeWM / LeJEPA)


class SIGReg(nn.Module):
    """`forward(z (..., n, D)) -> scalar`: mean Epps-Pulley statistic of `num_proj` random
    1-D projections of the `n` samples in each leading slice (e.g. one slice per time step)."""

    def __init__(self, num_proj: int = 1024, knots: int = 17) -> None:
        super().__init__()
        if num_proj < 1 or knots < 2:
            raise ValueError(f"SIGReg num_proj={num_proj} must be >= 1 and knots={knots} >= 2")
        self.num_proj = num_proj
        t = torch.linspace(0.0, T_MAX, knots)
        dt = T_MAX / (knots - 1)
        trapezoid = torch.full((knots,), 2 * dt)  # x2: the integrand is even in t
        trapezoid[[0, -1]] = dt
        gauss_cf = torch.exp(-t.square() / 2)  # characteristic function of N(0, 1)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("gauss_cf", gauss_cf, persistent=False)
        self.register_buffer("weights", trapezoid * gauss_cf, persistent=False)

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if z.ndim < 2 or z.shape[-2] < 2:
            raise ValueError(f"SIGReg needs latents (..., n >= 2, D), got {tuple(z.shape)}")
        z = z.float()
        dirs = torch.randn(z.shape[-1], self.num_proj, generator=generator, device=z.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)  # (D, M) unit directions
        xt = (z @ dirs).unsqueeze(-1) * self.t  # (..., n, M, K)
        real = xt.cos().mean(-3) - self.gauss_cf  # (..., M, K)
        imag = xt.sin().mean(-3)  # (..., M, K); the Gaussian cf is real
        gap = real.square() + imag.square()
        statistic = (gap @ self.weights) * z.shape[-2]  # (..., M)
        return statistic.mean()


def effective_rank(z: Tensor) -> float:
    """exp(entropy of the normalised covariance eigenvalues) of `z (n, D)` (Roy & Vetterli):
    D for isotropic latents, 1 for latents on a line. Used to report collapse."""
    z = z.double() - z.double().mean(0)
    eig = torch.linalg.eigvalsh(z.T @ z / max(len(z) - 1, 1)).clamp_min(0)
    p = eig / eig.sum().clamp_min(1e-30)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))
