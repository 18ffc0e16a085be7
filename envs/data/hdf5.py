"""Trajectory datasets in robomimic's HDF5 layout: writing, validation and the episode reader.

Layout (``FORMAT_VERSION`` 1)::

    data/                       attrs: env_id, env_kwargs (JSON), env_args (robomimic JSON),
                                       control_hz, camera (JSON), image_size, policy (JSON),
                                       format_version, num_demos, total (sum of num_samples)
    data/demo_K/                attrs: num_samples = L, success, distance (final, m), seed, policy
        obs/pixels   (L+1, H, W, 3) uint8, gzip, chunked by 16 frames, fletcher32 checksums
        obs/state    (L+1, 7) float32   ee xyz (m), Euler xyz (rad), gripper opening
        actions      (L, 7) float32     actions[t] takes frame t to frame t+1
        rewards      (L,) float32, dones (L,) uint8
        states       (L+1, S) float64   simulator state (env.get_sim_state()) per frame
        goal/pixels  (H, W, 3) uint8, goal/state (7,) float32

Each episode is first written as its own small file (``<out>.parts/demo_K.h5``) through a
temporary name and an atomic rename, so an interrupted collection keeps every finished episode
and loses at most the ones in flight; `merge_parts` then copies the parts into the final file,
again through a temporary name; `append_parts` adds parts to an existing file the same way
(wm-improve's aggregated dataset grows by each round's episodes). Readers refuse anything that
does not match the layout.
Open a dataset through `envs.data.open_dataset`, which reads LeRobot directories too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from envs.data.checks import (
    bookkeeping_problem,
    outside_bounds,
    recorded_action_bounds,
    restated_problem,
)
from envs.data.episode import DatasetError, Episode, bad_sim_states, decode_attr, non_finite
from envs.data.storage import atomic_write, check_free_space, remove_stale_temporaries

FORMAT_VERSION = 1
DIGEST_ATTR = "content_sha256"  # data attr: `content_digest` of the file as merged
ROOT_ATTRS = ("env_id", "env_kwargs", "control_hz", "camera", "image_size", "policy")
PIXEL_CHUNK = 16  # frames per compressed chunk: a training clip touches one or two chunks
MERGE_MARGIN = 64 * 1024  # bytes over the parts' sum a merge may need (root group, attrs)


def _demo_index(name: str) -> int:
    return int(name.split("_", 1)[1])


# ---------------------------------------------------------------------------------- writing
def write_episode_part(
    parts_dir: Path,
    index: int,
    episode: Episode,
    compression: str = "gzip",
    part_attrs: dict[str, Any] | None = None,
) -> Path:
    """Write ``demo_<index>`` as ``parts_dir/demo_<index>.h5`` atomically; return the path.

    ``part_attrs`` go on the part file's root (the collect signature); they are not merged.
    A full disk raises `DiskFullError` naming the part and leaves no temporary behind.
    """
    for key, values in (("actions", episode.actions), ("obs/state", episode.states)):
        if problem := non_finite(key, np.asarray(values)):  # a simulation that blew up
            raise DatasetError(f"episode {index} (attrs {episode.attrs}): {problem}; not written")
    if episode.sim_states is not None and (problem := bad_sim_states(episode.sim_states)):
        raise DatasetError(f"episode {index} (attrs {episode.attrs}): {problem}; not written")
    parts_dir.mkdir(parents=True, exist_ok=True)
    # Built in memory, then written as plain bytes: HDF5 hitting a full disk mid-write
    # crashes the process (a segfault, or pages of HDF5 diagnostics from each worker), while
    # a plain write raises errno 28, which `atomic_write` names and cleans up after.
    data = _part_bytes(index, episode, compression, part_attrs or {})
    return atomic_write(parts_dir / f"demo_{index}.h5", data)  # whole or not at all


def _part_bytes(
    index: int, episode: Episode, compression: str, part_attrs: dict[str, Any]
) -> bytes:
    opts = {"compression": compression, "fletcher32": True}
    if compression == "gzip":
        opts["compression_opts"] = 4
    length = len(episode.actions)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, value in part_attrs.items():
            f.attrs[key] = value
        g = f.create_group(f"data/demo_{index}")
        frames = episode.pixels
        g.create_dataset(
            "obs/pixels",
            data=frames,
            chunks=(min(PIXEL_CHUNK, len(frames)), *frames.shape[1:]),
            **opts,
        )
        g.create_dataset("obs/state", data=episode.states.astype(np.float32), **opts)
        g.create_dataset("actions", data=episode.actions.astype(np.float32), **opts)
        rewards = episode.rewards if episode.rewards is not None else np.zeros(length, np.float32)
        g.create_dataset("rewards", data=rewards.astype(np.float32))
        dones = np.zeros(length, np.uint8)
        dones[-1:] = 1
        g.create_dataset("dones", data=dones)
        if episode.sim_states is not None:
            g.create_dataset("states", data=episode.sim_states, **opts)
        g.create_dataset("goal/pixels", data=episode.goal_pixels, **opts)
        g.create_dataset("goal/state", data=episode.goal_state.astype(np.float32))
        for key, value in {**episode.attrs, "num_samples": length}.items():
            g.attrs[key] = value
    return buffer.getvalue()


def finished_parts(parts_dir: Path) -> dict[int, Path]:
    """Indices -> paths of the complete episode parts (temporaries are never listed)."""
    if not parts_dir.is_dir():
        return {}
    return {
        _demo_index(p.stem): p
        for p in parts_dir.iterdir()
        if p.name.startswith("demo_") and p.suffix == ".h5"
    }


def discard_temporaries(parts_dir: Path) -> int:
    """Delete half-written parts whose writer process is gone (a killed run's leftovers)."""
    return len(remove_stale_temporaries(parts_dir, "*.tmp[.-]*"))  # ours and older releases' names


def merge_parts(
    parts_dir: Path,
    out_path: Path,
    root_attrs: dict[str, Any],
    indices: Sequence[int] | None = None,
) -> Path:
    """Copy the parts (``indices``, default all) into ``out_path`` through a temporary and a
    rename; delete the merged parts. A full disk raises `DiskFullError` and removes the
    temporary (the parts stay, so the same command can merge again once there is room).

    The free space is checked first: the merged file holds the parts' raw chunks, so it needs
    about their size, and HDF5 running out of space inside a copy aborts the process instead
    of raising."""
    found = finished_parts(parts_dir)
    wanted = sorted(found) if indices is None else sorted(indices)
    missing = [k for k in wanted if k not in found]
    if missing:
        raise DatasetError(f"{parts_dir}: parts {missing[:10]} are missing, cannot merge")
    parts = [(k, found[k]) for k in wanted]
    check_free_space(out_path, sum(p.stat().st_size for _, p in parts) + MERGE_MARGIN)
    atomic_write(out_path, lambda tmp: _write_merged(tmp, parts, root_attrs))
    for _, part in parts:
        part.unlink()
    if not any(parts_dir.iterdir()):
        parts_dir.rmdir()
    return out_path


def append_parts(parts_dir: Path, out_path: Path, root_attrs: dict[str, Any]) -> list[int]:
    """Add every part in ``parts_dir`` to ``out_path`` after the episodes it already holds (a
    new file when there is none); returns the indices added.

    The whole file is rewritten through a temporary and a rename, as `merge_parts` does, so a
    kill leaves the old file or the new one, never half of one; the parts are deleted only
    after the rename. A part whose index the file already holds was merged by a run killed
    before it could delete the part: it is deleted, not added twice. The existing file is
    opened (validated) first, so a damaged one is refused by name instead of copied."""
    out_path = Path(out_path)
    held: list[int] = []
    if out_path.exists():
        with EpisodeReader(out_path) as reader:
            held = [_demo_index(name) for name in reader.names]
    found = finished_parts(parts_dir)
    new = sorted(k for k in found if k not in set(held))
    if new:
        sources = [(k, out_path) for k in held] + [(k, found[k]) for k in new]
        needed = sum(p.stat().st_size for p in {path for _, path in sources}) + MERGE_MARGIN
        check_free_space(out_path, needed)
        atomic_write(out_path, lambda tmp: _write_merged(tmp, sources, root_attrs))
    for part in found.values():
        part.unlink()
    if Path(parts_dir).is_dir() and not any(Path(parts_dir).iterdir()):
        Path(parts_dir).rmdir()
    return new


def _write_merged(tmp: Path, parts: list[tuple[int, Path]], root_attrs: dict[str, Any]) -> None:
    total = 0
    with h5py.File(tmp, "w") as out, contextlib.ExitStack() as stack:
        data = out.create_group("data")
        opened: dict[Path, h5py.File] = {}  # a merged file holds many episodes: open it once
        for index, part in parts:
            if part not in opened:
                opened[part] = stack.enter_context(h5py.File(part, "r"))
            src = opened[part]
            src.copy(src[f"data/demo_{index}"], data, name=f"demo_{index}")  # raw chunk copy
            total += int(src[f"data/demo_{index}"].attrs["num_samples"])
        for key, value in root_attrs.items():
            data.attrs[key] = value if not isinstance(value, dict) else json.dumps(value)
        data.attrs["format_version"] = FORMAT_VERSION
        data.attrs["num_demos"] = len(parts)
        data.attrs["total"] = total
        data.attrs[DIGEST_ATTR] = content_digest(data)  # last: it covers everything above


def content_digest(data: h5py.Group) -> str:
    """sha256 of everything recorded under ``data`` but `DIGEST_ATTR`: every attr, and every
    dataset's dtype, shape and stored bytes (chunked datasets: their compressed chunks with
    their fletcher32 sums, read without decompressing, so the pixels cost only their file
    size). An attr edited after writing (a contract widened, a rate changed) reads as a
    different dataset instead of passing silently; fletcher32 alone covers only bit rot."""
    h = hashlib.sha256()

    def visit(name: str, obj: Any) -> None:
        attrs = {k: _canonical(v) for k, v in obj.attrs.items() if k != DIGEST_ATTR}
        h.update(json.dumps([name, attrs], sort_keys=True, default=str).encode())
        if isinstance(obj, h5py.Dataset):
            h.update(f"{obj.dtype.str}{obj.shape}".encode())
            if obj.chunks is None:
                h.update(np.ascontiguousarray(obj[()]).tobytes())
            else:
                for i in range(obj.id.get_num_chunks()):
                    offset = obj.id.get_chunk_info(i).chunk_offset
                    h.update(f"{offset}".encode() + obj.id.read_direct_chunk(offset)[1])

    visit("data", data)
    data.visititems(visit)
    return h.hexdigest()


def _canonical(value: Any) -> Any:
    """An attr as JSON-able plain Python (bytes decoded, arrays as lists)."""
    if isinstance(value, np.ndarray):
        return (
            [_canonical(v) for v in value.tolist()] if value.dtype.kind in "SO" else value.tolist()
        )
    return value.decode() if isinstance(value, bytes) else decode_attr(value)


# ---------------------------------------------------------------------------------- reading
def _check_demo(
    path: Path, name: str, g: h5py.Group, bounds: tuple[np.ndarray, np.ndarray] | None = None
) -> None:
    def fail(problem: str) -> DatasetError:
        return DatasetError(f"{path}: data/{name}: {problem}")

    for key in ("obs/pixels", "obs/state", "actions", "goal/pixels", "goal/state"):
        if key not in g:
            raise fail(f"missing dataset {key!r}")
    if "num_samples" not in g.attrs:
        raise fail("missing attr 'num_samples'")
    length = int(g.attrs["num_samples"])
    pix, st, act = g["obs/pixels"], g["obs/state"], g["actions"]
    if pix.dtype != np.uint8 or pix.ndim != 4 or pix.shape[-1] != 3:
        raise fail(f"obs/pixels must be uint8 (L+1, H, W, 3), got {pix.dtype} {pix.shape}")
    if pix.shape[0] != length + 1 or st.shape != (length + 1, 7) or act.shape != (length, 7):
        raise fail(
            f"inconsistent lengths: num_samples={length}, obs/pixels {pix.shape}, "
            f"obs/state {st.shape}, actions {act.shape} (want L+1, L+1, L)"
        )
    if g["goal/pixels"].shape != pix.shape[1:] or g["goal/state"].shape != (7,):
        raise fail(f"goal shapes {g['goal/pixels'].shape}, {g['goal/state'].shape} do not match")
    for key in ("actions", "obs/state", "goal/state"):
        dtype = g[key].dtype
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise fail(f"{key} has dtype {dtype}; expected numbers (float32)")
        try:
            values = g[key][()]
        except OSError as err:  # fletcher32 checksum or decompression failure
            raise fail(f"corrupt data in {key!r} ({err})") from err
        problem = non_finite(key, values)
        if problem:
            raise fail(f"{problem}; one NaN would make every trained weight NaN - re-record it")
        if key == "actions" and bounds is not None and (problem := outside_bounds(values, *bounds)):
            raise fail(f"{problem}; re-record it, or fix the env_contract attr if it is wrong")
    if "states" in g:  # simulator states: protocol=dataset and the oracle restart from them
        if g["states"].ndim != 2 or g["states"].shape[0] != length + 1:
            raise fail(f"states has shape {g['states'].shape}; expected (L+1={length + 1}, S)")
        try:
            values = g["states"][()]
        except OSError as err:
            raise fail(f"corrupt data in 'states' ({err})") from err
        if problem := bad_sim_states(values):
            raise fail(f"{problem} - re-record it")


class EpisodeReader:
    """Validated read-only view of one dataset file; iterating yields `Episode` objects."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DatasetError(f"{self.path} is a directory, not a dataset file")
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such dataset file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise DatasetError(
                f"{self.path}: not a readable HDF5 file ({err}); it is truncated or corrupt "
                "(an interrupted copy or collection?) - delete it and re-run wm-collect"
            ) from err
        try:
            self._validate()
        except DatasetError:
            self._file.close()
            raise

    def _validate(self) -> None:
        f = self._file
        if "data" not in f:
            raise DatasetError(f"{self.path}: no 'data' group: not a robomimic-layout dataset")
        data = f["data"]
        version = data.attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"{self.path}: format_version={version!r}, this reader reads {FORMAT_VERSION}"
            )
        missing = [k for k in ROOT_ATTRS if k not in data.attrs]
        if missing:
            raise DatasetError(f"{self.path}: data attrs missing {missing}")
        self.names = sorted((k for k in data if k.startswith("demo_")), key=_demo_index)
        if len(self.names) != int(data.attrs.get("num_demos", -1)):
            raise DatasetError(
                f"{self.path}: num_demos={data.attrs.get('num_demos')} but {len(self.names)} demo groups"
            )
        try:
            bounds = recorded_action_bounds(data.attrs)
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{self.path}: data attr env_contract is malformed ({err})") from err
        widths = {}
        for name in self.names:
            _check_demo(self.path, name, data[name], bounds)
            if "states" in data[name]:
                widths.setdefault(data[name]["states"].shape[1], name)
        if len(widths) > 1:  # one simulator records states of one size
            (a, first), (b, other) = sorted(widths.items(), key=lambda kv: _demo_index(kv[1]))[:2]
            raise DatasetError(
                f"{self.path}: data/{other}: states are {b} numbers wide, data/{first}'s {a}: "
                "episodes of different simulators in one file"
            )
        self.attrs = {k: decode_attr(v) for k, v in data.attrs.items()}
        self._check_consistent()
        # Last, so a damaged value is named by the checks above; a file from before the
        # digest (or from another tool) has none and is read as before.
        self.digest_verified = DIGEST_ATTR in data.attrs
        if self.digest_verified:
            try:
                digest = content_digest(data)
            except OSError as err:
                raise DatasetError(f"{self.path}: corrupt data ({err})") from err
            if digest != decode_attr(data.attrs[DIGEST_ATTR]):
                raise DatasetError(
                    f"{self.path}: its content differs from the {DIGEST_ATTR} recorded when it "
                    "was written: an attr or dataset was edited since (a changed rate, bound or "
                    "value would pass as recorded); restore it or re-record it"
                )

    def _check_consistent(self) -> None:
        """Attrs that restate each other or the env contract must agree (envs.data.checks)."""
        data = self._file["data"]
        lengths = [int(data[name].attrs["num_samples"]) for name in self.names]
        env_ids = {name: decode_attr(data[name].attrs.get("env_id")) for name in self.names}
        height = data[self.names[0]]["obs/pixels"].shape[1] if self.names else None
        problem = bookkeeping_problem(self.attrs, lengths, env_ids) or restated_problem(
            self.attrs, height
        )
        if problem:
            raise DatasetError(f"{self.path}: {problem}")

    def __len__(self) -> int:
        return len(self.names)

    def episode_attrs(self, i: int) -> dict[str, Any]:
        """Attrs of episode i (num_samples, success, seed, ...) without reading its arrays."""
        g = self._file[f"data/{self.names[i]}"]
        return {"name": self.names[i], **{k: decode_attr(v) for k, v in g.attrs.items()}}

    def goal_pixels(self, i: int) -> np.ndarray:
        """Episode i's goal image `(H, W, 3)` uint8 without reading its frames."""
        try:
            return self._file[f"data/{self.names[i]}/goal/pixels"][()]
        except OSError as err:
            raise DatasetError(f"{self.path}: data/{self.names[i]}: corrupt data ({err})") from err

    def __getitem__(self, i: int) -> Episode:
        name = self.names[i]
        g = self._file[f"data/{name}"]
        try:
            return Episode(
                pixels=g["obs/pixels"][()],
                states=g["obs/state"][()],
                actions=g["actions"][()],
                goal_pixels=g["goal/pixels"][()],
                goal_state=g["goal/state"][()],
                attrs={
                    "name": name,
                    "env_id": self.attrs["env_id"],
                    **{k: decode_attr(v) for k, v in g.attrs.items()},
                },
                rewards=g["rewards"][()] if "rewards" in g else None,
                sim_states=g["states"][()] if "states" in g else None,
            )
        except OSError as err:  # fletcher32 checksum or decompression failure
            raise DatasetError(f"{self.path}: data/{name}: corrupt data ({err})") from err

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EpisodeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
