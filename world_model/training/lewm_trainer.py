"""`wm-train world_model=lewm`: the end-to-end trainer (encoder + projector + predictor from
pixels, `world_model.training.lewm`). Same loop, checkpoints, exact resume and data order as the
frozen-encoder `Trainer`; only the data (raw frames, no latent cache), the loss and the
validation differ."""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import Tensor

from envs.common.contract import EnvContract
from world_model.checkpoint import load_world_model
from world_model.model.conv_encoder import ConvEncoder
from world_model.model.world_model import WorldModel, build_world_model
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
        return LeWMLoss(
            self.model,
            cfg.world_model.history,
            cfg.auto_steps,
            cfg.sigreg_weight,
            cfg.sigreg_proj,
            cached=cfg.encoder_from is not None,
            within_weight=cfg.sigreg_within,
        )

    @staticmethod
    def name_parts(parts: Tensor) -> dict[str, float]:
        out = {"tf_loss": parts[0].item(), "sigreg": parts[1].item()}
        return out | {f"rollout_err_step{k + 1}": v.item() for k, v in enumerate(parts[2:])}

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
        for h, (m, c) in enumerate(zip(model_err.tolist(), copy_err.tolist(), strict=True), 1):
            out |= {f"val/latent_mse_h{h}": m, f"val/copy_mse_h{h}": c}
            if c > 0:  # copy-last is exact on still frames: no ratio
                out[f"val/ratio_h{h}"] = m / c
        return out
