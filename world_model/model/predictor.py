"""V-JEPA 2-AC action-conditioned predictor (`VisionTransformerPredictorAC`).

Per time step t the token sequence is `[action_t, state_t, patches_t (N)]`; a block-causal mask
lets step t see steps <= t; the patch outputs of step t predict the latents of frame t + 1.
`build_predictor("vjepa2-ac-vitg")` has exactly the official checkpoint's keys and shapes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from world_model.config import (
    ACTION_DIM,
    INIT_STD,
    LAYERNORM_EPS,
    MLP_RATIO,
    PREDICTOR_PRESETS,
    STATE_DIM,
    PredictorConfig,
)
from world_model.model.attention import KV, Block
from world_model.model.rope import rope_tables, step_positions

COND_TOKENS = 2  # action and state tokens in front of each step's patches


def block_causal_mask(
    steps: int, tokens_per_step: int, device: torch.device | str = "cpu"
) -> Tensor:
    """Boolean `(steps * n, steps * n)` mask, True = may attend: full within a step, causal
    across steps, no window (official `build_action_block_causal_attention_mask`)."""
    step_id = torch.arange(steps, device=device).repeat_interleave(tokens_per_step)  # (T*n,)
    return step_id[:, None] >= step_id[None, :]


def grid_of(num_tokens: int) -> tuple[int, int]:
    """Square latent grid (rows, cols) holding `num_tokens` patches."""
    side = math.isqrt(num_tokens)
    if side * side != num_tokens:
        raise ValueError(f"{num_tokens} latent tokens per frame do not form a square grid")
    return side, side


class ACPredictor(nn.Module):
    """Action-conditioned latent predictor; leading batch dims are free (`...`).

    With `action_block` k > 1 each predictor step spans k control steps: its action input is the
    block's k actions concatenated in time order, `(..., k * action_dim)` (frameskip, as in
    DINO-WM and LeWM), so a few predictor steps cover a contact event."""

    def __init__(self, cfg: PredictorConfig, action_block: int = 1) -> None:
        super().__init__()
        if action_block < 1:
            raise ValueError(f"action_block={action_block} must be >= 1")
        self.cfg = cfg
        self.action_block = action_block
        self.predictor_embed = nn.Linear(cfg.embed_dim, cfg.width)
        self.action_encoder = nn.Linear(action_block * ACTION_DIM, cfg.width)
        self.state_encoder = nn.Linear(STATE_DIM, cfg.width)
        if cfg.use_extrinsics:  # kept only so official weights load strictly; never used
            self.extrinsics_encoder = nn.Linear(ACTION_DIM - 1, cfg.width)
        self.predictor_blocks = nn.ModuleList(
            Block(cfg.width, cfg.num_heads, MLP_RATIO, True, LAYERNORM_EPS)  # as V-JEPA 2-AC
            for _ in range(cfg.depth)
        )
        self.predictor_norm = nn.LayerNorm(cfg.width, eps=LAYERNORM_EPS)
        self.predictor_proj = nn.Linear(cfg.width, cfg.embed_dim)
        self.head_dim = cfg.width // cfg.num_heads
        # input normalisation from the config; non-persistent so the state dict stays official
        for name, dim, fill in (("action_mean", ACTION_DIM, 0.0), ("action_std", ACTION_DIM, 1.0),
                                ("state_mean", STATE_DIM, 0.0), ("state_std", STATE_DIM, 1.0)):  # fmt: skip
            value = getattr(cfg, name)
            buf = (
                torch.full((dim,), fill, device="cpu")
                if value is None
                else torch.tensor(value, device="cpu")
            )
            if name.startswith("action"):  # one copy per control step of the block
                buf = buf.repeat(action_block)
            self.register_buffer(name, buf.float(), persistent=False)
        self._tables: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._masks: dict[tuple, Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal Linear init; residual outputs scaled by 1/sqrt(2 * layer) (official)."""
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.weight.device.type != "meta":
                nn.init.trunc_normal_(m.weight, std=INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            for i, blk in enumerate(self.predictor_blocks):
                if blk.attn.proj.weight.device.type != "meta":
                    blk.attn.proj.weight.div_(math.sqrt(2.0 * (i + 1)))
                    blk.mlp.fc2.weight.div_(math.sqrt(2.0 * (i + 1)))

    # -- helpers -------------------------------------------------------------------------
    def _rope(
        self, t0: int, steps: int, grid: tuple[int, int], ref: Tensor
    ) -> tuple[Tensor, Tensor]:
        """cos/sin for `steps` consecutive steps starting at time t0 -> (steps * n, r) each;
        `grid` the (rows, cols) latent grid (`grid_of`)."""
        key = (t0, steps, grid, ref.device, ref.dtype)
        if key not in self._tables:
            pos = torch.cat(
                [
                    step_positions(t, grid, COND_TOKENS, self.cfg.grid_size, ref.device)
                    for t in range(t0, t0 + steps)
                ]
            )  # (steps * n, 3)
            self._tables[key] = rope_tables(
                pos, self.head_dim, self.cfg.rope_repeat_quirk, ref.dtype
            )
        return self._tables[key]

    def _mask(self, steps: int, n: int, device: torch.device) -> Tensor:
        key = (steps, n, device)
        if key not in self._masks:
            self._masks[key] = block_causal_mask(steps, n, device)
        return self._masks[key]

    def block_displacement(self, actions: Tensor) -> Tensor:
        """Summed control of each action block: `(..., k * A)` -> `(..., A)` (the imagined
        proprio state advances by it)."""
        return actions.unflatten(-1, (self.action_block, -1)).sum(-2)  # (..., k, A) -> (..., A)

    def _tokens(self, z: Tensor, actions: Tensor, states: Tensor) -> Tensor:
        """`z (..., T, N, D)`, `actions (..., T, k * 7)`, `states (..., T, 7)` ->
        tokens `(..., T * (2 + N), C)`."""
        patches = self.predictor_embed(z)  # (..., T, N, C)
        actions = (actions - self.action_mean) / self.action_std
        if self.cfg.use_state:
            states = (states - self.state_mean) / self.state_std
        else:  # the token stays (same layout and weights) but carries no information
            states = torch.zeros_like(states)
        a = self.action_encoder(actions).unsqueeze(-2)  # (..., T, 1, C)
        s = self.state_encoder(states).unsqueeze(-2)  # (..., T, 1, C)
        return torch.cat([a, s, patches], dim=-2).flatten(-3, -2)  # (..., T * (2 + N), C)

    def _readout(self, x: Tensor, z_in: Tensor) -> Tensor:
        """Drop the conditioning tokens: `(..., T * (2 + N), C)` -> latents `(..., T, N, D)`;
        `z_in (..., T, N, D)` are the step inputs, added back when `cfg.residual`."""
        x = x.unflatten(-2, (z_in.shape[-3], -1))[..., COND_TOKENS:, :]  # (..., T, N, C)
        z = self.predictor_proj(self.predictor_norm(x))  # (..., T, N, D)
        if self.cfg.residual:
            z = z + z_in
        if self.cfg.normalize_output:
            z = F.layer_norm(z, (z.shape[-1],), eps=1e-6)
        return z

    # -- full (teacher forcing) ----------------------------------------------------------
    def forward(self, z: Tensor, actions: Tensor, states: Tensor) -> Tensor:
        """Teacher forcing: `z (..., T, N, D)`, `actions (..., T, k * 7)` (actions[t] moves frame
        t to t + 1), `states (..., T, 7)` -> predictions of frames 1..T `(..., T, N, D)`."""
        steps, num = z.shape[-3], z.shape[-2]
        grid = grid_of(num)
        x = self._tokens(z, actions, states)
        cos, sin = self._rope(0, steps, grid, x)
        mask = self._mask(steps, COND_TOKENS + num, x.device)
        for blk in self.predictor_blocks:
            x, _ = blk(x, cos, sin, mask)
        return self._readout(x, z)

    # -- planning rollouts ---------------------------------------------------------------
    def rollout(
        self,
        z_ctx: Tensor,
        states_ctx: Tensor,
        actions: Tensor,
        past_actions: Tensor | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Autoregressive imagination, `(E, Tc, N, D)`, `(E, Tc, 7)`, `(E, S, H, k * 7)`,
        `(E, Tc - 1, k * 7) | None` -> `(E, S, H, N, D)`; the imagined state advances by the
        summed block, s_{t+1} = s_t + sum_j a_{t,j}. Differentiable (used by the training loss).

        With the cache each step costs one step of tokens (linear in H); without it every
        step re-runs the whole sequence (the reference, quadratic in H).
        """
        e, tc, n, d = z_ctx.shape
        s_count, horizon = actions.shape[1], actions.shape[2]
        width = self.action_block * ACTION_DIM
        if actions.shape[-1] != width:
            raise ValueError(
                f"actions have {actions.shape[-1]} values per step; this predictor takes blocks "
                f"of {self.action_block} x {ACTION_DIM} = {width}"
            )
        if tc > 1 and (past_actions is None or past_actions.shape[1] != tc - 1):
            raise ValueError(f"context of {tc} frames needs past_actions (E, {tc - 1}, {width})")
        if not use_cache:
            return self._rollout_recompute(z_ctx, states_ctx, actions, past_actions)
        grid = grid_of(n)
        shared: list[KV | None] = [None] * len(self.predictor_blocks)
        if tc > 1:  # observed history: computed once per env, shared by all S samples
            x = self._tokens(z_ctx[:, :-1], past_actions, states_ctx[:, :-1])
            cos, sin = self._rope(0, tc - 1, grid, x)  # x: (E, (Tc-1)*n, C)
            mask = self._mask(tc - 1, COND_TOKENS + n, x.device)
            for i, blk in enumerate(self.predictor_blocks):
                x, shared[i] = blk(x, cos, sin, mask)
        own: list[KV | None] = [None] * len(self.predictor_blocks)
        z = z_ctx[:, None, -1:].expand(e, s_count, 1, n, d)  # (E, S, 1, N, D) view
        state = states_ctx[:, None, -1:].expand(e, s_count, 1, states_ctx.shape[-1])
        preds = []
        for h in range(horizon):
            act = actions[:, :, h : h + 1]  # (E, S, 1, k * 7)
            x = self._tokens(z, act, state)  # (E, S, 2 + N, C)
            cos, sin = self._rope(tc - 1 + h, 1, grid, x)
            for i, blk in enumerate(self.predictor_blocks):
                x, own[i] = blk.step(x, cos, sin, shared[i], own[i])
            z = self._readout(x, z)  # (E, S, 1, N, D)
            preds.append(z)
            state = state + self.block_displacement(act)
        return torch.cat(preds, dim=2)  # (E, S, H, N, D)

    def _rollout_recompute(
        self, z_ctx: Tensor, states_ctx: Tensor, actions: Tensor, past_actions: Tensor | None
    ) -> Tensor:
        e, tc, n, d = z_ctx.shape
        s_count, horizon = actions.shape[1], actions.shape[2]
        zs = z_ctx[:, None].expand(e, s_count, tc, n, d)  # (E, S, Tc, N, D)
        states = states_ctx[:, None].expand(e, s_count, tc, states_ctx.shape[-1])
        hist = past_actions[:, None].expand(e, s_count, tc - 1, -1) if tc > 1 else actions[:, :, :0]
        preds = []
        for h in range(horizon):
            acts = torch.cat([hist, actions[:, :, : h + 1]], dim=2)  # (E, S, Tc + h, k * 7)
            z_next = self.forward(zs, acts, states)[:, :, -1:]  # (E, S, 1, N, D)
            preds.append(z_next)
            zs = torch.cat([zs, z_next], dim=2)
            step = self.block_displacement(actions[:, :, h : h + 1])  # (E, S, 1, 7)
            states = torch.cat([states, states[:, :, -1:] + step], dim=2)
        return torch.cat(preds, dim=2)  # (E, S, H, N, D)


def build_predictor(
    name_or_cfg: str | PredictorConfig = "tiny",
    device: str | torch.device = "cpu",
    action_block: int = 1,
) -> ACPredictor:
    """Predictor from a preset name (`tiny`, `vjepa2-ac-vitg`) or a config; `device="meta"`
    builds the official size without allocating memory."""
    if isinstance(name_or_cfg, str):
        if name_or_cfg not in PREDICTOR_PRESETS:
            raise ValueError(
                f"unknown predictor preset {name_or_cfg!r}; have {sorted(PREDICTOR_PRESETS)}"
            )
        name_or_cfg = PREDICTOR_PRESETS[name_or_cfg]
    with torch.device(device):
        return ACPredictor(name_or_cfg, action_block)
