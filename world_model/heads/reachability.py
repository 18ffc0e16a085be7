"""A learned reachability / temporal-distance head on latents (RC-aux, TRM).

`ReachabilityHead(z, goal)` predicts how many control steps separate a latent from a goal
latent, clipped to a budget B. Plain latent distance underweights small objects (the cube
carries under 1 % of the latent MSE, TRM), while the number of steps a trajectory needed
between two frames does not: it is what the planner actually wants to minimise.

Training is offline, on the world model's own latents of recorded trajectories, with hindsight
goals: a pair (frame t, frame t + d) of one episode is labelled min(d, B). Temporal hard
negatives (RC-aux) are frames of the same episode more than B steps ahead, labelled B: they
look like the start (same scene, same cube) but are out of reach within the budget.

The head lives in the world model's checkpoint directory: `reachability.safetensors`, declared
in `config.json` under `extra.reachability` (its config, input shape and validation error), so
the world model's own format is unchanged.

    python -m world_model.heads.reachability checkpoint=runs/push data=[data/push_mixed.h5]
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from world_model.checkpoint import CheckpointConfig, read_config
from world_model.heads.extras import (
    OfflineRecipe,
    cli_episodes,
    fit,
    load_extra,
    save_extra,
    split_episodes,
)

KEY = "reachability"


@dataclass(frozen=True)
class ReachabilityConfig(OfflineRecipe):
    """Head size and label budget, on the shared offline recipe."""

    budget: int = 25
    """Labels and predictions are clipped to this many control steps (LeWM plans 5 x 5)."""
    embed_dim: int = 128
    """Width each latent is projected to before the pair MLP."""
    hidden_dim: int = 256
    """Width of the pair MLP's two hidden layers."""
    far_fraction: float = 0.5
    """Share of pairs whose goal is any later frame of the episode (hard negatives when more
    than `budget` ahead); the rest are drawn within the budget."""
    cross_fraction: float = 0.0
    """Share of pairs whose goal is a frame of another episode, labelled `budget`. Why: within
    one episode the cube rarely moves, so a head trained on hindsight pairs alone learns to
    read the arm and, like the latent distance, calls "arm at its goal pose, cube not pushed"
    near (bench/results/energy_configs.md); another episode's frame shows the cube elsewhere,
    which is out of reach within the budget."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("budget", "embed_dim", "hidden_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReachabilityConfig.{name}={getattr(self, name)}: must be >= 1")
        for name in ("far_fraction", "cross_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"ReachabilityConfig.{name}={getattr(self, name)}: in [0, 1]")


class ReachabilityHead(nn.Module):
    """`(z (..., N, D), goal (..., N, D)) -> steps (...)` in [0, budget]; shapes broadcast."""

    def __init__(self, cfg: ReachabilityConfig, num_tokens: int, latent_dim: int) -> None:
        super().__init__()
        self.cfg, self.num_tokens, self.latent_dim = cfg, num_tokens, latent_dim
        width = num_tokens * latent_dim
        self.embed = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.embed_dim), nn.GELU())
        self.mlp = nn.Sequential(
            nn.Linear(3 * cfg.embed_dim, cfg.hidden_dim),
            nn.GELU(),
            nn.Linear(cfg.hidden_dim, cfg.hidden_dim),
            nn.GELU(),
            nn.Linear(cfg.hidden_dim, 1),
        )

    def forward(self, z: Tensor, goal: Tensor) -> Tensor:
        if z.shape[-2:] != (self.num_tokens, self.latent_dim) or goal.shape[-2:] != z.shape[-2:]:
            raise ValueError(
                f"reachability head takes latents (..., {self.num_tokens}, {self.latent_dim}); "
                f"got {tuple(z.shape)} and goal {tuple(goal.shape)}"
            )
        a = self.embed(z.flatten(-2))  # [..., F]: the goal is embedded once, then broadcast
        g = self.embed(goal.flatten(-2))  # [..., F]
        a, g = torch.broadcast_tensors(a, g)
        x = torch.cat([a, g, (a - g).abs()], dim=-1)  # [..., 3F]
        return torch.sigmoid(self.mlp(x)[..., 0]) * self.cfg.budget


# ---------------------------------------------------------------------------------- training
@dataclass
class PairSampler:
    """Hindsight pairs (start, goal, label) from encoded episodes, one generator."""

    episodes: list[Tensor]
    cfg: ReachabilityConfig
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __post_init__(self) -> None:
        self.z = torch.cat(self.episodes)  # [sum T, N, D]
        lengths = torch.tensor([len(e) for e in self.episodes])
        self.last = lengths - 1  # [Ep] last frame index per episode
        self.offset = torch.cumsum(lengths, 0) - lengths  # [Ep]

    def sample(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        g, budget = self.generator, self.cfg.budget
        ep = torch.randint(len(self.episodes), (n,), generator=g)
        t = (torch.rand(n, generator=g) * (self.last[ep] + 1)).long()  # start frame
        ahead = self.last[ep] - t  # frames left in the episode
        far = torch.rand(n, generator=g) < self.cfg.far_fraction
        reach = torch.where(far, ahead, ahead.clamp(max=budget))
        d = (torch.rand(n, generator=g) * (reach + 1)).long()  # goal d frames ahead
        start, goal = self.offset[ep] + t, self.offset[ep] + t + d
        label = d.clamp(max=budget).float()
        cross = torch.rand(n, generator=g) < self.cfg.cross_fraction
        if len(self.episodes) > 1 and bool(cross.any()):
            # another episode (never the same one), any of its frames, out of reach
            other = (ep + torch.randint(1, len(self.episodes), (n,), generator=g)) % len(
                self.episodes
            )
            frame = (torch.rand(n, generator=g) * (self.last[other] + 1)).long()
            goal = torch.where(cross, self.offset[other] + frame, goal)
            label = torch.where(cross, torch.full_like(label, budget), label)
        return self.z[start], self.z[goal], label


def train_head(
    episodes: list[Tensor], cfg: ReachabilityConfig, log_every: int = 500
) -> tuple[ReachabilityHead, dict[str, float]]:
    """Fit a head on encoded episodes; returns it and its held-out error in control steps."""
    gen = torch.Generator().manual_seed(cfg.seed)
    train_eps, val_eps = split_episodes(episodes, cfg.val_fraction, gen)
    train, val = PairSampler(train_eps, cfg, gen), PairSampler(val_eps, cfg, gen)
    _, num_tokens, latent_dim = episodes[0].shape
    torch.manual_seed(cfg.seed)
    head = ReachabilityHead(cfg, num_tokens, latent_dim)

    def batch_loss() -> Tensor:
        z, goal, label = train.sample(cfg.batch_size)
        return nn.functional.smooth_l1_loss(head(z, goal) / cfg.budget, label / cfg.budget)

    fit(head, batch_loss, cfg.steps, cfg.lr, cfg.weight_decay, log_every)
    with torch.no_grad():
        z, goal, label = val.sample(4096)
        pred = head(z, goal)
        within = label < cfg.budget
        metrics = {
            "val_mae_steps": float((pred - label).abs().mean()),
            "val_mae_steps_within_budget": float((pred - label)[within].abs().mean()),
            "val_spearman": _spearman(pred, label),
        }
    return head, metrics


def _spearman(a: Tensor, b: Tensor) -> float:
    ra = a.argsort().argsort().float()
    rb = b.argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / math.sqrt(float((ra**2).sum() * (rb**2).sum()) + 1e-12))


# ---------------------------------------------------------------------------------- files
def save_head(head: ReachabilityHead, checkpoint: str | Path, info: dict | None = None) -> Path:
    """Write `reachability.safetensors` into the checkpoint and declare it in config.json."""
    entry = {"config": asdict(head.cfg), "num_tokens": head.num_tokens}
    return save_extra(
        head, checkpoint, KEY, {**entry, "latent_dim": head.latent_dim, **(info or {})}
    )


def load_head(
    checkpoint: str | Path | CheckpointConfig, device: str = "cpu"
) -> ReachabilityHead | None:
    """The head a checkpoint (its directory or config.json as read) declares, or None."""
    stored = read_config(checkpoint)  # an already read config passes through

    def build(entry: dict) -> ReachabilityHead:
        config = dict(entry["config"])
        # Heads saved before the learned-metric variant was deleted record kind="mlp": the
        # only kind left. A metric head cannot be rebuilt (docs/experiments.md).
        kind = config.pop("kind", "mlp")
        if kind != "mlp":
            raise ValueError(
                f"{stored.path}/config.json: reachability head kind={kind!r} was deleted (only "
                "the pair-MLP head remains); retrain it: python -m world_model.heads.reachability"
            )
        cfg = ReachabilityConfig(**config)
        return ReachabilityHead(cfg, entry["num_tokens"], entry["latent_dim"])

    return load_extra(stored, KEY, build, device)


def main(argv: list[str] | None = None) -> None:
    """`key=value` arguments: checkpoint=DIR data=[a.h5,b.h5] and any ReachabilityConfig field."""
    checkpoint, _, data, episodes, fields = cli_episodes(argv, "world_model.heads.reachability")
    cfg = ReachabilityConfig(**fields)
    head, metrics = train_head(episodes, cfg)
    lengths = np.array([len(e) - 1 for e in episodes])
    info = {**metrics, "data": data, "episodes": len(episodes), "mean_len": lengths.mean()}
    print(json.dumps(metrics), "->", save_head(head, checkpoint, info), flush=True)


if __name__ == "__main__":
    main()
