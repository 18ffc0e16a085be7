"""`WorldModel`: the frozen encoder plus the action-conditioned predictor behind three verbs,
`encode`, `rollout` and `energy` (docs/architecture.md). Planners and the agent use only these.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from envs.contract import EnvContract
from world_model.config import WorldModelConfig
from world_model.encoder import FrozenEncoder, build_encoder
from world_model.predictor import ACPredictor

METRICS = ("l1", "l2")


class WorldModel(nn.Module):
    """Frozen V-JEPA 2 encoder + V-JEPA 2-AC predictor."""

    def __init__(
        self,
        encoder: FrozenEncoder,
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
        self.encoder = encoder
        self.predictor = predictor
        self.cfg = cfg
        # The env the model was trained on (config.json "env"); None without training data.
        self.env_contract = env_contract

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
        """Imagine the latents after each planned action.

        z_ctx `(E, Tc, N, D)` observed latents, states_ctx `(E, Tc, 7)`, actions `(E, S, H, 7)`
        (S candidate sequences per env), past_actions `(E, Tc - 1, 7)` between the context frames
        (None when Tc = 1) -> `(E, S, H, N, D)`. The imagined state integrates the action,
        s_{t+1} = s_t + a_t. The context is shared by all S samples (expanded, never copied) and
        a key/value cache keeps the cost linear in H; `use_cache=False` recomputes (reference).
        """
        if z_ctx.ndim != 4 or states_ctx.ndim != 3 or actions.ndim != 4:
            raise ValueError(
                "rollout expects z_ctx (E, Tc, N, D), states_ctx (E, Tc, 7), actions (E, S, H, 7);"
                f" got {tuple(z_ctx.shape)}, {tuple(states_ctx.shape)}, {tuple(actions.shape)}"
            )
        dtype, device = self.predictor.predictor_proj.weight.dtype, self.device
        z_ctx, states_ctx, actions = (t.to(device, dtype) for t in (z_ctx, states_ctx, actions))
        if past_actions is not None:
            past_actions = past_actions.to(device, dtype)
        return self.predictor.rollout(z_ctx, states_ctx, actions, past_actions, use_cache)

    @staticmethod
    def energy(z: Tensor, goal: Tensor, metric: str = "l1") -> Tensor:
        """Mean distance over tokens and channels: `(..., N, D)`, `(..., N, D)` -> `(...)`.
        `l1`: mean |z - goal| (V-JEPA 2-AC planning energy); `l2`: mean (z - goal)^2."""
        diff = z - goal
        if metric == "l1":
            return diff.abs().mean(dim=(-2, -1))
        if metric == "l2":
            return diff.square().mean(dim=(-2, -1))
        raise ValueError(f"energy metric={metric!r}; expected one of {METRICS}")


def build_world_model(
    cfg: WorldModelConfig,
    device: str | torch.device | None = None,
    encoder: FrozenEncoder | None = None,
    env_contract: EnvContract | None = None,
) -> WorldModel:
    """World model from config: encoder weights from `cfg.encoder.source` (or the given,
    already built `encoder`), fresh seeded predictor on `device` (default: encoder's), trained
    for the env `env_contract` (saved with it)."""
    encoder = encoder if encoder is not None else build_encoder(cfg.encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.encoder.init_seed + 1)
        predictor = ACPredictor(cfg.predictor)
    return WorldModel(encoder, predictor.to(device or cfg.encoder.device), cfg, env_contract)
