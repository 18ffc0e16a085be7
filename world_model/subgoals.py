"""A learned sub-goal proposer: from the current latent and the goal's, the latent `stride`
control steps along the way (HWM's high level, as a goal-conditioned proposer, not a coarse
world model).

Trained offline on the same trajectories with hindsight goals: for frames t and t + d of one
episode, the target is frame t + min(stride, d). Near the goal (d <= stride) it learns to
propose the goal itself, so the agent can always plan towards the proposal. This replaces
the demonstration frames V-JEPA 2-AC needs for pick-and-place; a user gives one goal image.

    python -m world_model.subgoals checkpoint=runs/push data=[data/push_mixed.h5] stride=5
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from world_model.extras import (
    cli_episodes,
    encode_task_goals,
    fit,
    load_extra,
    save_extra,
    split_episodes,
)

KEY = "subgoals"


@dataclass(frozen=True)
class SubgoalConfig:
    """Proposer size, sub-goal spacing and the offline training recipe."""

    stride: int = 5
    """Control steps from the current frame to the proposed sub-goal (one planning horizon)."""
    hidden_dim: int = 512
    """Width of the MLP's two hidden layers."""
    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 256
    """(current, goal) pairs per step."""
    lr: float = 1e-3
    """AdamW learning rate (cosine decay to 0)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    val_fraction: float = 0.1
    """Episodes held out to report the error."""
    seed: int = 0
    """Seeds the split, the pairs and the initial weights."""
    goal: str = "hindsight"
    """"hindsight": the goal is a later frame of the same episode. "task": the goal is the
    episode's recorded task goal image, the one a user gives at protocol=task; why: a hindsight
    frame shows the arm where the episode happened to be, a task goal image shows where the
    task wants it, and the two differ most in the push and pick-place goals the agent misses."""
    only_success: bool = False
    """Train only on episodes that reached their task goal (the `success` attr): with
    `goal=task`, a failed episode's path does not lead to its goal image."""

    def __post_init__(self) -> None:
        for name in ("stride", "hidden_dim", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"SubgoalConfig.{name}={getattr(self, name)}: must be >= 1")
        if self.goal not in ("hindsight", "task"):
            raise ValueError(f"SubgoalConfig.goal={self.goal!r}: expected hindsight or task")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"SubgoalConfig.val_fraction={self.val_fraction}: in (0, 1)")


class SubgoalProposer(nn.Module):
    """`(z (..., N, D), goal (..., N, D)) -> sub-goal latent (..., N, D)`: z plus a learned step."""

    def __init__(self, cfg: SubgoalConfig, num_tokens: int, latent_dim: int) -> None:
        super().__init__()
        self.cfg, self.num_tokens, self.latent_dim = cfg, num_tokens, latent_dim
        width = num_tokens * latent_dim
        self.mlp = nn.Sequential(
            nn.Linear(2 * width, cfg.hidden_dim),
            nn.GELU(),
            nn.Linear(cfg.hidden_dim, cfg.hidden_dim),
            nn.GELU(),
            nn.Linear(cfg.hidden_dim, width),
        )

    def forward(self, z: Tensor, goal: Tensor) -> Tensor:
        if z.shape[-2:] != (self.num_tokens, self.latent_dim) or goal.shape != z.shape:
            raise ValueError(
                f"sub-goal proposer takes latents (..., {self.num_tokens}, {self.latent_dim}) "
                f"of equal shape; got {tuple(z.shape)} and goal {tuple(goal.shape)}"
            )
        x = torch.cat([z.flatten(-2), goal.flatten(-2)], dim=-1)  # [..., 2 N D]
        return z + self.mlp(x).unflatten(-1, (self.num_tokens, self.latent_dim))  # [..., N, D]


def sample_triplets(
    episodes: list[Tensor],
    stride: int,
    n: int,
    generator: torch.Generator,
    task_goals: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(current, goal, target) latents `(n, N, D)` each: goal d >= 0 frames ahead, target
    min(stride, d) frames ahead, all in one episode. With `task_goals (E, N, D)` the goal is
    the episode's task goal instead, and the target `stride` frames ahead (or its last)."""
    z = torch.cat(episodes)  # [sum T, N, D]
    lengths = torch.tensor([len(e) for e in episodes])
    offset = torch.cumsum(lengths, 0) - lengths
    ep = torch.randint(len(episodes), (n,), generator=generator)
    t = (torch.rand(n, generator=generator) * lengths[ep]).long()
    d = (torch.rand(n, generator=generator) * (lengths[ep] - t)).long()
    start = offset[ep] + t
    if task_goals is not None:
        ahead = (lengths[ep] - 1 - t).clamp(max=stride)
        return z[start], task_goals[ep], z[start + ahead]
    return z[start], z[start + d], z[start + d.clamp(max=stride)]


def train_proposer(
    episodes: list[Tensor],
    cfg: SubgoalConfig,
    log_every: int = 500,
    task_goals: Tensor | None = None,
    success: Tensor | None = None,
) -> tuple[SubgoalProposer, dict[str, float]]:
    """Fit a proposer; returns it and its held-out error relative to proposing the goal.

    `task_goals (E, N, D)` (needed by `cfg.goal="task"`) and `success (E,)` (needed by
    `cfg.only_success`) are per episode, as `world_model.extras.encode_task_goals` reads them."""
    if cfg.goal == "task" and (task_goals is None or len(task_goals) != len(episodes)):
        raise ValueError("SubgoalConfig.goal=task needs one encoded task goal per episode")
    if cfg.only_success:
        if success is None or len(success) != len(episodes):
            raise ValueError("SubgoalConfig.only_success needs one success flag per episode")
        keep = torch.nonzero(success).flatten().tolist()
        if len(keep) < 2:
            raise ValueError(f"only_success: {len(keep)} of {len(episodes)} episodes succeeded")
        episodes = [episodes[i] for i in keep]
        task_goals = task_goals[keep] if task_goals is not None else None
    gen = torch.Generator().manual_seed(cfg.seed)
    train_ids, val_ids = split_episodes(list(range(len(episodes))), cfg.val_fraction, gen)
    train_eps = [episodes[i] for i in train_ids]
    val_eps = [episodes[i] for i in val_ids]
    use_goals = cfg.goal == "task"
    train_goals = task_goals[train_ids] if use_goals else None
    val_goals = task_goals[val_ids] if use_goals else None
    _, num_tokens, latent_dim = episodes[0].shape
    torch.manual_seed(cfg.seed)
    model = SubgoalProposer(cfg, num_tokens, latent_dim)

    def batch_loss() -> Tensor:
        z, goal, target = sample_triplets(train_eps, cfg.stride, cfg.batch_size, gen, train_goals)
        return nn.functional.mse_loss(model(z, goal), target)

    fit(model, batch_loss, cfg.steps, cfg.lr, cfg.weight_decay, log_every)
    with torch.no_grad():
        z, goal, target = sample_triplets(val_eps, cfg.stride, 4096, gen, val_goals)
        err = (model(z, goal) - target).square().mean()
        metrics = {
            "val_mse": float(err),
            "val_mse_vs_current": float(err / (z - target).square().mean()),
            "val_mse_vs_goal": float(err / (goal - target).square().mean()),
        }
    return model, metrics


def save_proposer(model: SubgoalProposer, checkpoint: str | Path, info: dict | None = None):
    """Write `subgoals.safetensors` into the checkpoint and declare it in config.json."""
    entry = {"config": asdict(model.cfg), "num_tokens": model.num_tokens}
    return save_extra(
        model, checkpoint, KEY, {**entry, "latent_dim": model.latent_dim, **(info or {})}
    )


def load_proposer(checkpoint: str | Path, device: str = "cpu") -> SubgoalProposer | None:
    """The proposer a checkpoint declares, or None when it has none."""

    def build(entry: dict) -> SubgoalProposer:
        cfg = SubgoalConfig(**entry["config"])
        return SubgoalProposer(cfg, entry["num_tokens"], entry["latent_dim"])

    return load_extra(checkpoint, KEY, build, device)


def main(argv: list[str] | None = None) -> None:
    """`key=value` arguments: checkpoint=DIR data=[a.h5,b.h5] and any SubgoalConfig field."""
    checkpoint, data, episodes, fields = cli_episodes(argv, "world_model.subgoals")
    cfg = SubgoalConfig(**fields)
    goals = success = None
    if cfg.goal == "task" or cfg.only_success:
        from world_model import load_world_model

        goals, success = encode_task_goals(load_world_model(checkpoint).eval(), data)
    model, metrics = train_proposer(episodes, cfg, task_goals=goals, success=success)
    used = int(success.sum()) if cfg.only_success else len(episodes)
    info = {**metrics, "data": data, "episodes": used}
    print(json.dumps(metrics), "->", save_proposer(model, checkpoint, info), flush=True)


if __name__ == "__main__":
    main()
