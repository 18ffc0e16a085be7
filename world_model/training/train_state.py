"""Learning-rate schedule and resumable training checkpoints.

A checkpoint `checkpoints/step_XXXXXXX/` is a loadable world-model directory
(`model.safetensors` + `config.json`) plus `trainer_state.pt` (optimizer, scheduler, step,
RNG), written atomically; `checkpoints/latest` names the newest complete one. Resuming applies
the same checks as inference loading (format, version, finite weights), falls back to the
newest intact checkpoint when the latest is corrupt, and names differing tensor shapes when
the architecture changed.
"""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from envs.data.storage import atomic_dir, atomic_write, remove_stale_temporaries, write_file
from world_model.checkpoint import (
    WEIGHTS,
    CorruptCheckpointError,
    check_finite,
    read_config,
    read_weights,
    write_world_model,
)
from world_model.model.world_model import WorldModel
from world_model.training.config import WARMUP_START_LR, WEIGHT_DECAY, OptimConfig

STATE = "trainer_state.pt"
LATEST = "latest"


def lr_at(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Warmup (WARMUP_START_LR -> lr) / constant / linear decay to 0 over the last
    decay_steps."""
    if step < cfg.warmup_steps:
        return WARMUP_START_LR + (cfg.lr - WARMUP_START_LR) * step / cfg.warmup_steps
    decay_start = max(total_steps - cfg.decay_steps, cfg.warmup_steps)
    if step < decay_start or total_steps <= decay_start:
        return cfg.lr
    frac = min(1.0, (step - decay_start) / (total_steps - decay_start))
    return cfg.lr - cfg.lr * frac


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> Optimizer:
    """AdamW over the trainable parameters (the predictor; with the `lewm` objective also the
    encoder at `encoder_lr_scale` x lr, and an action head trained with it), biases / norms
    without weight decay. The scheduler scales every group's own rate, so the encoder keeps its
    fraction through the schedule."""
    # At scale 1 the two groups of runs from before the option, so their checkpoints resume.
    scaled = cfg.encoder_lr_scale != 1.0
    encoder = (
        {
            id(p)
            for m in model.modules()
            if isinstance(m, WorldModel)
            for p in m.encoder.parameters()
        }
        if scaled
        else set()
    )
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in encoder, p.ndim >= 2), []).append(p)
    params = [
        {
            "params": groups[key],
            "weight_decay": WEIGHT_DECAY if key[1] else 0.0,
            "lr": cfg.lr * (cfg.encoder_lr_scale if key[0] else 1.0),
        }
        # predictor groups first: the trainer logs the first group's rate as `lr`
        for key in ((False, True), (False, False), (True, True), (True, False))
        if groups.get(key)
    ]
    return torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999))  # AdamW's, as V-JEPA 2-AC


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
    write_extras: Callable[[Path], None] | None = None,
) -> Path:
    """Atomically write `checkpoints/step_<step>` and point `latest` at it; prune old ones.
    `write_extras(dir)` adds heads trained with the model (their own files) to the folder."""
    ckpt_root = Path(out_dir) / "checkpoints"
    target = ckpt_root / f"step_{step:07d}"

    def write(tmp: Path) -> None:
        write_world_model(model, tmp, extra={**extra, "step": step})
        if write_extras is not None:
            write_extras(tmp)
        state = {
            "step": step,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        buffer = io.BytesIO()  # in memory first: see envs.data.storage.write_file
        torch.save(state, buffer)
        write_file(tmp / STATE, buffer.getvalue())

    atomic_dir(target, write)
    atomic_write(ckpt_root / LATEST, target.name.encode())  # removed again if the disk is full
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return target


def remove_stale_checkpoint_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporary folders of killed or disk-full runs (`.step_N.tmp-PID`, `.old-PID`,
    `.latest.tmp-PID`, `.world_model.tmp-PID`) whose process is gone; call at run start."""
    out_dir = Path(out_dir)
    return remove_stale_temporaries(out_dir / "checkpoints", ".*") + remove_stale_temporaries(
        out_dir, ".*"
    )


def checkpoint_candidates(out_dir: Path) -> list[Path]:
    """Resume order: the one `latest` names, then every other `step_*` folder, newest first."""
    root = Path(out_dir) / "checkpoints"
    steps = sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)
    pointer = root / LATEST
    named = root / pointer.read_text(errors="replace").strip() if pointer.is_file() else None
    if named is not None and named in steps:
        steps.remove(named)
    return ([named] if named is not None else []) + steps


def read_training_checkpoint(
    path: Path, model: WorldModel
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and check one checkpoint without touching the model: (trained weights: the
    predictor's, and the encoder's when it trains, BatchNorm statistics included, keyed
    `predictor.*` / `encoder.*`; trainer state). Raises `CorruptCheckpointError` / `FileNotFoundError` for damage (the caller may
    fall back to an older one) and `ValueError` for another version or architecture."""
    read_config(path)  # format and version: the check wm-eval applies
    if not (path / STATE).is_file():
        raise FileNotFoundError(f"{path / STATE} is missing")
    pred = {}
    for name in trained_modules(model):
        weights = read_weights(path / WEIGHTS, prefix=f"{name}.")
        check_same_shapes(
            path,
            {k[len(name) + 1 :]: v for k, v in weights.items()},
            getattr(model, name).state_dict(),
        )
        pred |= weights
    try:
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
        opt_tensors = {
            f"optimizer.{k}.{name}": v
            for k, slot in state["optimizer"]["state"].items()
            for name, v in slot.items()
            if isinstance(v, torch.Tensor)
        }
    except Exception as exc:
        raise CorruptCheckpointError(f"{path / STATE} is corrupt or truncated: {exc}") from exc
    check_finite(opt_tensors, path / STATE)
    return pred, state


def trained_modules(model: WorldModel) -> list[str]:
    """Submodules a training run changes: the predictor, and the encoder when it trains."""
    trains_encoder = any(p.requires_grad for p in model.encoder.parameters())
    return ["predictor", "encoder"] if trains_encoder else ["predictor"]


def check_same_shapes(path: Path, found: dict, wanted: dict) -> None:
    """Name the tensors whose shape differs between a checkpoint and this run's predictor."""
    diff = [
        f"{k}: {tuple(found[k].shape) if k in found else 'absent'} in the checkpoint, "
        f"{tuple(v.shape)} in this run"
        for k, v in wanted.items()
        if k not in found or found[k].shape != v.shape
    ] + [f"{k}: in the checkpoint only" for k in found if k not in wanted]
    if diff:
        raise ValueError(
            f"cannot resume from {path}: the predictor architecture changed ({len(diff)} "
            f"tensors differ, e.g. {'; '.join(diff[:4])}); pass resume=false to start over or "
            "choose a new out_dir"
        )


def resume_training(
    out_dir: Path,
    model: WorldModel,
    opt: Optimizer,
    sched: LambdaLR,
    log: Callable,
    load_extras: Callable[[Path], None] | None = None,
) -> tuple[Path, int] | None:
    """Restore the newest intact checkpoint under `out_dir`; None when there is none yet.
    `load_extras(dir)` restores heads trained with the model (`save_training_checkpoint`'s
    `write_extras`) before the optimizer state that covers them.

    A corrupt one is named and skipped for the next older; when none is intact this refuses
    with the paths instead of silently starting over.
    """
    failures = []
    for path in checkpoint_candidates(out_dir):
        try:
            if not path.is_dir():
                raise FileNotFoundError(f"{path} (named by {LATEST}) does not exist")
            pred, state = read_training_checkpoint(path, model)
            if load_extras is not None:
                load_extras(path)
        except (CorruptCheckpointError, FileNotFoundError) as err:
            log(f"checkpoint {path} is unusable: {err}")
            failures.append(f"{path}: {err}")
            continue
        if failures:
            log(f"falling back to the newest intact checkpoint {path}")
        for name in trained_modules(model):
            part = {k[len(name) + 1 :]: v for k, v in pred.items() if k.startswith(name + ".")}
            getattr(model, name).load_state_dict(part, strict=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return path, int(state["step"])
    if failures:
        raise CorruptCheckpointError(
            f"no intact checkpoint under {Path(out_dir) / 'checkpoints'} ({'; '.join(failures)}); "
            "pass resume=false to start over or choose a new out_dir"
        )
    return None


def check_finite_metrics(step: int, metrics: dict[str, float], out_dir: Path) -> None:
    """Stop at a non-finite validation metric as at a non-finite loss: the weights that gave
    it (finite, yet NaN on held-out data: e.g. actions of 1e30) must not become a checkpoint
    that then holds still at eval. Called before the step's checkpoint is written."""
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise NonFiniteTrainingError(
            f"step {step}: non-finite validation {bad}; training stopped before this step's "
            f"checkpoint. {Path(out_dir) / 'checkpoints' / LATEST} still names the last finite "
            "one. Look for huge or NaN values in the data (actions, states) or lower optim.lr"
        )


class NonFiniteTrainingError(FloatingPointError):
    """A loss or gradient went NaN/inf; raised before the optimizer step could spread it."""


def check_finite_step(
    step: int, loss: torch.Tensor, grad_norm: torch.Tensor, out_dir: Path
) -> None:
    """Stop training at the first non-finite loss or gradient norm.

    Called between backward and the optimizer step, so the weights, the optimizer state and
    `checkpoints/latest` (written only from finite steps) all stay finite. The gradient norm
    is all-reduced under DDP, so every rank stops at the same step.
    """
    values = {"loss": float(loss.detach()), "gradient norm": float(grad_norm.detach())}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        what = ", ".join(f"{k} {v}" for k, v in bad.items())
        raise NonFiniteTrainingError(
            f"step {step}: non-finite {what}; training stopped before the optimizer step. "
            f"{Path(out_dir) / 'checkpoints' / LATEST} still names the last finite checkpoint. "
            "Look for NaN/inf in the data or the encoder, or lower optim.lr"
        )
