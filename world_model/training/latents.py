"""Encoder latents of whole datasets, computed once and cached on disk.

The encoder is frozen, so re-encoding frames every epoch would only burn CPU. A cache file is
keyed by the dataset file's content hash and the encoder's (config + weights) hash, so changing
either one re-encodes, and nothing stale is ever reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from envs.common.contract import EnvContract
from envs.data import open_dataset
from envs.data.storage import atomic_write, remove_stale_temporaries
from world_model.model.encoder import FrozenEncoder


class Episode(Protocol):
    """What an envs.data episode provides (only these fields are read)."""

    pixels: np.ndarray  # (L + 1, H, W, 3) uint8
    states: np.ndarray  # (L + 1, 7)
    actions: np.ndarray  # (L, 7)
    attrs: dict


@dataclass
class LatentSet:
    """All frames of a dataset, flattened; episode e spans `starts[e] : starts[e] + lengths[e]`.

    `actions[i]` moves frame i to i + 1 (zero on each episode's last frame)."""

    latents: Tensor  # (F, N, D) float32, layer-normed encoder latents
    states: Tensor  # (F, 7)
    actions: Tensor  # (F, 7)
    starts: Tensor  # (E,) int64
    lengths: Tensor  # (E,) int64, frames per episode (L + 1)
    tasks: list[str]  # (E,) task / env id per episode

    def to(self, device: str | torch.device) -> LatentSet:
        return LatentSet(
            self.latents.to(device),
            self.states.to(device),
            self.actions.to(device),
            self.starts,
            self.lengths,
            self.tasks,
        )

    @staticmethod
    def concat(parts: list[LatentSet]) -> LatentSet:
        offsets = np.cumsum([0] + [len(p.latents) for p in parts[:-1]])
        return LatentSet(
            torch.cat([p.latents for p in parts]),
            torch.cat([p.states for p in parts]),
            torch.cat([p.actions for p in parts]),
            torch.cat([p.starts + int(o) for p, o in zip(parts, offsets, strict=True)]),
            torch.cat([p.lengths for p in parts]),
            [t for p in parts for t in p.tasks],
        )


def iter_dataset_episodes(path: str | Path) -> Iterator[Episode]:
    """The one coupling point with `envs.data`: episodes of one HDF5 file."""

    reader = open_dataset(path)
    try:
        yield from reader
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()


def dataset_contract(paths: Iterable[str | Path]) -> EnvContract:
    """The env contract every dataset of a training run was recorded under (they must agree)."""

    found: list[tuple[str, EnvContract]] = []
    for path in paths:
        reader = open_dataset(path)
        try:
            found.append((str(path), EnvContract.from_dataset_attrs(reader.attrs)))
        finally:
            close = getattr(reader, "close", None)
            if callable(close):
                close()
    if not found:
        raise ValueError("no datasets given: the env contract comes from their attrs")
    first_path, first = found[0]
    for path, contract in found[1:]:
        combined = first.combine(contract)
        if combined is None:
            a, b = first.to_dict(), contract.to_dict()
            diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
            raise ValueError(
                f"{first_path} and {path} were recorded under different envs, (first, second) "
                f"values: {diff}; train one model per env contract"
            )
        first = combined
    return first


def count_episodes(path: str | Path) -> int:
    """Episodes in one dataset file (for the progress bar)."""

    with open_dataset(path) as reader:
        return len(reader)


def episode_task(episode: Episode, fallback: str) -> str:
    """Task label for per-task metrics: the episode's env id if recorded, else `fallback`."""
    attrs = getattr(episode, "attrs", None) or {}
    for key in ("env_id", "task", "env"):
        if key in attrs:
            value = attrs[key]
            return value.decode() if isinstance(value, bytes) else str(value)
    return fallback


def frames_change(pixels: np.ndarray | Tensor) -> bool:
    """Whether any frame of an episode `(L + 1, ...)` differs from its first."""
    return bool((pixels[1:] != pixels[:1]).any())


def refuse_still_data(source: str | Path, episodes: int) -> None:
    """A file in which no episode's frames ever change has no dynamics to learn, and its
    copy-last error is 0 (the validation ratio would divide by it): refuse it by name."""
    raise ValueError(
        f"{source}: in all {episodes} episodes every frame equals the episode's first one: "
        "nothing moves in the images, so there is nothing to learn; check the camera and the "
        "renderer, and re-record it"
    )


@torch.no_grad()
def encode_episodes(
    encoder: FrozenEncoder, episodes: Iterable[Episode], task: str = "", source: str = ""
) -> LatentSet:
    """Encode every frame of every episode -> `LatentSet`; `source` names the file in errors."""
    lat, states, actions, lengths, tasks = [], [], [], [], []
    moving = False
    for ep in episodes:
        pixels = torch.as_tensor(np.asarray(ep.pixels))  # (L+1, H, W, 3) uint8
        moving = moving or frames_change(pixels)
        frames = pixels.permute(0, 3, 1, 2)[None]  # (1, L+1, 3, H, W)
        lat.append(encoder(frames)[0].cpu())  # (L+1, N, D)
        st = torch.as_tensor(np.asarray(ep.states), dtype=torch.float32)  # (L+1, 7)
        act = torch.as_tensor(np.asarray(ep.actions), dtype=torch.float32)  # (L, 7)
        if len(act) != len(st) - 1 or len(st) != len(pixels):
            raise ValueError(
                f"episode with {len(pixels)} frames, {len(st)} states, {len(act)} actions"
            )
        actions.append(torch.cat([act, act.new_zeros(1, act.shape[-1])]))  # (L+1, 7)
        states.append(st)
        lengths.append(len(st))
        tasks.append(episode_task(ep, task))
    if not lat:
        raise ValueError(f"{source or 'dataset'}: no episodes to encode (empty dataset)")
    if not moving:
        refuse_still_data(source or "dataset", len(lat))
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    starts = torch.cumsum(lengths_t, 0) - lengths_t
    return LatentSet(
        torch.cat(lat), torch.cat(states), torch.cat(actions), starts, lengths_t, tasks
    )


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (content, not name or mtime); of a LeRobot directory's files
    and the keys it is read by (`envs.data.lerobot.content_hash`)."""
    if Path(path).is_dir():
        from envs.data.lerobot import content_hash

        return content_hash(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_hash(encoder: FrozenEncoder) -> str:
    """sha256 of the encoder's normalisation config, architecture and weights."""
    h = hashlib.sha256()
    cfg = {
        k: v for k, v in vars(encoder.cfg).items() if k not in ("source", "device", "encode_batch")
    }
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(json.dumps(encoder.hf_config.to_dict(), sort_keys=True, default=str).encode())
    for key, value in sorted(encoder.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_latent_set(data: LatentSet, path: Path, meta: dict[str, Any]) -> None:
    """Atomic write of a cache file (tensors + task names in the metadata)."""
    tensors = {
        "latents": data.latents.contiguous(),
        "states": data.states.contiguous(),
        "actions": data.actions.contiguous(),
        "starts": data.starts.contiguous(),
        "lengths": data.lengths.contiguous(),
    }

    metadata = {"tasks": json.dumps(data.tasks), "meta": json.dumps(meta)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_latent_set(path: Path) -> LatentSet:
    """Read a cache file; ValueError naming it when unreadable or holding NaN/inf."""

    try:
        t = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            tasks = json.loads(f.metadata()["tasks"])
    except Exception as exc:
        raise ValueError(f"latent cache {path} is corrupt: {exc}") from exc
    for key in ("latents", "states", "actions"):
        if not bool(torch.isfinite(t[key]).all()):
            raise ValueError(f"latent cache {path}: {key} holds NaN/inf")
    return LatentSet(t["latents"], t["states"], t["actions"], t["starts"], t["lengths"], tasks)


def cached_latents(
    paths: Iterable[str | Path], encoder: FrozenEncoder, cache_dir: str | Path, log: Any = print
) -> LatentSet:
    """Latents of all datasets, from `cache_dir` when present, else encoded and cached."""

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache_dir, "*.tmp-*")  # cache writes of killed runs
    enc_key = encoder_hash(encoder)[:16]
    parts = []
    for path in paths:
        key = f"{Path(path).stem}-{file_hash(path)[:16]}-{enc_key}.safetensors"
        cache = cache_dir / key
        if cache.is_file():
            try:
                parts.append(load_latent_set(cache))
                continue
            except ValueError as err:  # a cache is derived data: rebuild it
                log(f"{err}; encoding again")
        log(f"encoding {path} -> {cache}")
        episodes = tqdm(  # minutes for 10^4 frames on a CPU: show where it is
            iter_dataset_episodes(path), total=count_episodes(path), desc="encode", unit="episode"
        )
        data = encode_episodes(encoder, episodes, task=Path(path).stem, source=str(path))
        if not bool(torch.isfinite(data.latents).all()):  # the frames are uint8: the encoder
            raise ValueError(
                f"{path}: the encoder produced NaN/inf latents; check its weights "
                "(world_model.encoder.source); nothing was cached"
            )
        save_latent_set(data, cache, {"dataset": str(path), "encoder": enc_key})
        parts.append(data)
    if not parts:
        raise ValueError("no datasets given (train.data is empty)")
    return LatentSet.concat(parts)
