"""Object slots for the `slots` latent layout (C-JEPA, arXiv 2602.11389): Slot Attention over
the conv feature map, object-level masking of the predictor's inputs, and the
permutation-invariant (Chamfer) planning energy.

Why slots: with one pooled latent or a grid of patch tokens, a cube's state is smeared over
whatever cells it covers; with K slots that each bind to an object, the predictor's attention
between tokens *is* the interaction between objects, and masking one slot forces the
predictor to infer that object from the others (C-JEPA's latent intervention).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def soft_position_grid(side: int) -> Tensor:
    """`(side * side, 4)` coordinates [x, y, 1 - x, 1 - y] in [0, 1] of a square feature map,
    row-major (Locatello et al. 2020's soft position embedding input)."""
    axis = torch.linspace(0.0, 1.0, side, device="cpu")
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (side, side) each
    grid = torch.stack([xx, yy, 1 - xx, 1 - yy], dim=-1)  # (side, side, 4)
    return grid.reshape(side * side, 4)


class SlotAttention(nn.Module):
    """Slot Attention (Locatello et al. 2020) with *learned* initial slots, not sampled ones:
    the same init for every frame keeps slot k bound to the same object across the frames of
    a clip (the prediction targets keep slot identity) and makes eval deterministic.

    `forward(feats (F, C, side, side)) -> slots (F, K, C)`."""

    def __init__(self, channels: int, side: int, num_slots: int, iters: int) -> None:
        super().__init__()
        self.num_slots, self.iters = num_slots, iters
        self.scale = channels**-0.5
        self.register_buffer("grid", soft_position_grid(side), persistent=False)
        self.pos = nn.Linear(4, channels)
        self.norm_in = nn.LayerNorm(channels)
        self.mlp_in = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.to_k = nn.Linear(channels, channels, bias=False)
        self.to_v = nn.Linear(channels, channels, bias=False)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.norm_slots = nn.LayerNorm(channels)
        self.gru = nn.GRUCell(channels, channels)
        self.norm_mlp = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels)
        )
        # distinct initial slots: identical ones would receive identical updates forever
        self.slots_init = nn.Parameter(torch.randn(num_slots, channels) * channels**-0.5)

    def forward(self, feats: Tensor) -> Tensor:
        x = feats.flatten(2).transpose(1, 2)  # (F, side^2, C)
        x = x + self.pos(self.grid.to(x.dtype))  # soft position embedding
        x = self.mlp_in(self.norm_in(x))  # (F, M, C), M = side^2 inputs
        k, v = self.to_k(x), self.to_v(x)  # (F, M, C) each
        slots = self.slots_init.expand(x.shape[0], -1, -1)  # (F, K, C)
        for _ in range(self.iters):
            prev = slots
            q = self.to_q(self.norm_slots(slots))  # (F, K, C)
            # softmax over slots: the slots compete for each input position
            attn = (k @ q.transpose(1, 2) * self.scale).softmax(dim=-1)  # (F, M, K)
            attn = attn + 1e-8
            attn = attn / attn.sum(dim=1, keepdim=True)  # weighted mean over positions
            updates = attn.transpose(1, 2) @ v  # (F, K, C)
            slots = self.gru(updates.flatten(0, 1), prev.flatten(0, 1)).view_as(prev)
            slots = slots + self.mlp(self.norm_mlp(slots))  # (F, K, C)
        return slots


def random_slot_mask(batch: int, steps: int, num_slots: int, ratio: float, device) -> Tensor:
    """Object-level mask `(B, T, K)` bool, True = replace that slot's predictor input by the
    mask token: per clip a random subset of round(ratio * K) slots (at least one when ratio
    > 0, at most K - 1 so one object stays visible), masked at every step t >= 1; step 0 stays visible as the masked objects' identity
    anchor (C-JEPA). Uses the global torch RNG (seeded and checkpointed by the trainer)."""
    count = min(max(1, round(ratio * num_slots)), max(num_slots - 1, 1)) if ratio > 0 else 0
    rank = torch.rand(batch, num_slots, device=device).argsort(-1).argsort(-1)  # (B, K)
    chosen = rank < count  # (B, K), `count` True per clip
    mask = chosen[:, None].expand(batch, steps, num_slots).clone()  # (B, T, K)
    mask[:, 0] = False
    return mask


def chamfer_distance(z: Tensor, goal: Tensor) -> Tensor:
    """Symmetric Chamfer distance between two sets of slots, `(..., K, D)` and `(..., K', D)`
    (broadcast over leading dims) -> `(...)`: each goal slot to its nearest slot of `z` and
    each slot of `z` to its nearest goal slot, the two means averaged. The per-pair distance
    is the mean |a - b| over channels (the planning energy's L1), so for matching slot order
    it is at most `WorldModel.energy`'s ordered value and equals 0 only at the goal set."""
    diff = z.unsqueeze(-2) - goal.unsqueeze(-3)  # (..., K, K', D)
    pair = diff.abs().mean(-1)  # (..., K, K')
    return 0.5 * (pair.amin(-1).mean(-1) + pair.amin(-2).mean(-1))
