"""Training config for `wm-train`, registered in Hydra's ConfigStore as the schema of
`configs/train.yaml`; the world-model architecture comes from the `world_model` group
(`configs/world_model/*.yaml`, schema `WorldModelConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from envs.lerobot.layout import LeRobotKeys
from world_model.config import WorldModelConfig


@dataclass
class OptimConfig:
    """AdamW with linear warmup -> constant -> linear decay (V-JEPA 2-AC schedule, shortened)."""

    lr: float = 3e-3
    """Peak learning rate (official 4.25e-4 at batch 256; the tiny predictor learns faster at 3e-3:
    held-out one-step error / copy-last 0.72 vs 0.77 at 1e-3 after 800 steps)."""
    start_lr: float = 1e-4
    """Learning rate at step 0, ramped linearly to `lr` over `warmup_steps` (official 7.5e-5)."""
    final_lr: float = 0.0
    """Learning rate reached at the end of the decay."""
    warmup_steps: int = 100
    """Linear warmup length in optimizer steps."""
    decay_steps: int = 1000
    """Length of the final linear decay; the steps in between are constant."""
    weight_decay: float = 0.04
    """AdamW weight decay (official 0.04)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables."""

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.start_lr < 0 or self.final_lr < 0:
            raise ValueError(
                f"optim lr={self.lr}, start_lr={self.start_lr}, final_lr={self.final_lr}"
            )
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ValueError(
                f"optim warmup_steps={self.warmup_steps}, decay_steps={self.decay_steps}"
            )
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError(f"optim grad_clip={self.grad_clip}, weight_decay={self.weight_decay}")
        self.betas = tuple(self.betas)


@dataclass
class TrainConfig:
    """Everything `wm-train` needs; derived values are returned, never written back here."""

    data: list[str] = field(default_factory=list)
    """Datasets to train on; required: HDF5 files (envs.dataset layout) or LeRobot v3
    directories (envs.lerobot), read by the `lerobot` keys."""
    lerobot: LeRobotKeys = field(default_factory=LeRobotKeys)
    """Camera, state and action features of the LeRobot directories in `data`, and the
    square image size their frames are cropped and resized to."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """Encoder (frozen, weights from `world_model.encoder.source`) and predictor architecture."""
    out_dir: str = "runs/wm"
    """Run directory: TensorBoard events, `checkpoints/`, final `world_model/`."""
    cache_dir: str = "runs/latent_cache"
    """Where encoder latents are cached, keyed by dataset content + encoder weights hash."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 32
    """Global batch (clips per step), split evenly across DDP ranks."""
    clip_len: int = 4
    """Frames per training clip (official 8); needs >= auto_steps + 1."""
    auto_steps: int = 2
    """Rollout-loss steps: predictions fed back as inputs, gradient flows through (official 2).
    With `world_model.objective=lewm`: open-loop blocks after the `world_model.history` context
    (set it to the planner's horizon)."""
    sigreg_weight: float = 0.1
    """`lewm` only: weight of SIGReg against the prediction MSE (LeWM: 0.1; 0.01-0.2 work,
    0.5 collapses)."""
    sigreg_proj: int = 1024
    """`lewm` only: random directions per SIGReg call (LeWM: 1024, flat from 64)."""
    idm_weight: float = 0.0
    """`lewm` only: weight of an inverse-dynamics loss (predict each block's actions from the
    latents before and after it; PLDM). Measured here: without it the end-to-end latents on
    reacher barely moved within an episode (copy-last MSE 0.005 per block) and the predictor
    never beat copy-last. 0 = LeWM's two losses only."""
    encoder_from: str | None = None
    """`lewm` only: a trained lewm checkpoint whose encoder is kept *frozen*; only a fresh
    predictor (`world_model.predictor`, `action_block`, `history`) trains, on latents encoded
    once (eval-mode BatchNorm, as the planner sees them) and kept in memory. Why: measured with
    bench/plan_diagnosis, the end-to-end latent already orders plans by true distance (Spearman
    0.77-0.81 on real final frames) while the imagined ones do not (0.53-0.55): the predictor is
    the limit, and without the encoder in the loop it trains ~10x more steps per CPU second.
    The encoder config comes from that checkpoint; SIGReg and the inverse-dynamics loss, which
    shape the encoder, are off."""
    init_from: str | None = None
    """A saved world model (same architecture) whose weights this run starts from, with a fresh
    optimizer and schedule: continue a shipped model's training on more steps or data."""
    sigreg_over: str = "step"
    """`lewm` only: the sample set SIGReg tests. `step`: each time step's batch on its own
    (LeWM); `clip`: all frames of the batch at once. With a CPU-sized batch (32-64 clips) a
    per-step test sees too few samples to notice a low-rank latent (measured: effective rank
    6 of 192 at batch 32); pooling the time steps gives it batch x clip_len samples."""
    sigreg_within: float = 0.0
    """`lewm` only: weight (relative to `sigreg_weight`) of a second SIGReg on the latents minus
    their clip's mean, i.e. on what changes within a clip. Across episodes the plain test can be
    met by episode-constant scenery alone (reacher's target, measured: an episode-constant
    latent the predictor copies); this one asks the moving parts for unit variance too.
    Measured (bench/results/probe*.md): reacher fingertip probe R^2 -0.48 -> 0.67; but on the
    Panda tasks the latent moved to the arm and lost the cube (R^2 0.89 -> 0.52), so it is off
    by default. 0 = LeWM's SIGReg only."""
    motion_weight: float = 0.0
    """`lewm` only: weight each predicted transition by 1 + motion_weight x its latent change
    relative to the batch mean (world_model/lewm.py `motion_weights`), so the rarer moves of an
    object in contact count more than the arm's every-step motion. Pixels only. 0 = plain mean."""
    position_weight: float = 0.0
    """`lewm` only, PRIVILEGED TRAINING LABELS: weight of a loss that reads the task positions
    (cube, end effector: the env's `task_positions`, from the datasets' simulator states) from
    encoded, teacher-forced and open-loop predicted latents through a linear head saved with
    the model (`world_model.position_dims`). It asks the predictor to carry the object's
    contact motion explicitly. 0 = pixels only (LeWM, C-JEPA), the headline recipe."""
    slot_mask_ratio: float = 0.0
    """`lewm` with `world_model.encoder.latent_layout=slots` only: share of each clip's object
    slots whose teacher-forced inputs at steps t >= 1 are replaced by a learned mask token
    (C-JEPA object-level masking; step 0 stays as the slot's identity anchor). Their next
    latents must then be inferred from the other objects. 0 = no masking."""
    oversample_moving: float = 1.0
    """Sampling weight of training clips in which *every* task position (Panda: end effector
    and cube; envs/distance.py) moves by more than `moving_threshold`, against 1 for the rest;
    1 = uniform clips, as before. Meant to teach contact; measured, it does not help here:
    in the shipped lewm data 35 % of the 15-step clips already move the cube > 3 cm, and x4
    (69 % of each batch) lowered protocol=dataset success (push 0.44 -> 0.24, pick-place
    0.38 -> 0.28 held at the end, bench/results/success.md). Needs simulator states."""
    moving_threshold: float = 0.01
    """Displacement (the env's distance unit, m for Panda) above which a task position counts
    as moving within a clip, for `oversample_moving`."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation (by a seeded episode permutation)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    seed: int = 0
    """Seeds init, data order and the held-out split."""
    device: str = "cpu"
    """`cpu` or `cuda`; under torchrun each rank uses `cuda:<LOCAL_RANK>`."""
    bf16: bool = True
    """bf16 autocast on CUDA only (on CPU it is slower than float32, so it is never used)."""
    log_every: int = 50
    """Steps between TensorBoard scalars / progress-bar updates."""
    val_every: int = 500
    """Steps between validation passes (teacher-forcing + rollout errors per horizon step)."""
    ckpt_every: int = 500
    """Steps between resumable checkpoints."""
    keep_checkpoints: int = 2
    """Resumable checkpoints to keep (oldest deleted)."""
    resume: bool = True
    """Continue from `out_dir/checkpoints/latest` when it exists."""
    num_threads: int = 0
    """torch CPU threads per process; 0 leaves torch's default. On a CPU shared with other busy
    processes use 1: oversubscribed OpenMP threads made steps ~10x slower here."""

    def __post_init__(self) -> None:
        if isinstance(self.world_model, dict):
            self.world_model = WorldModelConfig(**self.world_model)
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        if isinstance(self.lerobot, dict):
            self.lerobot = LeRobotKeys(**self.lerobot)
        self.data = list(self.data)
        for name in (
            "steps",
            "batch_size",
            "log_every",
            "val_every",
            "ckpt_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)} must be >= 1")
        if self.auto_steps < 1 or self.clip_len < self.auto_steps + 1:
            raise ValueError(
                f"train.clip_len={self.clip_len} must be >= auto_steps + 1 (auto_steps={self.auto_steps})"
            )
        if self.sigreg_weight < 0 or self.sigreg_proj < 1:
            raise ValueError(
                f"train.sigreg_weight={self.sigreg_weight} must be >= 0 and "
                f"sigreg_proj={self.sigreg_proj} >= 1"
            )
        for name in ("sigreg_within", "idm_weight"):  # terms that only shape the encoder
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"train.{name}={value} must be >= 0")
            if self.encoder_from is not None and value > 0:
                raise ValueError(
                    f"train.encoder_from freezes the encoder: train.{name} > 0 would train "
                    "nothing (set it to 0)"
                )
        for name in ("motion_weight", "position_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"train.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.slot_mask_ratio < 1.0:
            raise ValueError(f"train.slot_mask_ratio={self.slot_mask_ratio} must be in [0, 1)")
        layout = self.world_model.encoder.latent_layout
        if self.slot_mask_ratio > 0 and layout != "slots" and self.encoder_from is None:
            raise ValueError(
                f"train.slot_mask_ratio={self.slot_mask_ratio} masks object slots: it needs "
                f"world_model.encoder.latent_layout=slots, not {layout!r}"
            )
        if self.sigreg_over not in ("step", "clip"):
            raise ValueError(f"train.sigreg_over={self.sigreg_over!r}; expected step or clip")
        if not (self.oversample_moving >= 1.0 and self.moving_threshold > 0):
            raise ValueError(
                f"train.oversample_moving={self.oversample_moving} must be >= 1 (1 = uniform) "
                f"and moving_threshold={self.moving_threshold} > 0"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"train.val_fraction={self.val_fraction} must be in [0, 1)")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r}; expected cpu or cuda")


def register_configs() -> None:
    """Register the schemas so YAML typos and wrong types fail when Hydra composes."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="world_model", name="world_model_schema", node=WorldModelConfig)
