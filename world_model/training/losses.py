"""V-JEPA 2-AC training objective: teacher forcing + autoregressive rollout, L1 in latent space.

Wrapped in one `nn.Module` so DDP sees a single forward per step (the rollout calls the
predictor several times; DDP's gradient hooks must fire once per parameter per backward).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from world_model.model.predictor import ACPredictor


class ACLoss(nn.Module):
    """`forward(z (B, T, N, D), actions (B, T-1, 7), states (B, T, 7))` -> (loss, per-step errors).

    * teacher forcing: predict frames 1..T-1 from the true latents 0..T-2;
    * rollout (`auto_steps`): frame 1 comes from the teacher-forcing pass, each later frame from
      the predictor fed its own previous predictions; loss on frames 1..auto_steps and the
      gradient flows through the fed-back predictions (official `forward_predictions`).
    """

    def __init__(self, predictor: ACPredictor, auto_steps: int) -> None:
        super().__init__()
        self.predictor = predictor
        self.auto_steps = auto_steps

    def forward(self, z: Tensor, actions: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        target = z[:, 1:]  # (B, T-1, N, D)
        z_tf = self.predictor(z[:, :-1], actions, states[:, :-1])  # (B, T-1, N, D)
        tf_loss = (z_tf - target).abs().mean()
        seq = torch.cat([z[:, :1], z_tf[:, :1]], dim=1)  # (B, 2, N, D): true z0, predicted z1
        for n in range(1, self.auto_steps):
            nxt = self.predictor(seq, actions[:, : n + 1], states[:, : n + 1])[
                :, -1:
            ]  # (B, 1, N, D)
            seq = torch.cat([seq, nxt], dim=1)
        z_ar = seq[:, 1:]  # (B, auto_steps, N, D)
        step_err = (z_ar - target[:, : self.auto_steps]).abs().mean(dim=(0, 2, 3))  # (auto_steps,)
        loss = tf_loss + step_err.mean()
        return loss, torch.cat([tf_loss[None], step_err]).detach()


@torch.no_grad()
def rollout_errors(
    predictor: ACPredictor, z: Tensor, actions: Tensor, states: Tensor, horizon: int
) -> tuple[Tensor, Tensor]:
    """Open-loop latent L1 per horizon step from the first frame of each clip, and the
    copy-last-latent baseline: z `(B, T, N, D)` with T > horizon -> two `(horizon,)`."""
    pred = predictor.rollout(z[:, :1], states[:, :1], actions[:, None, :horizon])  # (B, 1, H, N, D)
    target = z[:, 1 : horizon + 1]  # (B, H, N, D)
    model_err = (pred[:, 0] - target).abs().mean(dim=(0, 2, 3))
    copy_err = (z[:, :1] - target).abs().mean(dim=(0, 2, 3))
    return model_err, copy_err
