"""Training config for `wm-train`, registered in Hydra's ConfigStore as the schema of
`configs/train.yaml`; the world-model architecture comes from the `world_model` group
(`configs/world_model/*.yaml`, schema `WorldModelConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from configs.schema import cli_schema
from envs.data.lerobot.layout import LeRobotKeys
from world_model.config import WorldModelConfig

WARMUP_START_LR = 1e-4
"""Learning rate at step 0, ramped linearly to `lr` over `warmup_steps` (official 7.5e-5)."""
WEIGHT_DECAY = 0.04
"""AdamW weight decay of weight matrices (official 0.04); biases and norms get none."""
GRAD_CLIP = 1.0
"""The global gradient norm is clipped to this value (official)."""


@dataclass
class OptimConfig:
    """AdamW with linear warmup -> constant -> linear decay (V-JEPA 2-AC schedule, shortened);
    start lr, weight decay and gradient clip are the constants above."""

    lr: float = 3e-3
    """Peak learning rate (official 4.25e-4 at batch 256); the tiny predictor learns faster at
    3e-3 than at 1e-3 (docs/experiments.md)."""
    warmup_steps: int = 100
    """Linear warmup length in optimizer steps."""
    decay_steps: int = 1000
    """Length of the final linear decay (to 0); the steps in between are constant."""
    encoder_lr_scale: float = 1.0
    """The encoder's learning rate as a fraction of `lr` (a `lewm` model's trainable encoder;
    a frozen one has nothing to scale). Fine-tuning on new data (`wm-improve`) moves the
    predictor at the full rate and the encoder slower, so the latent the planner and the
    action head read drifts little between rounds."""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim lr={self.lr} must be > 0")
        if not self.encoder_lr_scale >= 0:
            raise ValueError(f"optim encoder_lr_scale={self.encoder_lr_scale} must be >= 0")
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ValueError(
                f"optim warmup_steps={self.warmup_steps}, decay_steps={self.decay_steps}"
            )


@dataclass
class TrainConfig:
    """Everything `wm-train` needs; derived values are returned, never written back here."""

    data: list[str] = field(default_factory=list)
    """Datasets to train on; required: HDF5 files (envs.data.hdf5 layout) or LeRobot v3
    directories (envs.data.lerobot), read by the `lerobot` keys."""
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
    With a `lewm` model (`conv` encoder): open-loop blocks after the `world_model.history` context
    (set it to the planner's horizon)."""
    sigreg_weight: float = 0.1
    """`lewm` only: weight of SIGReg against the prediction MSE (LeWM: 0.1); too high a weight
    collapses the latent onto the Gaussian target (docs/experiments.md)."""
    sigreg_proj: int = 1024
    """`lewm` only: random directions per SIGReg call (LeWM: 1024)."""
    encoder_from: str | None = None
    """`lewm` only: a trained lewm checkpoint whose encoder is kept *frozen*; only a fresh
    predictor (`world_model.predictor`, `action_block`, `history`) trains, on latents encoded
    once (eval-mode BatchNorm, as the planner sees them) and kept in memory. Why: the end-to-end
    latent of real final frames already orders plans by true distance while the imagined ones
    do not (bench/plan_diagnosis.py; docs/experiments.md): the predictor is the limit, and
    without the encoder in the loop it trains many more steps per CPU second.
    The encoder config comes from that checkpoint; SIGReg, which shapes the encoder, is off."""
    init_from: str | None = None
    """A saved world model (same architecture) whose weights this run starts from, with a fresh
    optimizer and schedule: continue a shipped model's training on more steps or data."""
    sigreg_within: float = 0.0
    """`lewm` only: weight (relative to `sigreg_weight`) of a second SIGReg on the latents minus
    their clip's mean, i.e. on what changes within a clip. Across episodes the plain test can be
    met by episode-constant scenery alone (reacher's target: an episode-constant latent the
    predictor copies); this one asks the moving parts for unit variance too. Off by default:
    it lets reacher's latent see the fingertip, but on the Panda tasks the latent moves to the
    arm and loses the cube (docs/experiments.md). 0 = LeWM's SIGReg only."""
    actor_weight: float = 0.0
    """`lewm` only: > 0 trains INTACT's action head (world_model/heads/actor.py) jointly with the
    encoder and predictor, adding this weight x its NLL under the physical intent
    `z_t+1 - z_t` (gradients into the encoder; INTACT, arXiv 2607.26056: 0.10). The head is
    saved as the frozen-latent variant saves it (`actor.safetensors`, `extra.actor`), so
    `planner=direct` plans with it. 0: no head, the objective unchanged."""
    actor_goal_weight: float = 0.0
    """`lewm` only: weight of the head's NLL under the goal intent `sg(z_goal) - z_t` (INTACT:
    0.05); needs actor_weight > 0."""
    actor_goal_window: int = 25
    """Goal-intent targets lie 1 .. actor_goal_window // action_block blocks ahead, inside the
    training clip (the frozen variant's window, at block multiples; 25: the anchors' offset),
    so the clip must span it: (clip_len - 1) x action_block control steps."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation (by a seeded episode permutation)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    seed: int = 0
    """Seeds init, data order and the held-out split."""
    device: str = "cpu"
    """`cpu` or `cuda`; under torchrun each rank uses `cuda:<LOCAL_RANK>`. On CUDA the steps run
    under bf16 autocast. On a CPU training stays float32: with native bf16 (AVX-512 BF16) autocast
    measured only 1.1-1.3x faster per step (`python -m bench cpu_dtype`), and every stored
    model was trained in float32."""
    log_every: int = 50
    """Steps between TensorBoard scalars / progress-bar updates."""
    val_every: int = 500
    """Steps between validation passes (teacher-forcing + rollout errors per horizon step); each
    pass, and the last step, also writes a resumable checkpoint."""
    keep_checkpoints: int = 2
    """Resumable checkpoints to keep (oldest deleted)."""
    resume: bool = True
    """Continue from `out_dir/checkpoints/latest` when it exists."""
    num_threads: int = 0
    """torch CPU threads per process; 0 leaves torch's default. On a CPU shared with other busy
    processes use 1: oversubscribed OpenMP threads make every step much slower."""

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
        if self.sigreg_within < 0:
            raise ValueError(f"train.sigreg_within={self.sigreg_within} must be >= 0")
        if self.encoder_from is not None and self.sigreg_within > 0:
            raise ValueError(
                "train.encoder_from freezes the encoder: train.sigreg_within > 0 would train "
                "nothing (set it to 0)"
            )
        self._check_actor()
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"train.val_fraction={self.val_fraction} must be in [0, 1)")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r}; expected cpu or cuda")

    def _check_actor(self) -> None:
        """The joint action head's weights and goal window (`actor_*` fields)."""
        if not (self.actor_weight >= 0 and self.actor_goal_weight >= 0):
            raise ValueError(
                f"train.actor_weight={self.actor_weight} and actor_goal_weight="
                f"{self.actor_goal_weight} must be >= 0"
            )
        if self.actor_weight == 0:
            if self.actor_goal_weight > 0:
                raise ValueError(
                    f"train.actor_goal_weight={self.actor_goal_weight} needs actor_weight > 0 "
                    "(INTACT trains both intents: 0.10 and 0.05)"
                )
            return
        frozen = "python -m world_model.heads.actor checkpoint=DIR data=[...]"
        if self.world_model.objective != "lewm" or self.encoder_from is not None:
            raise ValueError(
                f"train.actor_weight={self.actor_weight} trains the head with the encoder (the "
                f"lewm recipe: --config-name train_lewm, no encoder_from); for a frozen encoder's "
                f"latents use {frozen}"
            )
        span = (self.clip_len - 1) * self.world_model.action_block
        if not 1 <= self.actor_goal_window <= span:
            raise ValueError(
                f"train.actor_goal_window={self.actor_goal_window}: goals come from the training "
                f"clip, which spans {span} control steps (clip_len - 1 = {self.clip_len - 1} "
                f"blocks of {self.world_model.action_block}); use 1..{span} or raise clip_len "
                f"(goals up to the episode's end: {frozen} goal_window=0)"
            )


def planning_recipe(cfg: TrainConfig) -> dict[str, Any]:
    """The eval settings a model trained with `cfg` plans with (dotted `agent.*` / `planner.*`
    keys), stored as the checkpoint's `extra.recommended_eval`. Only what differs between
    models: a `lewm` model was trained to roll out `auto_steps` blocks open loop and its
    latent distance is read along the whole path, so it plans over those blocks with the summed
    energy (a CEM budget that fits that horizon on a CPU); a `frozen` model plans with the
    defaults. The action block needs no entry: the agent reads it from the model."""
    if cfg.world_model.objective != "lewm":
        return {}
    return {
        "planner.horizon": cfg.auto_steps,
        "planner.num_samples": 128,
        "planner.iterations": 3,
        "agent.energy_reduce": "sum",
    }


def register_configs() -> None:
    """Register the schemas so YAML typos and wrong types fail when Hydra composes: the
    dataclasses less their fitted fields (the normalisation statistics `wm-train` computes,
    configs/schema.py); `apps.typed_config` builds the real `TrainConfig`."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=cli_schema(TrainConfig))
    cs.store(group="world_model", name="world_model_schema", node=cli_schema(WorldModelConfig))
