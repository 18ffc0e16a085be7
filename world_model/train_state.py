"""Learning-rate schedule and resumable training checkpoints.

A checkpoint `checkpoints/step_XXXXXXX/` is a loadable world-model directory
(`model.safetensors` + `config.json`) plus `trainer_state.pt` (optimizer, scheduler, step,
RNG), written atomically; `checkpoints/latest` names the newest complete one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from world_model.checkpoint import atomic_dir, write_world_model
from world_model.model import WorldModel
from world_model.train_config import OptimConfig

STATE = "trainer_state.pt"
LATEST = "latest"


def lr_at(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Warmup (start_lr -> lr) / constant / linear decay to final_lr over the last decay_steps."""
    if step < cfg.warmup_steps:
        return cfg.start_lr + (cfg.lr - cfg.start_lr) * step / cfg.warmup_steps
    decay_start = max(total_steps - cfg.decay_steps, cfg.warmup_steps)
    if step < decay_start or total_steps <= decay_start:
        return cfg.lr
    frac = min(1.0, (step - decay_start) / (total_steps - decay_start))
    return cfg.lr + (cfg.final_lr - cfg.lr) * frac


def make_optimizer(model: WorldModel, cfg: OptimConfig) -> Optimizer:
    """AdamW over the predictor (biases / norms without weight decay) and its schedule."""
    decay, no_decay = [], []
    for p in model.predictor.parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    return opt


def make_scheduler(opt: Optimizer, cfg: OptimConfig, total_steps: int) -> LambdaLR:
    """LambdaLR scaling the peak lr by `lr_at(step) / lr`."""

    def multiplier(step: int) -> float:
        return lr_at(step, cfg, total_steps) / cfg.lr

    return LambdaLR(opt, multiplier)


def save_training_checkpoint(
    out_dir: Path,
    step: int,
    model: WorldModel,
    opt: Optimizer,
    sched: LambdaLR,
    extra: dict[str, Any],
    keep: int,
) -> Path:
    """Atomically write `checkpoints/step_<step>` and point `latest` at it; prune old ones."""
    ckpt_root = Path(out_dir) / "checkpoints"
    target = ckpt_root / f"step_{step:07d}"

    def write(tmp: Path) -> None:
        write_world_model(model, tmp, extra={**extra, "step": step})
        state = {
            "step": step,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(state, tmp / STATE)

    atomic_dir(target, write)
    pointer = ckpt_root / LATEST
    tmp_pointer = ckpt_root / f".{LATEST}.tmp-{os.getpid()}"
    tmp_pointer.write_text(target.name)
    os.replace(tmp_pointer, pointer)
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return target


def latest_checkpoint(out_dir: Path) -> Path | None:
    pointer = Path(out_dir) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    target = pointer.parent / pointer.read_text().strip()
    if not (target / STATE).is_file():
        raise FileNotFoundError(f"{pointer} names {target}, which has no {STATE}")
    return target


def load_training_checkpoint(path: Path, model: WorldModel, opt: Optimizer, sched: LambdaLR) -> int:
    """Restore predictor weights, optimizer, scheduler and RNG; returns the step to run next."""
    with safe_open(str(path / "model.safetensors"), framework="pt", device="cpu") as f:
        names = [k for k in f.keys() if k.startswith("predictor.")]  # noqa: SIM118
        pred = {k[len("predictor.") :]: f.get_tensor(k) for k in names}
    model.predictor.load_state_dict(pred, strict=True)
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])
