"""The LeRobotDataset v3 layout (LeRobot's ``lerobot/datasets/utils.py``), the keys wm-train
reads it by, and what this project adds to it.

    meta/info.json                         codebase_version "v3.x", fps, features, path templates
    meta/stats.json                        per feature: min, max, mean, std, count
    meta/tasks.parquet                     task (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, dataset_from_index,
                                           dataset_to_index, data/chunk_index, data/file_index,
                                           videos/<key>/{chunk_index,file_index,from_timestamp,
                                           to_timestamp}, tasks, stats/<feature>/<stat>
    data/chunk-000/file-000.parquet        one row per frame: every non-video feature plus
                                           timestamp, frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4    the episodes' frames back to back

LeRobot pairs row t's ``action`` with frame t, so an episode of N frames holds N actions; ours
hold L + 1 frames and L actions. The exporter repeats the last action on the last row (a
repeat keeps the stats' min / max, which a zero could widen) and the reader drops the last
row's action, which takes frame N - 1 to a frame nobody recorded.

Additions, ignored by LeRobot's reader (it skips unknown info keys and keeps extra episode
columns): ``info.json["latent_planner"]`` holds the env contract and HDF5 root attrs of an
exported wm-collect file, the ``sim_state`` feature the simulator state per frame, and the
``latent_planner/*`` episode columns each episode's goal image (PNG), goal state and attrs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILE_MB = 100  # LeRobot's DEFAULT_DATA_FILE_SIZE_IN_MB
VIDEO_FILE_MB = 200  # LeRobot's DEFAULT_VIDEO_FILE_SIZE_IN_MB
DEFAULT_FEATURES = {  # LeRobot's lerobot.utils.constants.DEFAULT_FEATURES
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

IMAGE_SIZES = (16, 256)  # the image sizes every env here takes (envs/common/config.py)
EXTRA = "latent_planner"  # our info.json key
EXTRA_VERSION = 1
SIM_STATE = "sim_state"
REWARD = "next.reward"  # LeRobot's names for the reward / done of the row's action
DONE = "next.done"
GOAL_STATE = "latent_planner/goal_state"
GOAL_IMAGE = "latent_planner/goal_image_png"
EPISODE_ATTRS = "latent_planner/attrs"


@dataclass
class LeRobotKeys:
    """Which features of a LeRobot dataset are the frames, the state and the action
    (``wm-train lerobot.camera_key=observation.images.top ...``)."""

    camera_key: str | None = None
    """A ``video`` or ``image`` feature; None picks ``observation.image``, else the first
    ``observation.images.*`` feature in info.json order."""
    state_key: str = "observation.state"
    """1-D float feature used as the proprio state."""
    action_key: str = "action"
    """1-D float feature; row t's action takes frame t to frame t + 1."""
    image_size: int | None = None
    """Centre-crop each frame to a square and resize it to this side (pixels, 16..256: what
    the envs render, so a model trained on it has an env to drive); None keeps the recorded
    size, which must then be square."""

    def __post_init__(self) -> None:
        if self.image_size is not None and not (
            isinstance(self.image_size, int) and IMAGE_SIZES[0] <= self.image_size <= IMAGE_SIZES[1]
        ):
            raise ValueError(
                f"lerobot.image_size={self.image_size!r}: expected {IMAGE_SIZES[0]}..{IMAGE_SIZES[1]}"
                " pixels (what the envs render) or null (the recorded size)"
            )
        for name in ("state_key", "action_key"):
            if not getattr(self, name):
                raise ValueError(f"lerobot.{name} is empty")

    def to_dict(self) -> dict:
        return asdict(self)


class LeRobotSource(os.PathLike):
    """A LeRobot dataset directory together with the keys to read it by: what wm-train passes
    where an HDF5 path would go (`os.PathLike`, so ``Path(source)`` is the directory)."""

    def __init__(self, path: str | os.PathLike, keys: LeRobotKeys) -> None:
        self.path, self.keys = str(path), keys

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"LeRobotSource({self.path!r}, {self.keys})"


def is_lerobot_dir(path: str | os.PathLike) -> bool:
    """A directory is read as a LeRobot dataset (HDF5 datasets are files)."""
    return Path(path).is_dir()


def dataset_sources(paths: list[str], keys: LeRobotKeys) -> list[str | LeRobotSource]:
    """`train.data` entries with each LeRobot directory paired with `keys`."""
    return [LeRobotSource(p, keys) if is_lerobot_dir(p) else p for p in paths]


def file_sha256(path: Path) -> str:
    """Hex sha256 of one file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksums(root: Path, skip: tuple[str, ...] = (INFO_PATH,)) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root`` but ``skip`` (info.json holds
    the result: ``info.json["latent_planner"]["checksums"]``)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {
        rel: file_sha256(p) for p in files if (rel := p.relative_to(root).as_posix()) not in skip
    }


def info_digest(info: dict) -> str:
    """sha256 of info.json's content (canonical JSON) but its own checksums and this digest:
    ``info.json["latent_planner"]["info_sha256"]``, so an edited fps or contract is seen."""
    extra = {k: v for k, v in info.get(EXTRA, {}).items() if k not in ("checksums", "info_sha256")}
    content = {**info, EXTRA: extra} if EXTRA in info else info
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def content_hash(source: str | os.PathLike) -> str:
    """sha256 of every file under a LeRobot directory (relative path + bytes) and of the keys
    it is read by: the latent cache's key, so another camera key is another cache entry."""
    root = Path(source)
    keys = getattr(source, "keys", None) or LeRobotKeys()
    h = hashlib.sha256(json.dumps(keys.to_dict(), sort_keys=True).encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
