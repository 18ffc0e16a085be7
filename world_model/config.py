"""Config dataclasses for the world model, mirrored by `configs/world_model/*.yaml`.

Each field is documented where it is declared; `__post_init__` rejects bad values with a
message that names the field and the value, so a typo in a YAML override fails at startup
rather than as a shape error deep inside a rollout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from configs.schema import FITTED

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel pixel mean / std (after scaling to [0, 1]) of every encoder (ImageNet's)."""
LAYERNORM_EPS = 1e-6
"""Epsilon of the latent normalisation (V-JEPA 2 `normalize_reps`) and the predictor's
LayerNorms, as V-JEPA 2-AC."""
MLP_RATIO = 4.0
"""MLP hidden / width of the tiny encoder's and the predictor's transformer blocks (official
encoders read theirs from the weights)."""
INIT_STD = 0.02
"""Std of the predictor's truncated-normal Linear init (V-JEPA 2-AC)."""
TUBELET_SIZE = 2
"""Frames per V-JEPA 2 tubelet; every frame is duplicated to fill one (V-JEPA 2-AC)."""
ACTION_DIM = 7
"""Action size the predictor reads: [dx, dy, dz, droll, dpitch, dyaw, dgripper]; envs with
fewer action dimensions are zero-padded to it (envs/foreign/adapter.py)."""
STATE_DIM = 7
"""Proprio state size the predictor reads: ee xyz, Euler xyz, gripper (padded likewise)."""
CONV_STEM = 4
"""Stride of the conv encoder's first stage: a 4 x 4 patchify stem, as ConvNeXt (a stride-2
stem costs ~4x more on CPU for the same final map)."""
INIT_SEED = 0
"""Seed of a fresh encoder's random init (source null); the predictor's is INIT_SEED + 1.
Trained weights travel in the checkpoint, so the seed never reaches a saved model."""

#: Bumped whenever the checkpoint layout or the latent normalisation changes meaning;
#: `load_world_model` refuses other versions instead of silently producing other latents.
CHECKPOINT_FORMAT = "latent-planner/world-model"
CHECKPOINT_VERSION = 2

RECOMMENDED_KEY = "recommended_eval"
"""config.json `extra` entry: the eval settings (dotted `agent.*` / `planner.*` keys) a model
plans with, e.g. a lewm model's 5-block CEM with the summed energy. wm-train writes them
(`train_config.planning_recipe`), `python -m agent.recommend` changes them, and
`agent.config.with_recommended` applies them."""

ENCODER_BACKENDS = ("tiny", "vjepa2", "conv")
LATENT_LAYOUTS = ("tokens", "pooled")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class EncoderConfig:
    """Video encoder and the frame -> latent normalisation (all of it lives here)."""

    backend: str = "tiny"
    """`tiny` (project-pretrained small VJEPA2Model, frozen), `vjepa2` (official V-JEPA 2
    weights, frozen) or `conv` (small conv net + BatchNorm projector, trained end to end with
    the predictor: objective `lewm`)."""
    latent_layout: str = "tokens"
    """`tokens`: a grid of N latent tokens per frame (V-JEPA 2-AC); `pooled`: one vector per
    frame (N = 1; the mean token for ViTs, a flattened-feature projection for `conv`), as in
    LeWM, which makes a multi-step CEM cheap on CPU."""
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """`conv` only: channels of the conv stages: a 4 x 4 patchify stem (`CONV_STEM`), then
    stride-2 3x3 convs (64 px: 16 -> 8 -> 4 x 4 features)."""
    proj_hidden: int = 512
    """`conv` only: hidden width of the Linear-BatchNorm-GELU-Linear projector (LeWM: the
    BatchNorm, not a LayerNorm, lets SIGReg shape the latent distribution)."""
    source: str | None = None
    """Where the weights come from: a `save_pretrained` folder, an official checkpoint file
    (`.pt`/`.pth`/`.tar`/`.safetensors` holding an `encoder` state dict), or null for a
    seeded random init of the architecture below (tests, smoke runs)."""
    crop_size: int = 64
    """Frames are resized to crop_size x crop_size; the RoPE grid of VJEPA2Model follows it."""
    patch_size: int = 8
    """Spatial patch size of the ViT (tokens per frame = (crop_size / patch_size)^2)."""
    hidden_size: int = 96
    """Encoder width = latent dim D (ignored when `source` defines the architecture)."""
    num_layers: int = 4
    """Encoder depth (ignored when `source` defines the architecture)."""
    num_heads: int = 4
    """Encoder heads; also used for official checkpoint files, whose tensors do not say it
    (ViT-L 16, ViT-H 16, ViT-g 22)."""
    latent_pool: int = 2
    """Average-pool the token grid by this factor before the LayerNorm: 8x8 -> 4x4 = 16 tokens
    keeps the predictor affordable on 2 CPU cores. 1 = no pooling (official)."""
    encode_batch: int = 256
    """Frames per encoder forward; bounds peak memory when encoding long episodes."""
    device: str = "cpu"
    """Device of the encoder (the predictor follows the WorldModel's device)."""
    dtype: str = "float32"
    """Encoder compute dtype; latents are returned as float32."""

    def __post_init__(self) -> None:
        if self.backend not in ENCODER_BACKENDS:
            raise ValueError(
                f"encoder.backend={self.backend!r}; expected one of {ENCODER_BACKENDS}"
            )
        if self.latent_layout == "slots":
            raise ValueError(
                "encoder.latent_layout=slots (object slots) was deleted: no gain on cube "
                "(docs/experiments.md); retrain with tokens or pooled"
            )
        if self.latent_layout not in LATENT_LAYOUTS:
            raise ValueError(
                f"encoder.latent_layout={self.latent_layout!r}; expected one of {LATENT_LAYOUTS}"
            )
        self.conv_channels = [int(c) for c in self.conv_channels]
        if not self.conv_channels or min(self.conv_channels) < 1 or self.proj_hidden < 1:
            raise ValueError(
                f"encoder.conv_channels={self.conv_channels} / proj_hidden={self.proj_hidden}"
            )
        reduction = CONV_STEM * 2 ** (len(self.conv_channels) - 1)
        if self.backend == "conv" and self.crop_size % reduction:
            raise ValueError(
                f"encoder.crop_size={self.crop_size} must be divisible by the stem {CONV_STEM} x "
                f"2^{len(self.conv_channels) - 1} (one halving per later stage)"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"encoder.dtype={self.dtype!r}; expected one of {DTYPES}")
        for name in ("crop_size", "patch_size", "hidden_size", "num_layers", "num_heads",
                     "latent_pool", "encode_batch"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"encoder.{name}={getattr(self, name)} must be >= 1")
        if self.crop_size % self.patch_size:
            raise ValueError(
                f"encoder.crop_size={self.crop_size} is not a multiple of patch_size={self.patch_size}"
            )
        grid = self.crop_size // self.patch_size
        if grid % self.latent_pool:
            raise ValueError(
                f"encoder.latent_pool={self.latent_pool} does not divide the {grid}x{grid} token grid"
            )


@dataclass
class PredictorConfig:
    """V-JEPA 2-AC action-conditioned predictor (`VisionTransformerPredictorAC`)."""

    embed_dim: int = 96
    """Latent dim D of the encoder tokens it reads and predicts."""
    width: int = 128
    """Transformer width (official 1024)."""
    depth: int = 3
    """Number of pre-norm blocks (official 24)."""
    num_heads: int = 4
    """Attention heads (official 16, head dim 64)."""
    use_state: bool = True
    """Feed the proprio state to the predictor (V-JEPA 2-AC). False zeroes the state token's
    input (LeWM: pixels and actions only). Two reasons to turn it off, both measured on
    dm_control reacher: (1) whatever the state gives the predictor, the end-to-end encoder has
    no reason to put in the latent, yet planning compares latents with a goal *image*: with
    qpos and qvel in the state the latent kept only the episode-constant target and the planner
    was blind to the arm; (2) imagined rollouts advance the state by the summed action block,
    which is right for end-effector displacements (Panda) and meaningless for torques."""
    grid_size: int = 0
    """RoPE snaps patch rows/cols to this grid (official 16); 0 = the latent grid itself."""
    rope_repeat_quirk: bool = False
    """Reproduce the official `.repeat(..., 2)` frequency layout (needed for official weights)."""
    use_extrinsics: bool = False
    """Create the (unused) `extrinsics_encoder` Linear(6 -> width) so official weights load strictly."""
    residual: bool = True
    """Predict the change of the latent (output = input latent + head) instead of the latent
    itself. Not in the official predictor (no extra parameters, so official weights still load
    with it off); on small data it starts from the copy-last baseline instead of from zero."""
    normalize_output: bool = True
    """Non-affine LayerNorm on predicted latents, matching the encoder's latent normalisation."""
    action_mean: list[float] | None = field(default=None, metadata=FITTED)
    """Per-dimension action offset subtracted before the action encoder; null = 0. `wm-train`
    fits these four to the training data and saves them with the model (actions in metres are
    ~0.05 while the encoder init is ~0.02: unscaled, the action signal starts ~100x weaker than
    the patches); marked fitted, they are not on the command line (configs/schema.py)."""
    action_std: list[float] | None = field(default=None, metadata=FITTED)
    """Per-dimension action scale (divides); null = 1 (official weights: keep null)."""
    state_mean: list[float] | None = field(default=None, metadata=FITTED)
    """Per-dimension state offset; null = 0."""
    state_std: list[float] | None = field(default=None, metadata=FITTED)
    """Per-dimension state scale; null = 1."""

    def __post_init__(self) -> None:
        for name in ("embed_dim", "width", "depth", "num_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"predictor.{name}={getattr(self, name)} must be >= 1")
        if self.width % self.num_heads:
            raise ValueError(
                f"predictor.width={self.width} is not divisible by num_heads={self.num_heads}"
            )
        head_dim = self.width // self.num_heads
        if 2 * ((head_dim // 3) // 2) < 2:
            raise ValueError(f"predictor head dim {head_dim} too small for 3D RoPE (need >= 6)")
        if self.grid_size < 0:
            raise ValueError(f"predictor.grid_size={self.grid_size} must be >= 0")
        for name, dim in (("action_mean", ACTION_DIM), ("action_std", ACTION_DIM),
                          ("state_mean", STATE_DIM), ("state_std", STATE_DIM)):  # fmt: skip
            value = getattr(self, name)
            if value is None:
                continue
            value = [float(v) for v in value]
            setattr(self, name, value)
            if len(value) != dim:
                raise ValueError(f"predictor.{name} has {len(value)} values, expected {dim}")
            if name.endswith("std") and min(value) <= 0:
                raise ValueError(f"predictor.{name}={value} must be > 0")


@dataclass
class WorldModelConfig:
    """Encoder + action-conditioned predictor; what `config.json` records. The agent reads
    `action_block`, `history` and the latent layout from here (old checkpoints: defaults)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    action_block: int = 1
    """Control steps k per predictor step (frameskip); the predictor's action input is the k
    actions concatenated. 1 = one step per action (the original behaviour)."""
    history: int = 1
    """Context frames (at the block stride) the model was trained to condition on; the agent
    feeds at most this many."""

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = dataclass_from_dict(EncoderConfig, self.encoder, "encoder")
        if isinstance(self.predictor, dict):
            self.predictor = dataclass_from_dict(PredictorConfig, self.predictor, "predictor")
        if self.action_block < 1 or self.history < 1:
            raise ValueError(
                f"world_model.action_block={self.action_block} and history={self.history} "
                "must be >= 1"
            )
        if self.objective == "lewm" and self.predictor.normalize_output:
            raise ValueError(
                "encoder.backend=conv (objective lewm) needs predictor.normalize_output=false: "
                "its latents come from a BatchNorm projector, not a LayerNorm"
            )

    @property
    def objective(self) -> str:
        """How the model trains, set by the encoder: `frozen` (a fixed ViT encoder, the
        predictor trains on cached latents, V-JEPA 2-AC) or `lewm` (the trainable `conv`
        encoder, its projector and the predictor train jointly from pixels on next-latent MSE +
        SIGReg, LeWorldModel)."""
        return "lewm" if self.encoder.backend == "conv" else "frozen"


RETIRED_KEYS: dict[str, dict[str, Any]] = {
    "world_model": {
        "objective": None,  # now derived from encoder.backend (was validated equal)
        "position_dims": 0,  # privileged position head: no gain on cube (docs/experiments.md)
        "position_mean": None,  # its target statistics, null without the head
        "position_std": None,
    },
    "encoder": {
        "inverse_dynamics_out": 0,
        "conv_stem": CONV_STEM,
        "mlp_ratio": MLP_RATIO,
        "pred_hidden_size": None,  # the pretraining predictor: never part of a world model
        "pred_num_layers": None,
        "pred_num_heads": None,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "layernorm_eps": LAYERNORM_EPS,
        "tubelet_size": TUBELET_SIZE,
        "init_seed": None,
        "num_slots": None,  # object slots: read only by the deleted slots layout
        "slot_iters": None,
    },
    "predictor": {
        "adaln": False,  # AdaLN-zero action conditioning: no gain on cube (docs/experiments.md)
        "action_dim": ACTION_DIM,
        "state_dim": STATE_DIM,
        "mlp_ratio": MLP_RATIO,
        "qkv_bias": True,
        "layernorm_eps": LAYERNORM_EPS,
        "init_std": INIT_STD,
    },
}
"""Deleted options and constants that checkpoints written before their deletion still record,
per section, with the value the code now always uses (None: any value, it never shaped the
model). Rule: a retired key holding that value is dropped (the model is the same without it);
any other value is refused, since the code that used it is gone (docs/experiments.md)."""


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def dataclass_from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build `cls` from a dict, naming unknown keys instead of a bare TypeError, and dropping
    `RETIRED_KEYS` of `where` that hold their "off" value."""
    data = dict(data)
    for key, off in RETIRED_KEYS.get(where, {}).items():
        if key in data and _as_list(data.pop(key)) != off and off is not None:
            raise ValueError(
                f"{where}.{key} is set, but that option was deleted (only {key}={off!r} loads); "
                "retrain without it (docs/experiments.md)"
            )
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown config keys {unknown} (known: {sorted(known)})")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return asdict(cfg)


PREDICTOR_PRESETS: dict[str, PredictorConfig] = {
    "tiny": PredictorConfig(),
    # Official V-JEPA 2-AC predictor of vjepa2-ac-vitg.pt: ViT-g latents (1408) in and out.
    "vjepa2-ac-vitg": PredictorConfig(
        embed_dim=1408,
        width=1024,
        depth=24,
        num_heads=16,
        grid_size=16,
        rope_repeat_quirk=True,
        use_extrinsics=True,
        residual=False,
    ),
}
