"""Frozen V-JEPA 2 video encoder: frames -> normalised patch latents.

Both backends are transformers' own `VJEPA2Model` encoder (the `tiny` one is a small config
that `wm-pretrain` trains), so there is one class, one loading path and one checkpoint format.
Resize, ImageNet normalisation, per-frame tubelet duplication, latent pooling and the
non-affine LayerNorm happen in `FrozenEncoder.forward` and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn
from transformers import VJEPA2Config, VJEPA2Model
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

from world_model.config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INIT_SEED,
    LAYERNORM_EPS,
    MLP_RATIO,
    TUBELET_SIZE,
    EncoderConfig,
)
from world_model.model.official import load_official_encoder


class FrozenEncoder(nn.Module):
    """`(B, T, 3, H, W)` uint8 or float in [0, 1] -> latents `(B, T, N, D)` float32."""

    def __init__(self, backbone: VJEPA2Encoder, hf_config: VJEPA2Config, cfg: EncoderConfig):
        super().__init__()
        if hf_config.crop_size != cfg.crop_size or hf_config.patch_size != cfg.patch_size:
            raise ValueError(
                f"encoder weights are for crop {hf_config.crop_size} / patch {hf_config.patch_size},"
                f" config says crop {cfg.crop_size} / patch {cfg.patch_size}"
            )
        self.backbone = backbone.requires_grad_(False).eval()
        self.hf_config = hf_config
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def grid(self) -> int:
        """Side of the latent token grid after pooling (1 for the pooled layout)."""
        if self.cfg.latent_layout == "pooled":
            return 1
        return self.cfg.crop_size // self.cfg.patch_size // self.cfg.latent_pool

    @property
    def num_tokens(self) -> int:
        return self.grid**2

    @property
    def dim(self) -> int:
        return self.hf_config.hidden_size

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Stay in eval mode: the encoder is frozen (no dropout / drop-path at any time)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, frames: Tensor) -> Tensor:
        b, t = frames.shape[:2]
        flat = rearrange(frames, "b t c h w -> (b t) c h w")
        chunks = [self._encode_frames(c) for c in flat.split(self.cfg.encode_batch)]
        return rearrange(torch.cat(chunks), "(b t) n d -> b t n d", b=b, t=t)

    def _encode_frames(self, frames: Tensor) -> Tensor:
        """`(F, 3, H, W)` -> `(F, N, D)`; the one place that defines what a latent is."""
        dtype = getattr(torch, self.cfg.dtype)
        x = frames.to(self.mean.device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        size = self.cfg.crop_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        x = (x - self.mean) / self.std
        # Each frame alone fills a whole tubelet (V-JEPA 2-AC): (F, tubelet, 3, H, W).
        x = repeat(x, "f c h w -> f k c h w", k=self.hf_config.tubelet_size).to(dtype)
        tokens = self.backbone(pixel_values_videos=x).last_hidden_state.float()  # (F, g*g, D)
        pool = self.cfg.latent_pool
        if self.cfg.latent_layout == "pooled":
            tokens = tokens.mean(1, keepdim=True)  # (F, 1, D): one vector per frame
        elif pool > 1:
            side = size // self.cfg.patch_size
            grid = rearrange(tokens, "f (h w) d -> f d h w", h=side, w=side)
            tokens = rearrange(F.avg_pool2d(grid, pool), "f d h w -> f (h w) d")  # (F, N, D)
        return F.layer_norm(tokens, (tokens.shape[-1],), eps=LAYERNORM_EPS)


JEPA_PREDICTOR = (64, 2, 4)
"""(width, depth, heads) of the V-JEPA pretraining predictor inside a tiny `VJEPA2Model`; only
`wm-pretrain` trains it (with its own sizes), a world model keeps the encoder alone."""


def tiny_hf_config(
    cfg: EncoderConfig, predictor: tuple[int, int, int] = JEPA_PREDICTOR
) -> VJEPA2Config:
    """The small `VJEPA2Config` described by the encoder config (random init / pretraining)."""
    width, depth, heads = predictor
    return VJEPA2Config(
        patch_size=cfg.patch_size,
        crop_size=cfg.crop_size,
        frames_per_clip=TUBELET_SIZE,
        tubelet_size=TUBELET_SIZE,
        hidden_size=cfg.hidden_size,
        num_attention_heads=cfg.num_heads,
        num_hidden_layers=cfg.num_layers,
        mlp_ratio=MLP_RATIO,
        pred_hidden_size=width,
        pred_num_attention_heads=heads,
        pred_num_hidden_layers=depth,
    )


def build_vjepa2_model(
    cfg: EncoderConfig, predictor: tuple[int, int, int] = JEPA_PREDICTOR
) -> VJEPA2Model:
    """Full `VJEPA2Model` (encoder + JEPA predictor `(width, depth, heads)`) with a seeded
    random init (pretraining)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        return VJEPA2Model(tiny_hf_config(cfg, predictor))


def load_backbone(cfg: EncoderConfig) -> tuple[VJEPA2Encoder, VJEPA2Config]:
    """Resolve `cfg.source` into encoder weights: None, a folder, or an official file."""
    if cfg.source is None:
        model = build_vjepa2_model(cfg)
        return model.encoder, model.config
    path = Path(cfg.source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a save_pretrained folder")
        model = VJEPA2Model.from_pretrained(path, local_files_only=True, use_safetensors=None)
        return model.encoder, model.config
    if path.is_file():
        return load_official_encoder(path, cfg)
    raise FileNotFoundError(f"encoder source {path} does not exist")


def build_encoder(cfg: EncoderConfig) -> FrozenEncoder:
    """Frozen encoder on `cfg.device` in `cfg.dtype`."""
    backbone, hf_config = load_backbone(cfg)
    enc = FrozenEncoder(backbone, hf_config, cfg)
    enc = enc.to(device=cfg.device, dtype=getattr(torch, cfg.dtype))
    enc.mean, enc.std = enc.mean.float(), enc.std.float()  # constants stay float32
    return enc
