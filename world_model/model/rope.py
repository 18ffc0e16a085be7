"""3D rotary position embedding of the V-JEPA 2-AC predictor.

A head of size `hd` is split into three chunks of `2 * ((hd // 3) // 2)` dims rotated by the
token's time step, patch row and patch column; the remaining dims are left alone. The action
and state tokens sit at row = column = 0, i.e. only their time chunk rotates (a rotation by
position 0 is the identity), which is what the official predictor does.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_chunk_dim(head_dim: int) -> int:
    """Dims rotated per axis (time, row, column); 20 for the official head dim 64."""
    return int(2 * ((head_dim // 3) // 2))


def rope_tables(
    positions: Tensor, head_dim: int, repeat_quirk: bool, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """cos/sin tables for `positions (n, 3)` (time, row, column) -> two `(n, 3 * chunk)`.

    `repeat_quirk`: the official code expands the per-pair frequencies with `.repeat(..., 2)`
    ([f0, f1, .., f0, f1, ..]) although the pairs are interleaved, so each pair is rotated by
    two different angles. Official weights were trained that way and need it; our own models
    use the intended `repeat_interleave` layout.
    """
    chunk = rope_chunk_dim(head_dim)
    omega = torch.arange(chunk // 2, dtype=torch.float64, device=positions.device)
    omega = 1.0 / 10000 ** (omega / (chunk / 2.0))  # (chunk/2,)
    freq = positions.to(torch.float64)[..., None] * omega  # (n, 3, chunk/2)
    # (n, 3, chunk): quirk [f0..fk, f0..fk], intended [f0, f0, f1, f1, ..]
    freq = torch.cat([freq, freq], dim=-1) if repeat_quirk else freq.repeat_interleave(2, dim=-1)
    freq = freq.flatten(-2)  # (n, 3 * chunk)
    return freq.cos().to(dtype), freq.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the first `cos.shape[-1]` dims of `x (..., n, hd)` pairwise; rest unrotated."""
    r = cos.shape[-1]
    x_rot, x_pass = x[..., :r], x[..., r:]
    pairs = x_rot.unflatten(-1, (-1, 2))  # (..., n, r/2, 2)
    x1, x2 = pairs.unbind(-1)
    rotated = torch.stack((-x2, x1), dim=-1).flatten(-2)  # (..., n, r)
    return torch.cat([x_rot * cos + rotated * sin, x_pass], dim=-1)


def step_positions(
    t: int, grid_hw: tuple[int, int], cond_tokens: int, grid_size: int, device: torch.device
) -> Tensor:
    """Positions (time, row, column) of one step's tokens [cond..., patches] -> (cond + h*w, 3).

    Rows/columns are snapped to `grid_size` like the official `h *= grid_size / H`, so a
    predictor trained at one resolution keeps its position scale at another.
    """
    h, w = grid_hw
    rows = torch.arange(h, device=device, dtype=torch.float32)
    cols = torch.arange(w, device=device, dtype=torch.float32)
    if grid_size:
        rows = rows * (grid_size / h)
        cols = cols * (grid_size / w)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")  # (h, w) each
    patch = torch.stack([torch.full_like(rr, float(t)), rr, cc], dim=-1).reshape(h * w, 3)
    cond = torch.zeros(cond_tokens, 3, device=device)
    cond[:, 0] = float(t)
    return torch.cat([cond, patch], dim=0)  # (cond + h*w, 3)
