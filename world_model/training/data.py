"""Training clips over cached latents, with a data order that is a pure function of
(seed, step) so a resumed run sees exactly the batches an uninterrupted run would."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from world_model.training.latents import LatentSet


def split_episodes(num_episodes: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, val) episode indices from a seeded permutation; val is empty for fraction 0."""
    perm = torch.randperm(num_episodes, generator=torch.Generator().manual_seed(seed))
    num_val = int(round(num_episodes * val_fraction))
    if val_fraction > 0 and num_episodes > 1:
        num_val = max(num_val, 1)
    return perm[num_val:].sort().values, perm[:num_val].sort().values


def input_stats(data: LatentSet, episodes: Tensor) -> dict[str, list[float]]:
    """Per-dimension mean / std of actions and states over `episodes` (predictor input
    normalisation). Dimensions that never vary (e.g. frozen rotation) get std 1, so a planner
    sampling a small value there is not amplified into a huge input."""
    frames, real_action = [], []
    for e in episodes.tolist():
        start, length = int(data.starts[e]), int(data.lengths[e])
        idx = torch.arange(start, start + length)
        frames.append(idx)
        real_action.append(idx[:-1])  # the last frame's action row is padding
    states = data.states[torch.cat(frames)].double()
    actions = data.actions[torch.cat(real_action)].double()

    def std(x: Tensor) -> list[float]:
        s = x.std(0) if len(x) > 1 else torch.ones(x.shape[-1], dtype=x.dtype)
        return torch.where(s < 1e-4, torch.ones_like(s), s).tolist()

    return {
        "action_mean": actions.mean(0).tolist(),
        "action_std": std(actions),
        "state_mean": states.mean(0).tolist(),
        "state_std": std(states),
    }


@dataclass
class Clips:
    """All windows of `clip_len` frames, `block` control steps apart, inside the chosen
    episodes. `data.latents` may also hold raw frames (end-to-end objective)."""

    data: LatentSet
    clip_len: int
    starts: Tensor  # (C,) flat index of each clip's first frame
    block: int = 1

    @staticmethod
    def build(data: LatentSet, episodes: Tensor, clip_len: int, block: int = 1) -> Clips:
        span = (clip_len - 1) * block + 1  # control-rate frames a clip covers
        # An episode shorter than a clip (e.g. Push-T's pusher ends on success) gives none.
        starts = [
            torch.arange(
                int(data.starts[e]),
                max(int(data.starts[e]), int(data.starts[e] + data.lengths[e]) - span + 1),
            )
            for e in episodes.tolist()
        ]
        flat = torch.cat(starts) if starts else torch.zeros(0, dtype=torch.int64)
        return Clips(data, clip_len, flat, block)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, clip_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> z `(B, T, N, D)` (or frames), actions `(B, T - 1, k * 7)` (each block's k actions
        concatenated in time order), states `(B, T, 7)`."""
        k = self.block
        frame = self.frame_index(clip_ids).to(self.data.latents.device)  # (B, T)
        steps = frame[:, :-1, None] + torch.arange(k, device=frame.device)  # (B, T - 1, k)
        actions = self.data.actions[steps].flatten(-2)  # (B, T - 1, k, 7) -> (B, T - 1, k * 7)
        return self.data.latents[frame], actions, self.data.states[frame]

    def frame_index(self, clip_ids: Tensor) -> Tensor:
        """`(B, T)` flat frame index of each clip's frames (one block apart)."""
        return self.starts[clip_ids][:, None] + self.block * torch.arange(self.clip_len)

    def clip_ids(self, step: int, batch_size: int, seed: int) -> Tensor:
        """Global batch of clip ids for optimizer step `step` (epoch-wise seeded permutations),
        a function of (seed, step)."""
        if len(self) < batch_size:
            # tiny datasets: sample with replacement, still a function of (seed, step)
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
            return torch.randint(len(self), (batch_size,), generator=gen)
        per_epoch = len(self) // batch_size
        epoch, pos = divmod(step, per_epoch)
        perm = torch.randperm(
            len(self), generator=torch.Generator().manual_seed(seed * 7919 + epoch)
        )
        return perm[pos * batch_size : (pos + 1) * batch_size]
