"""Config of `wm-pretrain` (V-JEPA pretraining of the tiny encoder), schema of
`configs/pretrain.yaml`."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from world_model.config import TUBELET_SIZE, EncoderConfig
from world_model.training.config import OptimConfig


@dataclass
class PretrainConfig:
    """V-JEPA objective on recorded sim video; exports a `save_pretrained` encoder folder."""

    data: list[str] = field(default_factory=list)
    """HDF5 datasets whose pixels are the pretraining video; required."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Architecture of the tiny VJEPA2Model's encoder (the one a world model then keeps)."""
    pred_hidden_size: int = 64
    """Width of the V-JEPA pretraining predictor (not part of the exported encoder)."""
    pred_num_layers: int = 2
    """Depth of the V-JEPA pretraining predictor."""
    pred_num_heads: int = 4
    """Heads of the V-JEPA pretraining predictor."""
    out_dir: str = "runs/pretrain"
    """Run directory; the encoder lands in `out_dir/encoder` (use it as encoder.source)."""
    steps: int = 300
    """Optimizer steps."""
    batch_size: int = 16
    """Clips per step."""
    frames_per_clip: int = 4
    """Frames per clip (a multiple of the tubelet size; 4 frames = 2 time slices)."""
    mask_blocks: list[int] = field(default_factory=lambda: [4, 2])
    """Rectangles per target mask, one entry per mask set (V-JEPA: short- and long-range)."""
    mask_scales: list[float] = field(default_factory=lambda: [0.1, 0.3])
    """Fraction of the token grid each rectangle covers, one entry per mask set."""
    ema_start: float = 0.996
    """EMA momentum of the target encoder at step 0 (V-JEPA 0.99925 at scale; small runs move faster)."""
    ema_end: float = 1.0
    """EMA momentum at the last step (linear ramp)."""
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=5e-4, warmup_steps=30, decay_steps=100)
    )
    """AdamW and warmup/constant/decay schedule."""
    sigreg_weight: float = 0.0
    """Weight of SIGReg (world_model/training/sigreg.py) on the context encoder's token embeddings,
    added to the JEPA L1 loss; 0 = plain V-JEPA, LeWM uses 0.1. Why: without it the tiny
    encoder's features carry little more than a random init's (docs/experiments.md)."""
    sigreg_proj: int = 256
    """Random directions per SIGReg call (LeWM: flat from 64 to 1024)."""
    seed: int = 0
    """Seeds clip and mask sampling."""
    log_every: int = 10
    """Steps between TensorBoard scalars."""
    ckpt_every: int = 100
    """Steps between exports of the EMA encoder."""
    num_threads: int = 0
    """torch CPU threads; 0 leaves torch's default (1 is fastest on a shared, busy CPU)."""

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        self.data, self.mask_blocks, self.mask_scales = (
            list(self.data),
            list(self.mask_blocks),
            list(self.mask_scales),
        )
        if self.frames_per_clip % TUBELET_SIZE:
            raise ValueError(
                f"pretrain.frames_per_clip={self.frames_per_clip} is not a multiple of the "
                f"tubelet size {TUBELET_SIZE}"
            )
        if len(self.mask_blocks) != len(self.mask_scales) or not self.mask_blocks:
            raise ValueError(
                f"pretrain.mask_blocks={self.mask_blocks} and mask_scales={self.mask_scales} must pair up"
            )
        if any(not 0 < s < 1 for s in self.mask_scales):
            raise ValueError(f"pretrain.mask_scales={self.mask_scales} must be in (0, 1)")
        if not 0 <= self.ema_start <= self.ema_end <= 1:
            raise ValueError(
                f"pretrain.ema_start={self.ema_start}, ema_end={self.ema_end}: need 0 <= start <= end <= 1"
            )
        if self.sigreg_weight < 0 or self.sigreg_proj < 1:
            raise ValueError(
                f"pretrain.sigreg_weight={self.sigreg_weight} must be >= 0 and "
                f"sigreg_proj={self.sigreg_proj} >= 1"
            )
        for name in ("steps", "batch_size", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"pretrain.{name}={getattr(self, name)} must be >= 1")


def register_configs() -> None:
    ConfigStore.instance().store(name="pretrain_schema", node=PretrainConfig)
