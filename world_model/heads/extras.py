"""Small learned modules that travel inside a world-model checkpoint directory.

Each is one safetensors file declared in `config.json` under `extra.<key>` with the config
that rebuilds it, so the world model's own format and loader are unchanged. Used by the
reachability head.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from envs.data import open_dataset
from envs.data.storage import atomic_write
from world_model.checkpoint import CheckpointConfig

T = TypeVar("T")


@dataclass(frozen=True)
class OfflineRecipe:
    """The offline training recipe every extra shares (`fit`): its heads add their own fields."""

    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 256
    """Samples per step."""
    lr: float = 1e-3
    """AdamW learning rate (cosine decay to 0)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    val_fraction: float = 0.1
    """Episodes held out to report the error."""
    seed: int = 0
    """Seeds the split, the samples and the initial weights."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in ("steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{name}.{key}={getattr(self, key)}: must be >= 1")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"{name}.val_fraction={self.val_fraction}: in (0, 1)")
        if not self.lr > 0:
            raise ValueError(f"{name}.lr={self.lr}: must be > 0")


def save_extra(module: nn.Module, checkpoint: str | Path, key: str, entry: dict[str, Any]) -> Path:
    """Write `<key>.safetensors` into the checkpoint and declare it (with `entry`) in config.json."""
    checkpoint = Path(checkpoint)
    cfg_path = checkpoint / "config.json"
    payload = json.loads(cfg_path.read_text())
    file = f"{key}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    # world-readable like the checkpoint's other files (safetensors writes 0600)
    atomic_write(checkpoint / file, lambda p: save_file(state, str(p)), mode=0o644)
    payload.setdefault("extra", {})[key] = {"file": file, **entry}
    text = json.dumps(payload, indent=2, default=float)
    atomic_write(cfg_path, text.encode(), mode=0o644)
    return checkpoint / file


def load_extra(
    checkpoint: CheckpointConfig,
    key: str,
    build: Callable[[dict[str, Any]], nn.Module],
    device: str,
) -> nn.Module | None:
    """The module `build(entry)` with the weights the checkpoint declares under `key`, or None.
    `checkpoint` is its config.json as read once (`world_model.checkpoint.read_config`)."""

    entry = checkpoint.extra.get(key)
    if entry is None:
        return None
    path = checkpoint.path / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint.path}/config.json declares {entry['file']}; it is missing"
        )
    module = build(entry)
    module.load_state_dict(load_file(str(path), device="cpu"))
    return module.to(device).eval()


@torch.no_grad()
def encode_episodes(
    world_model: Any, paths: list[str], batch: int = 64, cache: str | Path | None = None
) -> list[torch.Tensor]:
    """Latents `(L+1, N, D)` of every episode in the HDF5 datasets, encoded by `world_model`.

    `cache`: a safetensors file the latents are read from if it exists, else written to (the
    caller keys it to one checkpoint and data list; encoding is the slow part on a CPU).
    """

    if cache is not None and Path(cache).is_file():
        stored = load_file(str(cache))
        return [stored[f"episode_{i}"] for i in range(len(stored))]
    out = []
    for path in paths:
        with open_dataset(path) as reader:
            for episode in reader:
                frames = torch.as_tensor(episode.pixels).permute(0, 3, 1, 2)  # [T, 3, H, W]
                chunks = [
                    world_model.encode(frames[i : i + batch][None])[0].float().cpu()
                    for i in range(0, len(frames), batch)
                ]
                out.append(torch.cat(chunks))  # [T, N, D]
    if not out:
        raise ValueError(f"no episodes in {paths}")
    if cache is not None:
        save_file({f"episode_{i}": z.contiguous() for i, z in enumerate(out)}, str(cache))
    return out


def split_episodes(
    episodes: list[T], val_fraction: float, generator: torch.Generator
) -> tuple[list[T], list[T]]:
    """(train, validation) episodes (or episode indices), a seeded split by whole episodes."""
    order = torch.randperm(len(episodes), generator=generator).tolist()
    n_val = max(1, round(len(episodes) * val_fraction))
    if len(episodes) - n_val < 1:
        raise ValueError(f"{len(episodes)} episodes: too few to hold {n_val} out for validation")
    return [episodes[i] for i in order[n_val:]], [episodes[i] for i in order[:n_val]]


def fit(
    module: nn.Module,
    batch_loss: Callable[[], torch.Tensor],
    steps: int,
    lr: float,
    weight_decay: float,
    log_every: int = 500,
) -> nn.Module:
    """The offline recipe every extra shares: AdamW with cosine decay to 0 over `steps`, one
    `batch_loss()` (a fresh batch each call) per step; returns `module` in eval mode."""
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log_every and step % log_every == 0:
            elapsed = time.perf_counter() - t0
            print(f"step {step}: loss {loss.item():.5f} ({elapsed:.0f} s)", flush=True)
    return module.eval()


def cli_episodes(
    argv: list[str] | None, command: str
) -> tuple[str, Any, list[str], list[torch.Tensor], dict[str, Any]]:
    """Parse `checkpoint=DIR data=[a.h5,...] [latents_cache=F] [threads=N] field=value ...`,
    encode the data with the checkpoint's world model -> (checkpoint, world model, data,
    episodes, fields)."""
    from omegaconf import OmegaConf

    from world_model import load_world_model

    args = OmegaConf.from_dotlist(sys.argv[1:] if argv is None else argv)
    checkpoint, data = args.pop("checkpoint", None), args.pop("data", None)
    cache = args.pop("latents_cache", None)
    if checkpoint is None or not data:
        raise SystemExit(f"usage: python -m {command} checkpoint=DIR data=[a.h5]")
    torch.set_num_threads(int(args.pop("threads", 1)))
    world_model = load_world_model(checkpoint, device="cpu").eval()
    t0 = time.perf_counter()
    episodes = encode_episodes(world_model, list(data), cache=cache)
    print(f"encoded {len(episodes)} episodes in {time.perf_counter() - t0:.0f} s", flush=True)
    return str(checkpoint), world_model, list(data), episodes, OmegaConf.to_container(args)
