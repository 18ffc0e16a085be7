"""`ClipDataset`: fixed-length training clips read lazily from HDF5 datasets (envs/dataset.py
writes and validates them), for users who train their own model with a torch DataLoader."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from envs.dataset import DatasetError, open_dataset


class ClipDataset(torch.utils.data.Dataset):
    """Fixed-length training clips from one or more dataset files.

    Item: ``frames (T, H, W, 3) uint8``, ``states (T, 7) float32``, ``actions (T-1, 7) float32``
    (``actions[t]`` takes frame t to t+1). Clip starts every ``stride`` frames. Files are opened
    lazily per process, so it works with DataLoader workers (fork or spawn).
    """

    def __init__(
        self, paths: str | os.PathLike | Sequence[str | os.PathLike], clip_len: int, stride: int = 1
    ) -> None:
        if clip_len < 2 or stride < 1:
            raise ValueError(f"clip_len={clip_len} must be >= 2 and stride={stride} >= 1")
        self.paths = (
            [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
        )
        self.clip_len, self.stride = clip_len, stride
        index = []  # (file, demo name, start frame)
        for fi, path in enumerate(self.paths):
            if path.is_dir():  # reads HDF5 chunks lazily per worker; LeRobot has no such path
                raise DatasetError(
                    f"{path}: ClipDataset reads HDF5 files; convert it with "
                    f"python -m envs.lerobot import {path} {path}.h5"
                )
            with open_dataset(path) as reader:
                for name in reader.names:
                    frames = int(reader._file[f"data/{name}"].attrs["num_samples"]) + 1
                    index += [(fi, name, s) for s in range(0, frames - clip_len + 1, stride)]
        self.index = index
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index)

    def _file(self, fi: int) -> h5py.File:
        if self._pid != os.getpid():  # forked DataLoader worker: never share HDF5 handles
            self._files, self._pid = {}, os.getpid()
        if fi not in self._files:
            self._files[fi] = h5py.File(self.paths[fi], "r")
        return self._files[fi]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        fi, name, s = self.index[i]
        g = self._file(fi)[f"data/{name}"]
        t = self.clip_len
        try:
            return {
                "frames": torch.from_numpy(g["obs/pixels"][s : s + t]),  # (T, H, W, 3)
                "states": torch.from_numpy(g["obs/state"][s : s + t].astype(np.float32)),  # (T, 7)
                "actions": torch.from_numpy(
                    g["actions"][s : s + t - 1].astype(np.float32)
                ),  # (T-1, 7)
            }
        except OSError as err:
            raise DatasetError(f"{self.paths[fi]}: data/{name}: corrupt data ({err})") from err

    def __getstate__(self) -> dict[str, Any]:  # spawn workers: send the index, not open files
        return {**self.__dict__, "_files": {}}
