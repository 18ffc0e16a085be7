"""V-JEPA spatio-temporal multi-block masks.

A target is the union of a few random rectangles of the token grid, extended through every
time slice of the clip (a "tube"), so the encoder cannot copy the target from a neighbouring
frame; the context is everything else. Indices are shared by the whole batch so they stack
into `(B, n)` tensors (the official collator trims per-sample masks to a common length
instead; one mask per batch is simpler and equivalent in expectation).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def block_mask(
    grid: int,
    num_blocks: int,
    scale: float,
    gen: torch.Generator,
    aspect: tuple[float, float] = (0.75, 1.5),
) -> Tensor:
    """Boolean `(grid, grid)` union of `num_blocks` rectangles covering ~`scale` of the grid each."""
    mask = torch.zeros(grid, grid, dtype=torch.bool)
    for _ in range(num_blocks):
        ratio = math.exp(
            math.log(aspect[0])
            + torch.rand(1, generator=gen).item() * math.log(aspect[1] / aspect[0])
        )
        area = scale * grid * grid
        h = max(1, min(grid, round(math.sqrt(area * ratio))))
        w = max(1, min(grid, round(math.sqrt(area / ratio))))
        top = int(torch.randint(0, grid - h + 1, (1,), generator=gen))
        left = int(torch.randint(0, grid - w + 1, (1,), generator=gen))
        mask[top : top + h, left : left + w] = True
    return mask


def tube_masks(
    time_slices: int, grid: int, num_blocks: int, scale: float, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(context, target) token indices `(n_ctx,)`, `(n_tgt,)` into a `(T', grid, grid)` clip.

    Tokens are ordered time-major like VJEPA2's patch embedding (t, row, col)."""
    spatial = block_mask(grid, num_blocks, scale, gen)
    if spatial.all():  # keep at least one context column
        spatial[:, 0] = False
    tube = spatial.expand(time_slices, grid, grid).reshape(-1)  # (T' * grid * grid,)
    return (~tube).nonzero().squeeze(1), tube.nonzero().squeeze(1)
