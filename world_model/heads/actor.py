"""A goal-conditioned action head: the actor that proposes, for a world model that verifies.

INTACT (arXiv 2607.26056; ANCHORS.md, "a learned proposal, verified by the model") adds one
head to a LeWM-style JEPA. It maps the current latent and an *intent* to a diagonal Gaussian
over the next action block:

    pi(a_t:t+k | z_t, m, a_t-k:t) = N(mu, sigma),   input [z_t, m, z_t * m, a_t-k:t]

The intent `m` is either the observed change `z_t+k - z_t` (physical intent: an inverse
model) or the goal displacement `z_goal - z_t` (goal intent: hindsight goal-conditioned
behaviour cloning), through the same parameters. Why it helps: a broad CEM over the learned
model finds the actions whose outcome the model has never seen and exploits them (on our cube
starts CEM's plan beats the expert's in imagined energy in 75-95 % of starts and ends 21-23 cm
off); the head proposes where the data is, and the planner only checks locally (`planner=
direct`, configs/planner/direct.yaml).

Two ways to train it, one head and one file format: here on a *frozen* checkpoint's latents
(encoded once, cached), so every existing checkpoint, and a frozen V-JEPA 2 encoder, gets one
without retraining; or jointly with the encoder and predictor, INTACT's way (the lewm recipe's
`train.actor_weight`, world_model/training/lewm.py; samples from `clip_samples`). It lives in
the checkpoint directory as `actor.safetensors`, declared in `config.json` under
`extra.actor`, like the reachability head.

    python -m world_model.heads.actor checkpoint=runs/cube_k5/world_model \
        data=[data/ogbench_cube_train.h5]
    wm-train --config-name train_lewm actor_weight=0.1 actor_goal_weight=0.05 data=[...]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from envs.data import open_dataset
from world_model.checkpoint import CheckpointConfig, read_config
from world_model.heads.extras import (
    OfflineRecipe,
    cli_episodes,
    fit,
    load_extra,
    save_extra,
    split_episodes,
)

KEY = "actor"
Sample = tuple[Tensor, Tensor, Tensor, Tensor]  # (z_t, intent, previous block, block)
LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0  # sigma in [0.007, 2.7] z-scored action units


@dataclass(frozen=True)
class ActorConfig(OfflineRecipe):
    """Head size and goal sampling, on the shared offline recipe."""

    hidden_dim: int = 256
    """Width of the head's hidden layers."""
    depth: int = 3
    """Linear layers (INTACT's actor has 3)."""
    goal_window: int = 25
    """Goal-intent targets lie k .. goal_window control steps ahead (25: the anchors' goal
    offset; cube Direct 66 vs 60 % with goals anywhere ahead, docs/experiments.md); 0: up to
    the episode's end (what a whole-task goal image asks)."""
    goal_weight: float = 0.5
    """Weight of the goal-intent NLL against the physical-intent one (INTACT: 0.05 / 0.10)."""
    steps: int = 4000
    """Optimiser steps (each sample carries both intents)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hidden_dim", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"ActorConfig.{name}={getattr(self, name)}: must be >= 1")
        if self.goal_window < 0:
            raise ValueError(f"ActorConfig.goal_window={self.goal_window}: must be >= 0")
        if not self.goal_weight >= 0:
            raise ValueError(f"ActorConfig.goal_weight={self.goal_weight}: must be >= 0")


class ActionHead(nn.Module):
    """`(z (..., N, D), intent (..., N, D), prev_block (..., k * A)) -> (mean, std)`, each
    `(..., k * A)` in the env's action units (z-scored inside by the predictor's statistics)."""

    def __init__(
        self,
        cfg: ActorConfig,
        num_tokens: int,
        latent_dim: int,
        action_mean: Tensor,
        action_std: Tensor,
    ) -> None:
        super().__init__()
        self.cfg, self.num_tokens, self.latent_dim = cfg, num_tokens, latent_dim
        self.block_dim = int(action_mean.numel())
        self.register_buffer("action_mean", action_mean.detach().float().clone())
        # frozen dimensions (std 0 in the data) would divide by zero
        self.register_buffer("action_std", action_std.detach().float().clamp_min(1e-3).clone())
        width = num_tokens * latent_dim
        dims = [3 * width + self.block_dim] + [cfg.hidden_dim] * (cfg.depth - 1)
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.LayerNorm(d_out), nn.GELU()]
        layers.append(nn.Linear(dims[-1], 2 * self.block_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, z: Tensor, intent: Tensor, prev_block: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self._normalized(z, intent, prev_block)
        return mean * self.action_std + self.action_mean, log_std.exp() * self.action_std

    def _normalized(self, z: Tensor, intent: Tensor, prev_block: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-std `(..., k * A)` in z-scored action units."""
        shape = (self.num_tokens, self.latent_dim)
        if z.shape[-2:] != shape or intent.shape[-2:] != shape:
            raise ValueError(
                f"action head takes latents (..., {self.num_tokens}, {self.latent_dim}); got "
                f"{tuple(z.shape)} and intent {tuple(intent.shape)}"
            )
        if prev_block.shape[-1] != self.block_dim:
            raise ValueError(
                f"action head takes previous blocks (..., {self.block_dim}); got "
                f"{tuple(prev_block.shape)}"
            )
        z, m = z.flatten(-2), intent.flatten(-2)  # [..., N * D]
        prev = (prev_block - self.action_mean) / self.action_std  # [..., k * A]
        out = self.mlp(torch.cat([z, m, z * m, prev], dim=-1))  # [..., 2 * k * A]
        mean, log_std = out.chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def nll(self, z: Tensor, intent: Tensor, prev_block: Tensor, block: Tensor) -> Tensor:
        """Gaussian negative log-likelihood of the taken `block` `(B, k * A)`, per sample mean."""
        mean, log_std = self._normalized(z, intent, prev_block)
        target = (block - self.action_mean) / self.action_std
        return (0.5 * ((target - mean) / log_std.exp()).square() + log_std).mean()


# ---------------------------------------------------------------------------------- training
@dataclass
class BlockSampler:
    """(z_t, physical intent, goal intent, previous block, block) from encoded episodes."""

    latents: list[Tensor]  # each [T + 1, N, D]
    actions: list[Tensor]  # each [T, A]
    block: int
    goal_window: int
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __post_init__(self) -> None:
        k = self.block
        keep = [i for i, a in enumerate(self.actions) if len(a) >= k]
        if not keep:
            raise ValueError(f"no episode holds a whole action block of {k} steps")
        self.z = torch.cat([self.latents[i] for i in keep])  # [sum(T + 1), N, D]
        pad = [torch.cat([self.actions[i], self.actions[i][:1] * 0]) for i in keep]
        self.a = torch.cat(pad)  # [sum(T + 1), A]: a zero row after each episode's last step
        steps = torch.tensor([len(self.actions[i]) for i in keep])  # [Ep] T per episode
        self.steps = steps
        self.offset = torch.cumsum(steps + 1, 0) - (steps + 1)  # [Ep] first frame's row

    def sample(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        g, k = self.generator, self.block
        ep = torch.randint(len(self.steps), (n,), generator=g)
        last_start = self.steps[ep] - k  # a whole block must follow t
        t = (torch.rand(n, generator=g) * (last_start + 1)).long()
        reach = self.steps[ep] - t  # control steps left after t (>= k)
        if self.goal_window:
            reach = reach.clamp(max=max(self.goal_window, k))
        d = k + (torch.rand(n, generator=g) * (reach - k + 1)).long()  # goal d in [k, reach]
        row = self.offset[ep] + t
        z = self.z[row]  # [n, N, D]
        physical = self.z[row + k] - z
        goal = self.z[row + d] - z
        steps = torch.arange(k)
        block = self.a[row[:, None] + steps].flatten(1)  # [n, k * A]
        prev_rows = row[:, None] - k + steps  # [n, k]
        prev = self.a[prev_rows.clamp_min(0)]
        prev = torch.where((t[:, None] >= k)[..., None], prev, torch.zeros_like(prev))
        return z, physical, goal, prev.flatten(1), block


def clip_samples(
    z: Tensor, actions: Tensor, goal_blocks: int, generator: torch.Generator | None = None
) -> tuple[Sample, Sample | None]:
    """INTACT's samples from training clips, for the joint variant (`BlockSampler` draws the
    frozen variant's from whole episodes).

    z `(B, T, N, D)`: latents one block apart; actions `(B, T - 1, k * A)`: the blocks between
    them -> (physical, goal), each `(z_t, intent, previous block, block)`:
    - physical, at every position t < T - 1: intent `z_t+1 - z_t`, gradients attached (the
      encoder learns to make the change readable);
    - goal, at the positions whose `goal_blocks` window fits in the clip: intent
      `sg(z_t+j) - z_t`, j uniform in 1..goal_blocks (the frozen window at block multiples,
      never shortened by the clip's end); None when `goal_blocks` is 0.
    Position 0's previous block is zeros: the agent's first decision has none either,
    wherever its start lies. Goal offsets are drawn on the CPU (`generator`, else torch's
    global generator, which resumable checkpoints restore).
    """
    b, t = z.shape[:2]
    prev = torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], dim=1)  # [B, T-1, kA]
    physical = (z[:, :-1], z[:, 1:] - z[:, :-1], prev, actions)
    if goal_blocks == 0:
        return physical, None
    if not 1 <= goal_blocks < t:
        raise ValueError(f"goal window of {goal_blocks} blocks in clips of {t} frames")
    starts = t - goal_blocks  # positions 0 .. T-1-W have a whole window ahead
    ahead = torch.randint(1, goal_blocks + 1, (b, starts), generator=generator)  # [B, P]
    row = (torch.arange(starts) + ahead).to(z.device)  # [B, P] goal frame of each position
    z_goal = z.detach()[torch.arange(b, device=z.device)[:, None], row]  # [B, P, N, D]
    z_t = z[:, :starts]  # [B, P, N, D]
    return physical, (z_t, z_goal - z_t, prev[:, :starts], actions[:, :starts])


@torch.no_grad()
def intent_errors(head: ActionHead, physical: Sample, goal: Sample) -> dict[str, float]:
    """MSE (z-scored action units) of the head's mean block under each intent, and of
    predicting the data mean (`val_zero_mse`): the held-out figures saved with a head."""
    metrics = {}
    for name, (z, intent, prev, taken) in (("physical", physical), ("goal", goal)):
        target = (taken - head.action_mean) / head.action_std
        mean, _ = head._normalized(z, intent, prev)
        metrics[f"val_{name}_mse"] = float((mean - target).square().mean())
    target = (physical[3] - head.action_mean) / head.action_std
    metrics["val_zero_mse"] = float(target.square().mean())
    return metrics


def train_actor(
    latents: list[Tensor],
    actions: list[Tensor],
    block: int,
    action_mean: Tensor,
    action_std: Tensor,
    cfg: ActorConfig,
    log_every: int = 500,
    init: ActionHead | None = None,
) -> tuple[ActionHead, dict[str, float]]:
    """Fit a head on encoded episodes; returns it and its held-out errors (z-scored units).

    `init`: a head of the same size whose weights this one starts from (wm-improve's
    previous round: the latents moved little, so a warm start needs far fewer steps)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    train_idx, val_idx = split_episodes(list(range(len(latents))), cfg.val_fraction, gen)

    def sampler(idx: list[int]) -> BlockSampler:
        picked = ([latents[i] for i in idx], [actions[i] for i in idx])
        return BlockSampler(*picked, block, cfg.goal_window, gen)

    train, val = sampler(train_idx), sampler(val_idx)
    _, num_tokens, latent_dim = latents[0].shape
    torch.manual_seed(cfg.seed)
    head = ActionHead(cfg, num_tokens, latent_dim, action_mean, action_std)
    if init is not None:
        head.load_state_dict(init.state_dict())  # a different size is refused by name there

    def batch_loss() -> Tensor:
        z, physical, goal, prev, taken = train.sample(cfg.batch_size)
        loss = head.nll(z, physical, prev, taken)
        return loss + cfg.goal_weight * head.nll(z, goal, prev, taken)

    fit(head, batch_loss, cfg.steps, cfg.lr, cfg.weight_decay, log_every)
    z, physical, goal, prev, taken = val.sample(4096)
    return head, intent_errors(head, (z, physical, prev, taken), (z, goal, prev, taken))


def load_actions(paths: list[str]) -> list[Tensor]:
    """Each episode's actions `(T, A)`, in the order `extras.encode_episodes` encodes them."""
    out = []
    for path in paths:
        with open_dataset(path) as reader:
            out.extend(torch.as_tensor(np.asarray(e.actions, np.float32)) for e in reader)
    return out


# ---------------------------------------------------------------------------------- files
def save_actor(head: ActionHead, checkpoint: str | Path, info: dict | None = None) -> Path:
    """Write `actor.safetensors` into the checkpoint and declare it in config.json."""
    entry = {"config": asdict(head.cfg), "num_tokens": head.num_tokens}
    entry |= {"latent_dim": head.latent_dim, "block_dim": head.block_dim}
    return save_extra(head, checkpoint, KEY, {**entry, **(info or {})})


def load_actor(checkpoint: str | Path | CheckpointConfig, device: str = "cpu") -> ActionHead | None:
    """The action head a checkpoint (its directory or config.json as read) declares, or None."""
    stored = read_config(checkpoint)  # an already read config passes through

    def build(entry: dict) -> ActionHead:
        dim = int(entry["block_dim"])
        placeholder = torch.zeros(dim), torch.ones(dim)  # real values load with the weights
        cfg = ActorConfig(**entry["config"])
        return ActionHead(cfg, entry["num_tokens"], entry["latent_dim"], *placeholder)

    head = load_extra(stored, KEY, build, device)
    if head is not None:
        bad = [n for n, p in head.state_dict().items() if not torch.isfinite(p).all()]
        if bad:
            raise ValueError(f"{stored.path}/actor.safetensors: non-finite values in {bad[:3]}")
    return head


def main(argv: list[str] | None = None) -> None:
    """`key=value` arguments: checkpoint=DIR data=[a.h5,b.h5] and any ActorConfig field."""
    checkpoint, world_model, data, latents, fields = cli_episodes(argv, "world_model.heads.actor")
    cfg = ActorConfig(**fields)
    predictor = world_model.predictor
    actions = load_actions(data)
    if [len(a) + 1 for a in actions] != [len(z) for z in latents]:
        raise ValueError(f"{data}: actions and frames disagree in length (stale latents_cache?)")
    block = world_model.action_block
    head, metrics = train_actor(
        latents, actions, block, predictor.action_mean, predictor.action_std, cfg
    )
    info = {**metrics, "data": data, "episodes": len(latents)}
    print(json.dumps(metrics), "->", save_actor(head, checkpoint, info), flush=True)


if __name__ == "__main__":
    main()
