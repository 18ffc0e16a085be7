"""`wm-train world_model=lewm`: the end-to-end trainer (encoder + projector + predictor from
pixels, `world_model.training.lewm`). Same loop, checkpoints, exact resume and data order as the
frozen-encoder `Trainer`; only the data (raw frames, no latent cache), the loss and the
validation differ, and with `train.actor_weight` an action head trains beside the model and
travels in its checkpoints (`actor.safetensors`, as `python -m world_model.heads.actor`
writes it)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from envs.common.contract import EnvContract
from world_model.checkpoint import load_world_model
from world_model.heads.actor import (
    ActionHead,
    ActorConfig,
    clip_samples,
    intent_errors,
    load_actor,
    save_actor,
)
from world_model.model.conv_encoder import ConvEncoder
from world_model.model.world_model import WorldModel, build_world_model
from world_model.training.config import WEIGHT_DECAY, TrainConfig
from world_model.training.data import split_episodes
from world_model.training.latents import LatentSet
from world_model.training.lewm import LeWMLoss, load_frames, open_loop_errors
from world_model.training.sigreg import effective_rank
from world_model.training.trainer import Trainer, with_input_stats


def frozen_encoder(checkpoint: str, device: torch.device) -> ConvEncoder:
    """The encoder of a lewm checkpoint, eval mode (BatchNorm running statistics), no grads;
    its config is `encoder.cfg`."""
    encoder = load_world_model(checkpoint, device).encoder
    if not isinstance(encoder, ConvEncoder):
        raise ValueError(
            f"train.encoder_from={checkpoint}: its encoder is {type(encoder).__name__}, not the "
            "lewm conv encoder (frozen ViT encoders train with world_model=tiny, cached latents)"
        )
    return encoder.eval().requires_grad_(False)


@torch.no_grad()
def encode_frames(
    encoder: torch.nn.Module, data: LatentSet, log=print, batch: int = 512
) -> LatentSet:
    """`data` with its uint8 frames `(F, 3, H, W)` replaced by latents `(F, N, D)`."""
    t0 = time.perf_counter()
    device = next(encoder.parameters()).device
    chunks = [
        encoder(data.latents[i : i + batch].to(device)[None])[0].cpu()
        for i in range(0, len(data.latents), batch)
    ]
    log(
        f"encoded {len(data.latents)} frames with the frozen encoder in {time.perf_counter() - t0:.0f} s"
    )
    return replace(data, latents=torch.cat(chunks))


class LeWMTrainer(Trainer):
    """`Trainer` for the `lewm` objective (`conv` encoder; single process)."""

    def build_model_and_data(
        self, latents: LatentSet | None
    ) -> tuple[WorldModel, LatentSet, Tensor, Tensor]:
        cfg = self.cfg
        if self.dist.world_size > 1:
            raise ValueError("objective=lewm trains in one process (BatchNorm is not synced)")
        wm = cfg.world_model
        if cfg.clip_len < wm.history + cfg.auto_steps:
            raise ValueError(
                f"train.clip_len={cfg.clip_len} < world_model.history={wm.history} + "
                f"auto_steps={cfg.auto_steps}: the open-loop loss needs that many frames"
            )
        data = latents if latents is not None else load_frames(self.data_sources())
        encoder = None
        if cfg.encoder_from is not None:  # frozen encoder: encode once, train the predictor
            encoder = frozen_encoder(cfg.encoder_from, self.device)
            wm = replace(wm, encoder=encoder.cfg)
            data = encode_frames(encoder, data, self.log)
        train_eps, val_eps = split_episodes(len(data.lengths), cfg.val_fraction, cfg.seed)
        wm_cfg = with_input_stats(wm, data, train_eps)
        model = build_world_model(wm_cfg, self.device, encoder, self.env_contract())
        return model, data, train_eps, val_eps

    def env_contract(self) -> EnvContract | None:
        """One model may train on several Panda tasks (same robot, camera and control rate):
        then no single env contract applies and the model is saved without one;
        scripts/export_task_checkpoint.py stamps each task's contract onto a copy."""
        try:
            return super().env_contract()
        except ValueError as err:
            self.log(f"no single env contract ({err}); saving the model without one")
            return None

    def build_loss(self) -> torch.nn.Module:
        cfg = self.cfg
        actor = None
        if cfg.actor_weight > 0:  # built here, so the optimizer (built next) covers it
            predictor = self.model.predictor
            actor = ActionHead(
                joint_actor_config(cfg),
                self.model.num_tokens,
                self.model.latent_dim,
                predictor.action_mean,
                predictor.action_std,
            ).to(self.device)
            # Fine-tuning a checkpoint with a head (wm-improve's rounds) continues that head.
            saved = load_actor(cfg.init_from) if cfg.init_from is not None else None
            if saved is not None:
                actor.load_state_dict(saved.state_dict())
                self.log(f"initialised the action head from {cfg.init_from}")
        self.actor_metrics: dict[str, float] = {}  # the last validation's, saved with the head
        return LeWMLoss(
            self.model,
            cfg.world_model.history,
            cfg.auto_steps,
            cfg.sigreg_weight,
            cfg.sigreg_proj,
            cached=cfg.encoder_from is not None,
            within_weight=cfg.sigreg_within,
            actor=actor,
            actor_weights=(cfg.actor_weight, cfg.actor_goal_weight),
            goal_blocks=max(cfg.actor_goal_window // cfg.world_model.action_block, 1),
        )

    @property
    def actor(self) -> ActionHead | None:
        """The action head trained with the model (`train.actor_weight > 0`), else None."""
        return self.loss_fn.actor

    def optimized(self) -> torch.nn.Module:
        return self.model if self.actor is None else torch.nn.ModuleList([self.model, self.actor])

    def write_extras(self, directory: Path) -> None:
        if self.actor is not None:
            cfg = self.cfg
            joint = {"actor_weight": cfg.actor_weight, "actor_goal_weight": cfg.actor_goal_weight}
            info = {**self.actor_metrics, "data": list(cfg.data), "episodes": self.episodes}
            save_actor(self.actor, directory, info | {"joint": {**joint, "step": self.step}})

    def load_extras(self, checkpoint: Path) -> None:
        if self.actor is None:
            return
        saved = load_actor(checkpoint)
        if saved is None:
            raise ValueError(
                f"{checkpoint} holds no action head, and this run trains one (train.actor_weight="
                f"{self.cfg.actor_weight}): use another out_dir or resume=false"
            )
        self.actor.load_state_dict(saved.state_dict())

    @property
    def episodes(self) -> int:
        """Episodes in the data, training and held out."""
        return len(self.train_clips.data.lengths)

    def name_parts(self, parts: Tensor) -> dict[str, float]:
        r = self.cfg.auto_steps
        out = {"tf_loss": parts[0].item(), "sigreg": parts[1].item()}
        out |= {f"rollout_err_step{k + 1}": v.item() for k, v in enumerate(parts[2 : 2 + r])}
        if self.actor is not None:
            out |= {
                "actor_nll_physical": parts[2 + r].item(),
                "actor_nll_goal": parts[3 + r].item(),
            }
        return out

    @torch.no_grad()
    def validate(self, max_clips: int = 256) -> dict[str, float]:
        """Held-out open-loop latent MSE per block vs copy-last (eval-mode BatchNorm), and the
        effective rank of the held-out latents (collapse shows as a rank near 1)."""
        clips = self.val_clips if len(self.val_clips) else self.train_clips
        ids = torch.arange(min(len(clips), max_clips))
        self.model.eval()
        frames, actions, states = clips.batch(ids)
        z = frames if self.cfg.encoder_from else self.model.encoder(frames)  # (B, T, N, D)
        model_err, copy_err = open_loop_errors(
            self.model.predictor, z, actions, states, self.cfg.world_model.history,
            self.cfg.auto_steps,
        )  # fmt: skip
        self.model.train()
        out = {"val/effective_rank": effective_rank(z.flatten(0, 2))}
        if self.actor is not None:  # the same goals at every pass: a fixed generator
            samples = clip_samples(
                z, actions, self.loss_fn.goal_blocks, torch.Generator().manual_seed(0)
            )
            self.actor_metrics = intent_errors(self.actor, *samples)
            out |= {f"val/actor_{k[4:]}": v for k, v in self.actor_metrics.items()}
        for h, (m, c) in enumerate(zip(model_err.tolist(), copy_err.tolist(), strict=True), 1):
            out |= {f"val/latent_mse_h{h}": m, f"val/copy_mse_h{h}": c}
            if c > 0:  # copy-last is exact on still frames: no ratio
                out[f"val/ratio_h{h}"] = m / c
        return out


def joint_actor_config(cfg: TrainConfig) -> ActorConfig:
    """The head's config as the frozen variant records it: its size (ActorConfig's defaults,
    INTACT's 3 layers), goal window and intent weight ratio, and the offline-recipe fields
    this run's own values fill (steps, batch of clips, lr, weight decay, split, seed)."""
    split = {"val_fraction": cfg.val_fraction} if 0 < cfg.val_fraction < 1 else {}
    return ActorConfig(
        goal_window=cfg.actor_goal_window,
        goal_weight=cfg.actor_goal_weight / cfg.actor_weight,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.optim.lr,
        weight_decay=WEIGHT_DECAY,
        seed=cfg.seed,
        **split,
    )
