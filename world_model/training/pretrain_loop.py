"""V-JEPA pretraining of the `tiny` encoder (transformers' VJEPA2Model, small config).

Objective (V-JEPA): the context encoder sees only the context tokens of a clip; the model's
own JEPA predictor, given their positions and mask tokens at the target positions, predicts
the target tokens' representations from an EMA target encoder (layer-normed, no gradient);
L1 loss. The EMA target encoder is what is exported (official V-JEPA practice).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from tqdm import tqdm
from transformers import VJEPA2Model
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

from envs.data.storage import atomic_dir
from world_model.config import IMAGENET_MEAN, IMAGENET_STD, TUBELET_SIZE
from world_model.model.encoder import build_vjepa2_model
from world_model.training.config import GRAD_CLIP, WEIGHT_DECAY
from world_model.training.latents import iter_dataset_episodes
from world_model.training.masks import tube_masks
from world_model.training.pretrain_config import PretrainConfig
from world_model.training.sigreg import SIGReg
from world_model.training.train_state import lr_at


def load_videos(paths: list[str]) -> list[np.ndarray]:
    """Pixels of every episode, `(L + 1, H, W, 3)` uint8 each (small sim datasets fit in RAM)."""
    return [np.asarray(ep.pixels) for p in paths for ep in iter_dataset_episodes(p)]


def sample_clips(videos: list[np.ndarray], batch: int, frames: int, gen: torch.Generator) -> Tensor:
    """Random clips -> `(B, T, 3, H, W)` uint8."""
    ok = [v for v in videos if len(v) >= frames]
    if not ok:
        raise ValueError(f"no episode has {frames} frames")
    out = []
    for _ in range(batch):
        v = ok[int(torch.randint(len(ok), (1,), generator=gen))]
        t0 = int(torch.randint(len(v) - frames + 1, (1,), generator=gen))
        out.append(torch.from_numpy(v[t0 : t0 + frames]))
    return rearrange(torch.stack(out), "b t h w c -> b t c h w")


def preprocess(clips: Tensor, cfg: PretrainConfig) -> Tensor:
    """uint8 clips -> normalised float `(B, T, 3, S, S)`, same recipe as `FrozenEncoder`."""
    b, t = clips.shape[:2]
    x = rearrange(clips, "b t c h w -> (b t) c h w").float() / 255.0
    size = cfg.encoder.crop_size
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return rearrange((x - mean) / std, "(b t) c h w -> b t c h w", b=b, t=t)


def context_encode(
    encoder: VJEPA2Encoder, x: Tensor, ctx: Tensor, sigreg: SIGReg | None = None
) -> tuple[Tensor, Tensor]:
    """Encode only the context tokens `ctx (B, n_ctx)` of clips `x` -> (`(B, n_ctx, D)`, SIGReg
    of the tokens before the final LayerNorm, 0 without `sigreg`). The LayerNorm pins every
    token to a sphere, which a Gaussian test would fight, so the test sees what feeds it."""
    tokens = encoder.embeddings(x)  # (B, N, D)
    h = torch.gather(tokens, 1, ctx[..., None].expand(-1, -1, tokens.shape[-1]))  # (B, n_ctx, D)
    for layer in encoder.layer:
        h = layer(h, position_mask=ctx)[0]
    reg = sigreg(h.flatten(0, 1)) if sigreg is not None else h.new_zeros(())  # B * n_ctx samples
    return encoder.layernorm(h), reg


def jepa_loss(
    model: VJEPA2Model,
    target: VJEPA2Encoder,
    x: Tensor,
    masks: list[tuple[Tensor, Tensor]],
    sigreg: SIGReg | None = None,
    sigreg_weight: float = 0.0,
) -> Tensor:
    """Mean over mask sets of the L1 between predicted and EMA-target representations, plus
    `sigreg_weight` x SIGReg of the context tokens (LeJEPA / LeWM's anti-collapse term)."""
    b = x.shape[0]
    with torch.no_grad():
        h = target(pixel_values_videos=x).last_hidden_state  # (B, N, D)
        h = F.layer_norm(h, (h.shape[-1],))
    losses = []
    for ctx_idx, tgt_idx in masks:
        ctx = ctx_idx.expand(b, -1)  # (B, n_ctx)
        tgt = tgt_idx.expand(b, -1)  # (B, n_tgt)
        z, reg = context_encode(model.encoder, x, ctx, sigreg if sigreg_weight > 0 else None)
        # the HF predictor gathers context tokens itself: scatter them into a full-size tensor
        full = z.new_zeros(h.shape).scatter(1, ctx[..., None].expand_as(z), z)  # (B, N, D)
        pred = model.predictor(encoder_hidden_states=full, context_mask=[ctx], target_mask=[tgt])
        h_t = torch.gather(h, 1, tgt[..., None].expand(-1, -1, h.shape[-1]))  # (B, n_tgt, D)
        losses.append((pred.last_hidden_state - h_t).abs().mean() + sigreg_weight * reg)
    return torch.stack(losses).mean()


@torch.no_grad()
def ema_update(target: VJEPA2Encoder, online: VJEPA2Encoder, momentum: float) -> None:
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)


def export_encoder(model: VJEPA2Model, target: VJEPA2Encoder, path: Path) -> None:
    """`save_pretrained` folder whose encoder is the EMA target (what `encoder.source` loads)."""
    export = copy.deepcopy(model)
    export.encoder.load_state_dict(target.state_dict())
    atomic_dir(path, export.save_pretrained)


def pretrain(cfg: PretrainConfig, videos: list[np.ndarray] | None = None) -> Path:
    """Run V-JEPA pretraining; returns the exported encoder folder."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    videos = videos if videos is not None else load_videos(cfg.data)
    model = build_vjepa2_model(
        cfg.encoder, (cfg.pred_hidden_size, cfg.pred_num_layers, cfg.pred_num_heads)
    )
    target = copy.deepcopy(model.encoder).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(cfg.seed)
    sigreg = SIGReg(cfg.sigreg_proj)
    grid = cfg.encoder.crop_size // cfg.encoder.patch_size
    slices = cfg.frames_per_clip // TUBELET_SIZE
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    bar = tqdm(range(cfg.steps), desc="wm-pretrain")
    for step in bar:
        lr = lr_at(step, cfg.optim, cfg.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x = preprocess(sample_clips(videos, cfg.batch_size, cfg.frames_per_clip, gen), cfg)
        masks = [
            tube_masks(slices, grid, n, s, gen)
            for n, s in zip(cfg.mask_blocks, cfg.mask_scales, strict=True)
        ]
        loss = jepa_loss(model, target, x, masks, sigreg, cfg.sigreg_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        momentum = cfg.ema_start + (cfg.ema_end - cfg.ema_start) * step / max(1, cfg.steps - 1)
        ema_update(target, model.encoder, momentum)
        if (step + 1) % cfg.log_every == 0:
            writer.add_scalar("pretrain/loss", loss.item(), step + 1)
            writer.add_scalar("pretrain/lr", lr, step + 1)
            writer.add_scalar("pretrain/ema", momentum, step + 1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            export_encoder(model, target, out / "encoder")
    writer.close()
    (out / "pretrain_config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    return out / "encoder"
