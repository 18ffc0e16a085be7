"""Recorded trajectories on disk: robomimic-layout HDF5 files (`envs.data.hdf5`) and
LeRobotDataset v3 directories (`envs.data.lerobot`), both read as `envs.data.episode.Episode`s.

`open_dataset` is the one entry point that picks the format from the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from envs.data.hdf5 import EpisodeReader

if TYPE_CHECKING:
    from envs.data.lerobot.read import LeRobotReader


def open_dataset(path: str | os.PathLike) -> EpisodeReader | LeRobotReader:
    """Open and validate a dataset; raises `DatasetError` naming the file and the problem.

    A directory is a LeRobot v3 dataset (`envs.data.lerobot`), read by the keys a `LeRobotSource`
    carries (defaults otherwise) behind the same reader interface."""
    if Path(path).is_dir():
        from envs.data.lerobot import LeRobotReader  # pyarrow / PyAV only when a directory is read

        return LeRobotReader(path, getattr(path, "keys", None))
    return EpisodeReader(path)
