"""SIGReg and effective rank: Gaussian batches score low, collapsed ones high, gradients flow."""

import pytest
import torch

from world_model.training.sigreg import SIGReg, effective_rank


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_batch_scores_near_its_expected_value():
    reg = SIGReg(num_proj=256)
    z = torch.randn(8, 256, 64, generator=gen(0))  # 8 time steps x 256 samples x D 64
    value = reg(z, generator=gen(1)).item()
    # E[EP] = 2 * int_0^3 (1 - e^{-t^2}) e^{-t^2/2} dt ~= 1.05 for Gaussian samples
    assert 0.7 < value < 1.4


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.zeros(256, 64),  # fully collapsed
        lambda: torch.randn(256, 2, generator=gen(2)) @ torch.randn(2, 64, generator=gen(3)),
        lambda: torch.randn(256, 64, generator=gen(4)) * 0.05,  # shrunk towards a point
        lambda: torch.randn(256, 64, generator=gen(5)) + 3.0,  # shifted mean
    ],
    ids=["constant", "rank2", "shrunk", "shifted"],
)
def test_collapsed_or_off_gaussian_batches_score_high(make):
    reg = SIGReg(num_proj=256)
    gaussian = reg(torch.randn(256, 64, generator=gen(6)), generator=gen(7)).item()
    bad = reg(make(), generator=gen(7)).item()
    assert bad > 10 * gaussian


def test_differentiable_and_gradient_restores_spread():
    reg = SIGReg(num_proj=64)
    z = (torch.randn(128, 16, generator=gen(8)) * 0.1).requires_grad_()
    opt = torch.optim.Adam([z], lr=0.02)
    before = reg(z, generator=gen(9)).item()
    for step in range(200):
        opt.zero_grad()
        loss = reg(z, generator=gen(100 + step))
        loss.backward()
        opt.step()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert reg(z, generator=gen(9)).item() < 0.2 * before
    assert 0.5 < z.detach().std().item() < 1.5


def test_rejects_single_sample():
    with pytest.raises(ValueError, match="n >= 2"):
        SIGReg()(torch.randn(1, 8))


def test_effective_rank():
    assert effective_rank(torch.randn(4000, 32, generator=gen(10))) > 30
    line = torch.randn(500, 1, generator=gen(11)) * torch.ones(1, 32)
    assert effective_rank(line) < 1.01
