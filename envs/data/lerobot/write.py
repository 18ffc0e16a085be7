"""Writing `envs.data.episode.Episode`s as a LeRobotDataset v3 directory (layout in
`envs.data.lerobot.layout`; the HDF5 conversions built on it are in `envs.data.lerobot.convert`).

The directory is written under a temporary name and renamed into place when complete, so a
killed export leaves no half dataset where a reader would find it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from envs.common.contract import EnvContract
from envs.data.episode import (  # decode_attr: JSON-ready attrs, as the HDF5 reader decodes them
    DatasetError,
    Episode,
    bad_sim_states,
    decode_attr,
    non_finite,
)
from envs.data.lerobot.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    DONE,
    EPISODE_ATTRS,
    EPISODES_PATH,
    EXTRA,
    EXTRA_VERSION,
    GOAL_IMAGE,
    GOAL_STATE,
    INFO_PATH,
    REWARD,
    SIM_STATE,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    file_checksums,
    info_digest,
)
from envs.data.lerobot.video import CODECS, VideoFileWriter
from envs.data.storage import disk_full_guard, remove_path, remove_stale_temporaries

_HDF5_BOOKKEEPING = ("format_version", "num_demos", "total")  # recomputed by merge_parts
CAMERA_KEY = "observation.image"
STATE_KEY = "observation.state"
ACTION_KEY = "action"


class _Stats:
    """Running min / max / mean / std / count of one feature (LeRobot's stats.json entries)."""

    def __init__(self) -> None:
        self.n, self.total, self.squares, self.low, self.high = 0, 0.0, 0.0, None, None
        self.known: np.ndarray | int = 0  # non-NaN values per dimension

    def add(self, values: np.ndarray) -> None:  # (N, D); NaN (a sim state's unknown) skipped
        v = values.astype(np.float64)
        known = ~np.isnan(v)
        self.n += len(v)
        self.known = self.known + known.sum(0)
        self.total = self.total + np.where(known, v, 0.0).sum(0)
        self.squares = self.squares + np.where(known, np.square(v), 0.0).sum(0)
        low, high = np.where(known, v, np.inf).min(0), np.where(known, v, -np.inf).max(0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    def as_dict(self, shape: tuple[int, ...] = (-1,)) -> dict[str, list]:
        known = np.maximum(self.known, 1)
        mean = self.total / known
        std = np.sqrt(np.maximum(self.squares / known - mean**2, 0.0))
        out = {"min": self.low, "max": self.high, "mean": mean, "std": std}
        return {k: np.reshape(v, shape).tolist() for k, v in out.items()} | {"count": [self.n]}


def _image_stats(frames: np.ndarray) -> np.ndarray:
    """Per-channel values in [0, 1], `(N * H * W, 3)` (LeRobot's image stats are per channel)."""
    return frames.reshape(-1, 3).astype(np.float32) / 255.0


def _fixed_list(values: np.ndarray, dtype: Any) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=dtype)
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class LeRobotWriter:
    """Append episodes with `add`, then `finish` writes the metadata and renames into place."""

    def __init__(
        self, out: Path, contract: EnvContract, attrs: dict[str, Any], codec: str = "lossless"
    ) -> None:
        if out.exists():
            raise DatasetError(f"{out} already exists; remove it or choose another output")
        if codec not in CODECS:
            raise ValueError(f"codec={codec!r}: expected one of {sorted(CODECS)}")
        fps = contract.control_hz
        if fps != round(fps):
            raise DatasetError(
                f"control_hz={fps}: LeRobot stores fps as an integer; this env cannot be exported"
            )
        self.out, self.contract, self.attrs, self.codec = out, contract, attrs, codec
        self.fps = int(round(fps))
        remove_stale_temporaries(out.parent, f"{out.name}.tmp.*")  # killed exports
        self.tmp = out.with_name(f"{out.name}.tmp.{os.getpid()}")
        remove_path(self.tmp)
        self.tmp.mkdir(parents=True)
        self.episodes: list[dict[str, Any]] = []
        self.tasks: dict[str, int] = {}
        self.stats: dict[str, _Stats] = {}
        self.frames = 0
        self.data_file = (0, 0)
        self.data_writer: Any = None
        self.video_file = (0, 0)
        self.video: VideoFileWriter | None = None
        self.shapes: dict[str, Any] = {}  # feature -> per-row size (camera: (H, W, 3))

    # ------------------------------------------------------------------ per episode
    def add(self, episode: Episode) -> None:
        """Write one episode's rows and frames (L + 1 rows: the last repeats the last action)."""
        index = len(self.episodes)
        for key, values in (("actions", episode.actions), ("states", episode.states)):
            if problem := non_finite(key, np.asarray(values)):
                raise DatasetError(f"episode {index}: {problem}; not exported")
        # the reader's check of the sim_state feature (NaN: a number the simulator lacks)
        if episode.sim_states is not None and (problem := bad_sim_states(episode.sim_states)):
            raise DatasetError(f"episode {index}: sim_state: {problem}; not exported")
        frames = np.asarray(episode.pixels, np.uint8)  # (N, H, W, 3)
        n = len(frames)
        if len(episode.states) != n or len(episode.actions) != n - 1:
            raise DatasetError(
                f"episode {index}: {n} frames, {len(episode.states)} states, "
                f"{len(episode.actions)} actions (want N, N, N - 1)"
            )
        actions = np.concatenate([episode.actions, episode.actions[-1:]]).astype(np.float32)
        columns = {
            STATE_KEY: np.asarray(episode.states, np.float32),
            ACTION_KEY: actions,
        }
        if episode.sim_states is not None:
            columns[SIM_STATE] = np.asarray(episode.sim_states, np.float64)
        shapes = {k: v.shape[1] for k, v in columns.items()} | {CAMERA_KEY: frames.shape[1:]}
        if self.shapes and shapes != self.shapes:  # one feature schema per dataset
            raise DatasetError(f"episode {index}: shapes {shapes}, earlier episodes {self.shapes}")
        self.shapes = shapes
        task = str(episode.attrs.get("env_id", self.contract.env_id))
        task_index = self.tasks.setdefault(task, len(self.tasks))
        meta = {
            "episode_index": index,
            "tasks": [task],
            "length": n,
            **self._write_rows(index, n, columns, episode, task_index),
            **self._write_video(frames),
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
        }
        episode_stats = {}
        for key, values in {**columns, CAMERA_KEY: _image_stats(frames)}.items():
            self.stats.setdefault(key, _Stats()).add(values)
            one = _Stats()
            one.add(values)
            episode_stats[key] = one.as_dict((3, 1, 1) if key == CAMERA_KEY else (-1,))
        for key, stats in episode_stats.items():
            meta |= {f"stats/{key}/{stat}": value for stat, value in stats.items()}
        attrs = {
            k: decode_attr(v) for k, v in episode.attrs.items() if k not in ("name", "num_samples")
        }
        meta |= {
            GOAL_STATE: np.asarray(episode.goal_state, np.float32).tolist(),
            GOAL_IMAGE: _png(np.asarray(episode.goal_pixels, np.uint8)),
            EPISODE_ATTRS: json.dumps(attrs),
        }
        self.episodes.append(meta)
        self.frames += n

    def _write_rows(
        self, index: int, n: int, columns: dict[str, np.ndarray], episode: Episode, task: int
    ) -> dict[str, int]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rewards = np.zeros(n, np.float32)
        if episode.rewards is not None:
            rewards[:-1] = episode.rewards
        done = np.zeros(n, bool)
        done[-1] = True
        arrays = {
            key: _fixed_list(v, pa.float64() if v.dtype == np.float64 else pa.float32())
            for key, v in columns.items()
        }
        arrays |= {
            REWARD: pa.array(rewards),
            DONE: pa.array(done),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / np.float32(self.fps)),
            "frame_index": pa.array(np.arange(n, dtype=np.int64)),
            "episode_index": pa.array(np.full(n, index, np.int64)),
            "index": pa.array(np.arange(self.frames, self.frames + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, task, np.int64)),
        }
        table = pa.table(arrays)
        path = self.tmp / DATA_PATH.format(
            chunk_index=self.data_file[0], file_index=self.data_file[1]
        )
        if self.data_writer is not None and path.stat().st_size / 1e6 >= DATA_FILE_MB:
            self.data_writer.close()
            self.data_writer, self.data_file = None, _next_file(*self.data_file)
            path = self.tmp / DATA_PATH.format(
                chunk_index=self.data_file[0], file_index=self.data_file[1]
            )
        if self.data_writer is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.data_writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        self.data_writer.write_table(table)  # one row group per episode, as LeRobot writes
        return {
            "data/chunk_index": self.data_file[0],
            "data/file_index": self.data_file[1],
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + n,
        }

    def _write_video(self, frames: np.ndarray) -> dict[str, Any]:
        if self.video is not None and self.video.size_mb() >= VIDEO_FILE_MB:
            self.video.close()
            self.video, self.video_file = None, _next_file(*self.video_file)
        if self.video is None:
            chunk, file = self.video_file
            path = self.tmp / VIDEO_PATH.format(
                video_key=CAMERA_KEY, chunk_index=chunk, file_index=file
            )
            self.video = VideoFileWriter(
                path, self.fps, frames.shape[1], frames.shape[2], self.codec
            )
        start, end = self.video.append(frames)
        prefix = f"videos/{CAMERA_KEY}/"
        return {
            prefix + "chunk_index": self.video_file[0],
            prefix + "file_index": self.video_file[1],
            prefix + "from_timestamp": start,
            prefix + "to_timestamp": end,
        }

    # ------------------------------------------------------------------ metadata
    def finish(self) -> Path:
        """Close the files, write meta/, rename the directory into place; -> its path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.episodes:
            raise DatasetError(f"{self.out}: no episodes to export")
        self.data_writer.close()
        self.video.close()
        episodes = pa.Table.from_pylist(self.episodes)
        path = self.tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(episodes, path)
        pq.write_table(_tasks_table(self.tasks), self.tmp / TASKS_PATH)
        stats = {
            k: s.as_dict((3, 1, 1) if k == CAMERA_KEY else (-1,)) for k, s in self.stats.items()
        }
        (self.tmp / STATS_PATH).write_text(json.dumps(stats, indent=2))
        info = self._info()
        info[EXTRA]["checksums"] = file_checksums(self.tmp)  # every file but info.json
        info[EXTRA]["info_sha256"] = info_digest(info)  # and info.json itself
        (self.tmp / INFO_PATH).write_text(json.dumps(info, indent=4))
        os.replace(self.tmp, self.out)
        return self.out

    def _info(self) -> dict[str, Any]:
        import av

        h, w, _ = self.shapes[CAMERA_KEY]
        video = self.tmp / VIDEO_PATH.format(video_key=CAMERA_KEY, chunk_index=0, file_index=0)
        with av.open(str(video)) as container:  # what LeRobot's get_video_info records
            stream = container.streams.video[0]
            codec, pix_fmt = stream.codec.canonical_name, stream.pix_fmt
        features = {
            CAMERA_KEY: {
                "dtype": "video",
                "shape": [h, w, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": codec,
                    "video.pix_fmt": pix_fmt,
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "has_audio": False,
                },
            },
            STATE_KEY: _vector_feature("float32", self.shapes[STATE_KEY], "state"),
            ACTION_KEY: _vector_feature("float32", self.shapes[ACTION_KEY], "action"),
        }
        if SIM_STATE in self.shapes:
            features[SIM_STATE] = _vector_feature("float64", self.shapes[SIM_STATE], "qpos")
        features[REWARD] = {"dtype": "float32", "shape": [1], "names": None}
        features[DONE] = {"dtype": "bool", "shape": [1], "names": None}
        features |= DEFAULT_FEATURES
        env_id = self.contract.env_id
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": env_id.split("/")[-1],
            "total_episodes": len(self.episodes),
            "total_frames": self.frames,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILE_MB,
            "video_files_size_in_mb": VIDEO_FILE_MB,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": features,
            EXTRA: {
                "format_version": EXTRA_VERSION,
                "env_contract": self.contract.to_dict(),
                "attrs": {
                    k: decode_attr(v) for k, v in self.attrs.items() if k not in _HDF5_BOOKKEEPING
                },
                "last_action": "the last row of each episode repeats the previous action",
            },
        }

    def abort(self) -> None:
        for handle in (self.data_writer, self.video):
            if handle is not None:
                # already failing: the error that got here is the one to report
                with contextlib.suppress(Exception):
                    handle.close()
        remove_path(self.tmp)


def _next_file(chunk: int, file: int) -> tuple[int, int]:
    """LeRobot's update_chunk_file_indices: files fill a chunk folder, then the next chunk."""
    return (chunk + 1, 0) if file == CHUNKS_SIZE - 1 else (chunk, file + 1)


def _vector_feature(dtype: str, dim: int, name: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [dim], "names": [f"{name}_{i}" for i in range(dim)]}


def _tasks_table(tasks: dict[str, int]) -> Any:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame: ``task`` is the index."""
    import pyarrow as pa

    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()),
                      "task": pa.array(list(tasks), pa.string())})  # fmt: skip
    pandas = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }  # fmt: skip
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas).encode()})


def write_lerobot(
    out: str | Path,
    episodes: Iterable[Episode],
    contract: EnvContract,
    attrs: dict[str, Any],
    codec: str = "lossless",
) -> Path:
    """Write `episodes` as a LeRobot v3 dataset at `out` (must not exist); -> `out`.

    `contract` goes to info.json (fps = its control rate, which must be whole Hz), `attrs`
    (the HDF5 root attrs) with it, so `import_lerobot` gives back the same file."""
    out = Path(out)
    writer = LeRobotWriter(out, contract, attrs, codec)
    try:
        with disk_full_guard(out):
            for episode in episodes:
                writer.add(episode)
            return writer.finish()
    except BaseException:
        writer.abort()
        raise
