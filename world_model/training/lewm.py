"""End-to-end objective (LeWorldModel, arXiv 2603.19312): the encoder, its BatchNorm projector
and the action-conditioned predictor train jointly from pixels on

    loss = MSE(teacher-forced next latents) + MSE(open-loop rollout over the planning horizon)
           + sigreg_weight * SIGReg(latents of each time step)

with no EMA target, no stop-gradient and no pretrained encoder: SIGReg alone keeps the latents
from collapsing. Departures from LeWM, all for 2 CPU cores or for planning: a small conv encoder
instead of the ViT-tiny, the V-JEPA 2-AC predictor (action and proprio tokens, no AdaLN, no
dropout), and the added open-loop term over `auto_steps` blocks from a `history`-frame context,
computed by the same cached `rollout` the planner calls (Fast-LeWM / VLWM: supervise the
horizon you plan over).

With `actor` (INTACT, arXiv 2607.26056; `train.actor_weight`), the action head trains in the
same step: + w_physical x NLL(block | z_t, z_t+1 - z_t) + w_goal x NLL(block | z_t,
sg(z_goal) - z_t), on the clip's own blocks (`world_model.heads.actor.clip_samples`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from world_model.heads.actor import ActionHead, clip_samples
from world_model.model.world_model import WorldModel
from world_model.training.latents import (
    LatentSet,
    episode_task,
    frames_change,
    iter_dataset_episodes,
    refuse_still_data,
)
from world_model.training.sigreg import SIGReg


class LeWMLoss(nn.Module):
    """`forward(frames (B, T, 3, H, W), actions (B, T-1, k*7), states (B, T, 7))`
    -> (loss, parts = [teacher-forcing MSE, SIGReg, rollout MSE per block...]), with the
    action head's [physical NLL, goal NLL] last when it trains (`actor`)."""

    def __init__(
        self,
        model: WorldModel,
        history: int,
        auto_steps: int,
        sigreg_weight: float,
        num_proj: int,
        cached: bool = False,
        within_weight: float = 0.0,
        actor: ActionHead | None = None,
        actor_weights: tuple[float, float] = (0.0, 0.0),
        goal_blocks: int = 1,
    ) -> None:
        super().__init__()
        self.cached = cached  # inputs are latents of a frozen encoder (train.encoder_from)
        self.encoder, self.predictor = model.encoder, model.predictor
        self.history, self.auto_steps = history, auto_steps
        self.sigreg_weight = sigreg_weight
        self.sigreg = SIGReg(num_proj)
        self.within_weight = within_weight
        self.actor = actor  # None: the LeWM objective alone
        self.actor_weights = actor_weights  # (physical intent, goal intent)
        self.goal_blocks = goal_blocks  # goal intents lie 1..goal_blocks blocks ahead

    def forward(self, frames: Tensor, actions: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        z = frames if self.cached else self.encoder(frames)  # (B, T, N, D)
        z_tf = self.predictor(z[:, :-1], actions, states[:, :-1])  # (B, T-1, N, D)
        tf_loss = (z_tf - z[:, 1:]).square().mean()
        pred, target = open_loop_rollout(
            self.predictor, z, actions, states, self.history, self.auto_steps
        )  # (B, R, N, D) each
        step_err = (pred - target).square().mean(dim=(0, 2, 3))  # (R,)
        if self.cached:  # SIGReg shapes the encoder, which is frozen here
            reg = z.new_zeros(())
        else:
            per_step = z.transpose(0, 1).flatten(1, 2)  # (T, B * N, D)
            reg = self.sigreg(per_step)  # each time step's batch tested on its own (LeWM)
            if self.within_weight > 0:
                # what changes inside each clip, with the clip's constant content removed:
                # across episodes SIGReg is met by scenery alone (reacher's target)
                within = z - z.mean(dim=1, keepdim=True)  # (B, T, N, D)
                reg = reg + self.within_weight * self.sigreg(within.flatten(0, 2))
        loss = tf_loss + step_err.mean() + self.sigreg_weight * reg
        parts = [tf_loss[None], reg[None], step_err]
        if self.actor is not None:
            nll = self.actor_nll(z, actions)  # (2,)
            loss = loss + (nll * nll.new_tensor(self.actor_weights)).sum()
            parts.append(nll)
        return loss, torch.cat(parts).detach()

    def actor_nll(self, z: Tensor, actions: Tensor) -> Tensor:
        """The head's NLL of the clip's blocks `(2,)`: [physical intent, goal intent] (the goal
        term is 0, and no goal drawn, when its weight is 0)."""
        goal_blocks = self.goal_blocks if self.actor_weights[1] > 0 else 0
        physical, goal = clip_samples(z, actions, goal_blocks)
        nll = self.actor.nll(*physical)
        goal_nll = self.actor.nll(*goal) if goal is not None else torch.zeros_like(nll)
        return torch.stack([nll, goal_nll])


def open_loop_rollout(
    predictor: nn.Module, z: Tensor, actions: Tensor, states: Tensor, history: int, horizon: int
) -> tuple[Tensor, Tensor]:
    """Open-loop rollout of `horizon` blocks from the first `history` frames of each clip ->
    (predicted, recorded) latents `(B, R, N, D)` each (shapes as `open_loop_errors`)."""
    h = history
    past = actions[:, : h - 1] if h > 1 else None  # (B, h-1, k*7)
    plan = actions[:, None, h - 1 : h - 1 + horizon]  # (B, 1, R, k*7)
    pred = predictor.rollout(z[:, :h], states[:, :h], plan, past)[:, 0]  # (B, R, N, D)
    return pred, z[:, h : h + horizon]


def open_loop_errors(
    predictor: nn.Module,
    z: Tensor,
    actions: Tensor,
    states: Tensor,
    history: int,
    horizon: int,
) -> tuple[Tensor, Tensor]:
    """Open-loop rollout of `horizon` blocks from the first `history` frames of each clip:
    z `(B, T, N, D)` with T >= history + horizon, actions `(B, T-1, k*7)`, states `(B, T, 7)`
    -> (model MSE per block `(horizon,)`, copy-last-context MSE per block `(horizon,)`).
    Differentiable in z and the predictor (the training loss uses it)."""
    h = history
    pred, target = open_loop_rollout(predictor, z, actions, states, history, horizon)
    model_err = (pred - target).square().mean(dim=(0, 2, 3))
    copy_err = (z[:, h - 1 : h] - target).square().mean(dim=(0, 2, 3))
    return model_err, copy_err.detach()


def load_frames(paths: Iterable[str | Path]) -> LatentSet:
    """Every frame of the datasets, in memory, in the `LatentSet` layout with `latents`
    holding uint8 frames `(F, 3, H, W)`: the encoder trains, so there is nothing to cache."""
    frames, states, actions, lengths, tasks = [], [], [], [], []
    for path in paths:
        moving, first = False, len(frames)
        for ep in iter_dataset_episodes(path):
            pixels = torch.from_numpy(np.ascontiguousarray(ep.pixels))  # (L+1, H, W, 3)
            moving = moving or frames_change(pixels)
            st = torch.as_tensor(np.asarray(ep.states), dtype=torch.float32)  # (L+1, 7)
            act = torch.as_tensor(np.asarray(ep.actions), dtype=torch.float32)  # (L, 7)
            if len(act) != len(st) - 1 or len(st) != len(pixels):
                raise ValueError(
                    f"{path}: episode with {len(pixels)} frames, {len(st)} states, "
                    f"{len(act)} actions"
                )
            frames.append(pixels.permute(0, 3, 1, 2).contiguous())  # (L+1, 3, H, W)
            states.append(st)
            actions.append(torch.cat([act, act.new_zeros(1, act.shape[-1])]))  # (L+1, 7)
            lengths.append(len(st))
            tasks.append(episode_task(ep, Path(path).stem))
        if len(frames) > first and not moving:
            refuse_still_data(path, len(frames) - first)
    if not frames:
        raise ValueError("no episodes in the given datasets (train.data is empty?)")
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    starts = torch.cumsum(lengths_t, 0) - lengths_t
    return LatentSet(
        torch.cat(frames), torch.cat(states), torch.cat(actions), starts, lengths_t, tasks
    )
