"""LeRobotDataset v3 directories, read and written with pyarrow and PyAV (LeRobot's own
package pins older torch / numpy than this project, so it is not a dependency).

    python -m envs.data.lerobot export data/push.h5 data/push_lerobot     # HDF5 -> LeRobot
    python -m envs.data.lerobot import data/push_lerobot data/push_back.h5
    wm-train data=[data/push_lerobot] lerobot.camera_key=observation.image

`envs.data.open_dataset` opens a directory with `LeRobotReader`, so wm-train, the latent
cache and the evaluation's dataset goals read either format.
"""

from envs.data.lerobot.layout import (
    LeRobotKeys,
    LeRobotSource,
    content_hash,
    dataset_sources,
    is_lerobot_dir,
)
from envs.data.lerobot.read import LeRobotReader

__all__ = [
    "LeRobotKeys",
    "LeRobotReader",
    "LeRobotSource",
    "content_hash",
    "dataset_sources",
    "is_lerobot_dir",
]
