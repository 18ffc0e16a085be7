"""HDF5 files from wm-collect to LeRobot v3 directories and back: what ``python -m
envs.data.lerobot export|import`` and ``wm-collect format=lerobot`` run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from envs.common.contract import EnvContract
from envs.data import open_dataset
from envs.data.episode import DatasetError
from envs.data.hdf5 import ROOT_ATTRS, merge_parts, write_episode_part
from envs.data.lerobot.layout import LeRobotKeys
from envs.data.lerobot.read import LeRobotReader
from envs.data.lerobot.write import write_lerobot
from envs.data.storage import remove_path, remove_stale_temporaries


def export_hdf5(h5: str | Path, out: str | Path, codec: str = "lossless") -> Path:
    """wm-collect HDF5 file -> LeRobot v3 directory; the result is re-opened to check it."""
    with open_dataset(h5) as reader:
        contract = EnvContract.from_dataset_attrs(reader.attrs)
        path = write_lerobot(out, reader, contract, reader.attrs, codec)
    try:
        LeRobotReader(path)  # refuses what it could not read back
    except BaseException:
        remove_path(path)  # ours, just written: never leave a dataset no reader takes
        raise
    return path


def import_lerobot(src: str | Path, h5: str | Path, keys: LeRobotKeys | None = None) -> Path:
    """LeRobot v3 directory -> HDF5 file in the `envs.data.hdf5` layout (root attrs from the
    dataset's metadata: the exported ones when we wrote it)."""
    h5 = Path(h5)
    if h5.exists():
        raise DatasetError(f"{h5} already exists; remove it or choose another output")
    reader = LeRobotReader(src, keys)
    dims = {k: reader.shapes[getattr(reader.keys, k)] for k in ("state_key", "action_key")}
    if set(dims.values()) != {7}:
        state, action = reader.keys.state_key, reader.keys.action_key
        raise DatasetError(
            f"{src}: {state} has {dims['state_key']} values and {action} {dims['action_key']}; "
            "the HDF5 layout (envs.data.hdf5) holds 7 of each: train on the directory itself"
        )
    remove_stale_temporaries(h5.parent, f"{h5.name}.parts.tmp.*")  # of killed imports
    parts = h5.with_name(f"{h5.name}.parts.tmp.{os.getpid()}")
    remove_path(parts)
    try:
        for i, episode in enumerate(reader):
            episode.attrs = {  # HDF5 attrs hold scalars and strings; the reader adds the name
                k: json.dumps(v) if isinstance(v, dict | list) else v
                for k, v in episode.attrs.items()
                if k != "name" and v is not None
            }
            write_episode_part(parts, i, episode)
        attrs = {k: reader.attrs[k] for k in ROOT_ATTRS}
        attrs |= {k: reader.attrs[k] for k in ("env_args", "env_revision") if k in reader.attrs}
        attrs["env_contract"] = json.dumps(reader.attrs["env_contract"])
        merge_parts(parts, h5, attrs)
    finally:
        if parts.exists():
            shutil.rmtree(parts, ignore_errors=True)
    return h5
