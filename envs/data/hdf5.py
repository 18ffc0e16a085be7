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
again through a temporary name. Readers refuse anything that does not match the layout.
Open a dataset through `envs.data.open_dataset`, which reads LeRobot directories too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from envs.data.checks import outside_bounds, recorded_action_bounds
from envs.data.episode import DatasetError, Episode, decode_attr, non_finite
from envs.data.storage import atomic_write, check_free_space, remove_stale_temporaries

FORMAT_VERSION = 1
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
    parts_dir.mkdir(parents=True, exist_ok=True)
    final = parts_dir / f"demo_{index}.h5"
    # atomic: a part exists whole or not at all
    write = lambda tmp: _write_part_file(tmp, index, episode, compression, part_attrs or {})  # noqa: E731
    return atomic_write(final, write)


def _write_part_file(
    tmp: Path, index: int, episode: Episode, compression: str, part_attrs: dict[str, Any]
) -> None:
    opts = {"compression": compression, "fletcher32": True}
    if compression == "gzip":
        opts["compression_opts"] = 4
    length = len(episode.actions)
    with h5py.File(tmp, "w") as f:
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


def _write_merged(tmp: Path, parts: list[tuple[int, Path]], root_attrs: dict[str, Any]) -> None:
    total = 0
    with h5py.File(tmp, "w") as out:
        data = out.create_group("data")
        for index, part in parts:
            with h5py.File(part, "r") as src:
                src.copy(src[f"data/demo_{index}"], data, name=f"demo_{index}")  # raw chunk copy
                total += int(src[f"data/demo_{index}"].attrs["num_samples"])
        for key, value in root_attrs.items():
            data.attrs[key] = value if not isinstance(value, dict) else json.dumps(value)
        data.attrs["format_version"] = FORMAT_VERSION
        data.attrs["num_demos"] = len(parts)
        data.attrs["total"] = total


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
        for name in self.names:
            _check_demo(self.path, name, data[name], bounds)
        self.attrs = {k: decode_attr(v) for k, v in data.attrs.items()}

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
