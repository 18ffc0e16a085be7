"""`wm-train` loop: cached latents -> AC predictor, single process or torchrun DDP.

Every rank computes the same global batch ids from (seed, step) and takes its slice, so DDP's
gradient averaging reproduces the single-process step on the global batch, and a resumed run
replays exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from envs.common.contract import EnvContract
from envs.data.lerobot.layout import dataset_sources
from envs.data.storage import atomic_dir
from world_model.checkpoint import write_world_model
from world_model.checkpoint_schema import read_checkpoint_json
from world_model.config import RECOMMENDED_KEY, WorldModelConfig
from world_model.model.encoder import FrozenEncoder, build_encoder
from world_model.model.world_model import WorldModel, build_world_model
from world_model.training.config import GRAD_CLIP, TrainConfig, planning_recipe
from world_model.training.data import Clips, input_stats, split_episodes
from world_model.training.latents import LatentSet, cached_latents, dataset_contract, encoder_hash
from world_model.training.losses import ACLoss, rollout_errors
from world_model.training.train_state import (
    check_finite_metrics,
    check_finite_step,
    make_optimizer,
    make_scheduler,
    remove_stale_checkpoint_temporaries,
    resume_training,
    save_training_checkpoint,
)


def with_input_stats(
    wm_cfg: WorldModelConfig, data: LatentSet, episodes: Tensor
) -> WorldModelConfig:
    """A new config whose predictor normalises actions / states by the statistics of the
    training episodes (unless the config already sets them); `wm_cfg` itself is untouched."""
    if wm_cfg.predictor.action_std is not None or wm_cfg.predictor.state_std is not None:
        return wm_cfg
    return replace(wm_cfg, predictor=replace(wm_cfg.predictor, **input_stats(data, episodes)))


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class Trainer:
    """Owns model, optimizer, data and logging for one run; `run()` trains to `cfg.steps`."""

    def __init__(self, cfg: TrainConfig, latents: LatentSet | None = None) -> None:
        self.cfg = cfg
        self.dist = init_distributed(cfg.device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        device = cfg.device
        if device == "cuda" and self.dist.world_size > 1:
            device = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(device)
        self.out_dir = Path(cfg.out_dir)
        torch.manual_seed(cfg.seed)
        self.encoder_key: str | None = None
        self.model, data, train_eps, val_eps = self.build_model_and_data(latents)
        if cfg.init_from is not None:
            self.init_weights(cfg.init_from)
        data = data.to(self.device)
        block = self.model.action_block
        self.train_clips = Clips.build(data, train_eps, cfg.clip_len, block)
        self.val_clips = Clips.build(data, val_eps, cfg.clip_len, block)
        if len(self.train_clips) == 0:
            raise ValueError(
                f"no training clips of {cfg.clip_len} frames {block} steps apart (episodes too short?)"
            )
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} not divisible by world size {self.dist.world_size}"
            )
        self.loss_fn: torch.nn.Module = self.build_loss()
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss_fn = DistributedDataParallel(self.loss_fn, device_ids=ids)
        self.opt = make_optimizer(self.optimized(), cfg.optim)
        self.sched = make_scheduler(self.opt, cfg.optim, cfg.steps)
        self.step = 0
        self.writer = None
        if self.dist.is_main:
            for path in remove_stale_checkpoint_temporaries(self.out_dir):
                self.log(f"removed {path} (left by a killed or disk-full run)")
        found = None
        if cfg.resume:
            found = resume_training(
                self.out_dir, self.model, self.opt, self.sched, self.log, self.load_extras
            )
        if found is not None:
            ckpt, self.step = found
            self._check_same_encoder(ckpt)
            self.log(f"resumed from {ckpt} at step {self.step}")

    # -- setup helpers -------------------------------------------------------------------
    def build_model_and_data(
        self, latents: LatentSet | None
    ) -> tuple[WorldModel, LatentSet, Tensor, Tensor]:
        """Frozen encoder -> cached latents -> (model, data, train episodes, val episodes)."""
        cfg = self.cfg
        encoder = build_encoder(cfg.world_model.encoder)
        self.encoder_key = encoder_hash(encoder)[:16]
        data = latents if latents is not None else self._load_latents(encoder)
        train_eps, val_eps = split_episodes(len(data.lengths), cfg.val_fraction, cfg.seed)
        wm_cfg = with_input_stats(cfg.world_model, data, train_eps)
        model = build_world_model(wm_cfg, self.device, encoder, self.env_contract())
        return model, data, train_eps, val_eps

    def init_weights(self, checkpoint: str) -> None:
        """Start from a saved world model's weights (fresh optimizer and schedule); a resumed
        run then overwrites them with its own checkpoint, so resuming stays exact."""
        from world_model.checkpoint import load_world_model

        source = load_world_model(checkpoint, self.device).state_dict()
        own = self.model.state_dict()
        mismatched = sorted(
            k for k in own.keys() | source.keys()
            if k not in own or k not in source or own[k].shape != source[k].shape
        )  # fmt: skip
        if mismatched:
            raise ValueError(
                f"train.init_from={checkpoint}: its architecture differs from this run's in "
                f"{len(mismatched)} tensors, e.g. {mismatched[:3]}; use the same world_model config"
            )
        self.model.load_state_dict(source)
        self.log(f"initialised all {len(own)} tensors from {checkpoint}")

    def env_contract(self) -> EnvContract | None:
        """The env the data came from; travels with the weights (config.json "env")."""
        return dataset_contract(self.data_sources()) if self.cfg.data else None

    def data_sources(self) -> list:
        """`train.data` with each LeRobot directory paired with the `train.lerobot` keys."""
        return dataset_sources(list(self.cfg.data), self.cfg.lerobot)

    def build_loss(self) -> torch.nn.Module:
        return ACLoss(self.model.predictor, self.cfg.auto_steps)

    def optimized(self) -> torch.nn.Module:
        """What the optimizer trains: the world model; a subclass adds heads trained with it."""
        return self.model

    def write_extras(self, directory: Path) -> None:
        """Write heads trained with the world model into its checkpoint `directory` (a
        temporary folder, renamed once complete); the world model alone has none."""

    def load_extras(self, checkpoint: Path) -> None:
        """Restore those heads from a resumable checkpoint, before its optimizer state."""

    def log(self, msg: str) -> None:
        if self.dist.is_main:
            tqdm.write(msg)

    def _load_latents(self, encoder: FrozenEncoder) -> LatentSet:
        """Rank 0 fills the cache first; the others then read it (no encoding race)."""
        args = (self.data_sources(), encoder, self.cfg.cache_dir, self.log)
        if self.dist.world_size > 1 and not self.dist.is_main:
            dist.barrier()
            return cached_latents(*args)
        data = cached_latents(*args)
        if self.dist.world_size > 1:
            dist.barrier()
        return data

    def _check_same_encoder(self, ckpt: Path) -> None:
        extra = read_checkpoint_json(ckpt)["extra"]
        if extra.get("encoder_hash") not in (None, self.encoder_key):
            raise ValueError(
                f"{ckpt} was trained on latents of encoder {extra['encoder_hash']}, this run's "
                f"encoder is {self.encoder_key}: use another out_dir or resume=false"
            )

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA only (on a CPU: `TrainConfig.device`'s docstring)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- one optimizer step --------------------------------------------------------------
    def local_batch(self, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """This rank's slice of the global batch of `step`."""
        ids = self.train_clips.clip_ids(step, self.cfg.batch_size, self.cfg.seed)
        per_rank = self.cfg.batch_size // self.dist.world_size
        return self.train_clips.batch(
            ids[self.dist.rank * per_rank : (self.dist.rank + 1) * per_rank]
        )

    def train_step(self, z: Tensor, actions: Tensor, states: Tensor) -> dict[str, float]:
        """Forward, backward, clip, AdamW and schedule step on one (local) batch: z (or
        frames), actions, states."""
        self.loss_fn.train()
        with self.autocast():
            loss, parts = self.loss_fn(z, actions, states)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.optimized().parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        check_finite_step(self.step, loss, grad_norm, self.out_dir)
        lr = self.opt.param_groups[0]["lr"]
        self.opt.step()
        self.sched.step()
        return {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": lr} | self.name_parts(
            parts
        )

    @staticmethod
    def name_parts(parts: Tensor) -> dict[str, float]:
        """Loss components returned by the loss module, by name."""
        out = {"tf_loss": parts[0].item()}
        return out | {f"rollout_err_step{k + 1}": v.item() for k, v in enumerate(parts[1:])}

    @torch.no_grad()
    def validate(self, max_clips: int = 512) -> dict[str, float]:
        """Held-out teacher-forcing loss and open-loop latent error vs copy-last per step."""
        clips = self.val_clips if len(self.val_clips) else self.train_clips
        ids = torch.arange(min(len(clips), max_clips))
        self.model.predictor.eval()
        z, actions, states = clips.batch(ids)
        with self.autocast():
            _, parts = ACLoss(self.model.predictor, self.cfg.auto_steps)(z, actions, states)
            model_err, copy_err = rollout_errors(
                self.model.predictor, z, actions, states, self.cfg.clip_len - 1
            )
        out = {"val/tf_loss": parts[0].item()}
        for h, (m, c) in enumerate(zip(model_err.tolist(), copy_err.tolist(), strict=True), 1):
            out |= {f"val/latent_err_h{h}": m, f"val/copy_err_h{h}": c}
            if c > 0:  # copy-last is exact where frames never change: no ratio there
                out[f"val/ratio_h{h}"] = m / c
        return out

    # -- the loop ------------------------------------------------------------------------
    def tb(self, scalars: dict[str, float], step: int) -> None:
        if not self.dist.is_main:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tb"))
        for key, value in scalars.items():
            self.writer.add_scalar(key if "/" in key else f"train/{key}", value, step)

    def checkpoint(self) -> None:
        if self.dist.is_main:
            extra = {"encoder_hash": self.encoder_key, "train_config": asdict(self.cfg)}
            save_training_checkpoint(
                self.out_dir,
                self.step,
                self.model,
                self.opt,
                self.sched,
                extra,
                self.cfg.keep_checkpoints,
                self.write_extras,
            )
        if self.dist.world_size > 1:
            dist.barrier()

    def run(self) -> dict[str, Any]:
        """Train from `self.step` to `cfg.steps`; returns the last train and val metrics."""
        cfg = self.cfg
        bar = tqdm(
            total=cfg.steps, initial=self.step, disable=not self.dist.is_main, desc="wm-train"
        )
        metrics: dict[str, float] = {}
        t0, clips_done = time.perf_counter(), 0
        while self.step < cfg.steps:
            metrics = self.train_step(*self.local_batch(self.step))
            self.step += 1
            clips_done += cfg.batch_size
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                metrics["clips_per_s"] = clips_done / (time.perf_counter() - t0)
                t0, clips_done = time.perf_counter(), 0
                self.tb(metrics, self.step)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}")
            if self.step % cfg.val_every == 0 or self.step == cfg.steps:
                val = self.validate()
                self.tb(val, self.step)
                check_finite_metrics(self.step, val, self.out_dir)
                metrics |= val
                self.checkpoint()  # resumable, at each validation pass (a finite one)
        bar.close()
        if self.dist.is_main:
            extra = {
                "encoder_hash": self.encoder_key,
                "step": self.step,
                "train_config": asdict(self.cfg),
                RECOMMENDED_KEY: planning_recipe(self.cfg),
            }

            def write(directory: Path) -> None:
                write_world_model(self.model, directory, extra)
                self.write_extras(directory)

            atomic_dir(self.out_dir / "world_model", write)
            if self.writer is not None:
                self.writer.close()
        return metrics
