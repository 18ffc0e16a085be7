"""`WorldModel`: the frozen encoder plus the action-conditioned predictor behind three verbs,
`encode`, `rollout` and `energy` (docs/architecture.md). Planners and the agent use only these.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from envs.common.contract import EnvContract
from world_model.config import INIT_SEED, EncoderConfig, WorldModelConfig
from world_model.model.conv_encoder import ConvEncoder
from world_model.model.encoder import FrozenEncoder, build_encoder
from world_model.model.predictor import ACPredictor


class WorldModel(nn.Module):
    """Encoder (frozen V-JEPA 2, or a conv net trained end to end) + V-JEPA 2-AC predictor."""

    def __init__(
        self,
        encoder: FrozenEncoder | ConvEncoder,
        predictor: ACPredictor,
        cfg: WorldModelConfig,
        env_contract: EnvContract | None = None,
    ):
        super().__init__()
        if predictor.cfg.embed_dim != encoder.dim:
            raise ValueError(
                f"predictor.embed_dim={predictor.cfg.embed_dim} but the encoder latents are "
                f"{encoder.dim}-dimensional"
            )
        if predictor.action_block != cfg.action_block:
            raise ValueError(
                f"predictor built for action blocks of {predictor.action_block}, config says "
                f"action_block={cfg.action_block}"
            )
        self.encoder = encoder
        self.predictor = predictor
        self.cfg = cfg
        # The env the model was trained on (config.json "env"); None without training data.
        self.env_contract = env_contract

    @property
    def action_block(self) -> int:
        """Control steps per predictor step k: `rollout` takes actions `(E, S, H, k * A)`."""
        return self.cfg.action_block

    @property
    def history(self) -> int:
        """Context frames (one per block) the model was trained with; feed at most this many."""
        return self.cfg.history

    @property
    def latent_layout(self) -> str:
        """`tokens` (N latents per frame) or `pooled` (N = 1)."""
        return self.cfg.encoder.latent_layout

    @property
    def num_tokens(self) -> int:
        """Latent tokens per frame N."""
        return self.encoder.num_tokens

    @property
    def latent_dim(self) -> int:
        """Latent dim D."""
        return self.encoder.dim

    @property
    def crop_size(self) -> int:
        """Side in pixels the encoder resizes frames to (feed it frames of this size to skip it)."""
        return self.cfg.encoder.crop_size

    @property
    def device(self) -> torch.device:
        return self.predictor.predictor_proj.weight.device

    def encode(self, frames: Tensor) -> Tensor:
        """`(B, T, 3, H, W)` uint8 or float in [0, 1] -> layer-normed latents `(B, T, N, D)`,
        float32 on the predictor's device. All image / latent normalisation is in the encoder."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"encode expects frames (B, T, 3, H, W), got {tuple(frames.shape)}")
        return self.encoder(frames).to(self.device)

    def rollout(
        self,
        z_ctx: Tensor,
        states_ctx: Tensor,
        actions: Tensor,
        past_actions: Tensor | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Imagine the latents after each planned action block.

        z_ctx `(E, Tc, N, D)` observed latents (one frame per block), states_ctx `(E, Tc, 7)`,
        actions `(E, S, H, k * 7)` (S candidate sequences per env; each of the H blocks is its k
        control actions concatenated in time order; k = `action_block`), past_actions
        `(E, Tc - 1, k * 7)` between the context frames (None when Tc = 1) -> `(E, S, H, N, D)`,
        one latent per block. The imagined state integrates the block, s' = s + sum of its k
        actions. The context is shared by all S samples (expanded, never copied) and a key/value
        cache keeps the cost linear in H; `use_cache=False` recomputes (reference).
        """
        if z_ctx.ndim != 4 or states_ctx.ndim != 3 or actions.ndim != 4:
            raise ValueError(
                "rollout expects z_ctx (E, Tc, N, D), states_ctx (E, Tc, 7), actions (E, S, H, k*7);"
                f" got {tuple(z_ctx.shape)}, {tuple(states_ctx.shape)}, {tuple(actions.shape)}"
            )
        dtype, device = self.predictor.predictor_proj.weight.dtype, self.device
        z_ctx, states_ctx, actions = (t.to(device, dtype) for t in (z_ctx, states_ctx, actions))
        if past_actions is not None:
            past_actions = past_actions.to(device, dtype)
        return self.predictor.rollout(z_ctx, states_ctx, actions, past_actions, use_cache)

    def energy(self, z: Tensor, goal: Tensor) -> Tensor:
        """Latent distance to the goal, `(..., N, D)`, `(..., N, D)` -> `(...)`: `latent_energy`."""
        return latent_energy(z, goal)


def latent_energy(z: Tensor, goal: Tensor) -> Tensor:
    """Mean |z - goal| over tokens and channels, the V-JEPA 2-AC planning energy:
    `(..., N, D)`, `(..., N, D)` -> `(...)`."""
    return (z - goal).abs().mean(dim=(-2, -1))


def predictor_for(cfg: WorldModelConfig) -> ACPredictor:
    """The (untrained) predictor `cfg` describes, with its action blocks."""
    return ACPredictor(cfg.predictor, cfg.action_block)


def build_any_encoder(cfg: EncoderConfig) -> FrozenEncoder | ConvEncoder:
    """Frozen ViT encoder from `cfg.source`, or a seeded fresh trainable `conv` encoder."""
    if cfg.backend != "conv":
        return build_encoder(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        return ConvEncoder(cfg).to(cfg.device)


def build_world_model(
    cfg: WorldModelConfig,
    device: str | torch.device | None = None,
    encoder: FrozenEncoder | ConvEncoder | None = None,
    env_contract: EnvContract | None = None,
) -> WorldModel:
    """World model from config: encoder weights from `cfg.encoder.source` (or the given,
    already built `encoder`; a fresh seeded one for `conv`), fresh seeded predictor on `device`
    (default: encoder's), trained for the env `env_contract` (saved with it)."""
    encoder = encoder if encoder is not None else build_any_encoder(cfg.encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED + 1)
        predictor = predictor_for(cfg)
    return WorldModel(encoder, predictor.to(device or cfg.encoder.device), cfg, env_contract)
