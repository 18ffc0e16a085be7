"""Pre-norm transformer block of the AC predictor, with an incremental (key/value cache) path.

Parameter names follow the official `ACBlock` (`norm1`, `attn.qkv`, `attn.proj`, `norm2`,
`mlp.fc1`, `mlp.fc2`) so the official predictor state dict loads strictly.

Two attention paths:
* full: all tokens of a clip at once under the block-causal mask (training, teacher forcing);
* step: the tokens of one new time step attend to a cache. The cache has a *shared* part,
  `(E, heads, n_ctx, hd)`, computed once per environment from the observed context, and an
  *own* part, `(E, S, heads, n, hd)`, per sampled action sequence. The shared keys are applied
  to all S samples with one matmul over `(S * n)` queries, so the context is never copied
  per sample. No mask is needed: a step's tokens see every earlier step and each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from world_model.model.rope import apply_rope

KV = tuple[Tensor, Tensor]


class Attention(nn.Module):
    """Multi-head self-attention with 3D RoPE on queries and keys."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # (..., n, 3, h, hd)
        q, k, v = qkv.movedim(-3, 0).transpose(-2, -3).unbind(0)  # each (..., h, n, hd)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, KV]:
        """Full path: `x (..., n, C)` -> `(..., n, C)` and this layer's keys/values."""
        q, k, v = self._qkv(x, cos, sin)
        lead = q.shape[:-3]
        out = F.scaled_dot_product_attention(
            q.reshape(-1, *q.shape[-3:]),  # (B, h, n, hd) with B = prod(lead)
            k.reshape(-1, *k.shape[-3:]),
            v.reshape(-1, *v.shape[-3:]),
            attn_mask=mask,
        ).reshape(*lead, *q.shape[-3:])  # (..., h, n, hd)
        out = out.transpose(-2, -3).flatten(-2)  # (..., n, C)
        return self.proj(out), (k, v)

    def step(
        self, x: Tensor, cos: Tensor, sin: Tensor, shared: KV | None, own: KV | None
    ) -> tuple[Tensor, KV]:
        """Step path: `x (E, S, n, C)`; returns output and own keys/values incl. this step."""
        q, k, v = self._qkv(x, cos, sin)  # (E, S, h, n, hd)
        if own is not None:
            k = torch.cat([own[0], k], dim=-2)  # (E, S, h, n_own + n, hd)
            v = torch.cat([own[1], v], dim=-2)
        scores = [q @ k.transpose(-1, -2) * self.scale]  # (E, S, h, n, n_own + n)
        if shared is not None:
            sample_count = q.shape[1]
            q_flat = rearrange(q, "e s h n d -> e h (s n) d")
            shared_scores = q_flat @ shared[0].transpose(-1, -2) * self.scale  # (E, h, S*n, n_ctx)
            shared_scores = rearrange(shared_scores, "e h (s n) c -> e s h n c", s=sample_count)
            scores.insert(0, shared_scores)
        attn = torch.cat(scores, dim=-1).softmax(dim=-1)  # (E, S, h, n, n_ctx + n_own + n)
        if shared is None:
            out = attn @ v
        else:
            n_ctx = shared[0].shape[-2]
            attn_shared = rearrange(attn[..., :n_ctx], "e s h n c -> e h (s n) c")
            out_shared = rearrange(
                attn_shared @ shared[1], "e h (s n) d -> e s h n d", s=q.shape[1]
            )  # (E, S, h, n, hd)
            out = out_shared + attn[..., n_ctx:] @ v
        out = out.transpose(-2, -3).flatten(-2)  # (E, S, n, C)
        return self.proj(out), (k, v)


class MLP(nn.Module):
    """GELU MLP (`fc1`, `fc2`)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, KV]:
        h, kv = self.attn(self.norm1(x), cos, sin, mask)
        x = x + h
        return x + self.mlp(self.norm2(x)), kv

    def step(
        self, x: Tensor, cos: Tensor, sin: Tensor, shared: KV | None, own: KV | None
    ) -> tuple[Tensor, KV]:
        h, kv = self.attn.step(self.norm1(x), cos, sin, shared, own)
        x = x + h
        return x + self.mlp(self.norm2(x)), kv
