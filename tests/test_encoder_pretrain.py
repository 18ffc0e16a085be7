"""wm-pretrain: tube masks, context-only encoding, EMA, export loadable as encoder.source."""

from __future__ import annotations

from dataclasses import replace

import torch

from tests.synthetic import synthetic_episodes
from world_model.config import EncoderConfig
from world_model.model.encoder import build_encoder, build_vjepa2_model
from world_model.training.config import OptimConfig
from world_model.training.masks import tube_masks
from world_model.training.pretrain_config import PretrainConfig
from world_model.training.pretrain_loop import context_encode, pretrain

ENC = EncoderConfig(crop_size=16, patch_size=4, hidden_size=16, num_layers=1, num_heads=2)
PRED = {"pred_hidden_size": 16, "pred_num_layers": 1, "pred_num_heads": 2}  # the JEPA predictor


def test_tube_masks_partition_and_repeat_over_time():
    gen = torch.Generator().manual_seed(0)
    ctx, tgt = tube_masks(2, 4, num_blocks=2, scale=0.2, gen=gen)
    assert len(ctx) + len(tgt) == 32 and len(tgt) > 0 and len(ctx) > 0
    assert set(ctx.tolist()).isdisjoint(tgt.tolist())
    first = {i for i in tgt.tolist() if i < 16}
    assert {i - 16 for i in tgt.tolist() if i >= 16} == first  # same spatial block in both slices


def test_context_encoder_ignores_target_tokens():
    """Changing pixels under the target tube must not change the context representations."""
    model = build_vjepa2_model(ENC, (16, 1, 2)).eval()
    x = torch.randn(1, 2, 3, 16, 16)
    ctx = torch.arange(0, 8)[None]  # first two token rows of the 4x4 grid: rows 0-1 of pixels 0-7
    y = x.clone()
    y[..., 8:, :] += 3.0  # change only the pixels of token rows 2-3
    with torch.no_grad():
        torch.testing.assert_close(
            context_encode(model.encoder, x, ctx)[0], context_encode(model.encoder, y, ctx)[0]
        )


def test_context_sigreg_sees_collapse_and_trains_the_encoder():
    """The SIGReg term of wm-pretrain: larger for collapsed tokens, with encoder gradients."""
    from world_model.training.sigreg import SIGReg

    model = build_vjepa2_model(ENC, (16, 1, 2))
    x = torch.randn(4, 2, 3, 16, 16)
    ctx = torch.arange(0, 8)[None].expand(4, -1)
    gen = torch.Generator().manual_seed(0)
    _, reg = context_encode(model.encoder, x, ctx, SIGReg(64))
    reg.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    collapsed = SIGReg(64)(torch.ones(32, 16) + 1e-3 * torch.randn(32, 16, generator=gen))
    gaussian = SIGReg(64)(torch.randn(32, 16, generator=gen))
    assert collapsed > 10 * gaussian
    assert context_encode(model.encoder, x, ctx)[1].item() == 0.0  # off without a SIGReg


def test_pretrain_exports_a_loadable_encoder(tmp_path):
    videos = [ep.pixels for ep in synthetic_episodes(3, length=6, size=16)]
    cfg = PretrainConfig(
        encoder=ENC, **PRED, out_dir=str(tmp_path), steps=4, batch_size=2, log_every=2, ckpt_every=2,
        optim=OptimConfig(lr=1e-3, warmup_steps=1, decay_steps=1), sigreg_weight=0.1,
    )  # fmt: skip
    folder = pretrain(cfg, videos=videos)
    enc = build_encoder(replace(ENC, source=str(folder)))
    fresh = build_encoder(ENC)
    frames = torch.from_numpy(videos[0][:2]).permute(0, 3, 1, 2)[None]  # (1, 2, 3, 16, 16)
    z = enc(frames)
    assert z.shape == (1, 2, 4, 16) and torch.isfinite(z).all()
    assert not torch.allclose(z, fresh(frames))  # the EMA target moved away from the init
    assert (tmp_path / "tb").is_dir() and (tmp_path / "pretrain_config.json").is_file()


def test_probe_bench_loads_a_pretrained_encoder(tmp_path):
    """bench/probe.py's `encoder:<dir>` row is that encoder (frozen, no trained predictor)."""
    from bench.probe import load

    videos = [ep.pixels for ep in synthetic_episodes(2, length=6, size=16)]
    cfg = PretrainConfig(
        encoder=ENC, **PRED, out_dir=str(tmp_path), steps=2, batch_size=2, log_every=1, ckpt_every=2,
        optim=OptimConfig(lr=1e-3, warmup_steps=1, decay_steps=1),
    )  # fmt: skip
    folder = pretrain(cfg, videos=videos)
    model, has_predictor = load(f"encoder:{folder}")
    assert not has_predictor and not any(p.requires_grad for p in model.parameters())
    enc = build_encoder(replace(ENC, source=str(folder)))
    ours = {k: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    theirs = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
