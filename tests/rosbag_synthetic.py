"""Synthetic rosbag2 bags written with `rosbags`' own writer, for tests/test_rosbag.py and the
import-speed measurement (``python -m tests.rosbag_synthetic``).

A scripted "robot": the camera and state stream at their own rates, commands at the control
rate, an optional ``/wm/sim/steps`` counter as the episode marker. Frame k of the bag is
``frame_pixels(k)``, so a test can tell which frame a step picked from its pixels.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TS = get_typestore(Stores.ROS2_KILTED)
T = TS.types
S = 1_000_000_000  # ns per second
T0 = 1_700_000_000 * S  # a wall-clock epoch, as a real recording has


def frame_pixels(k: int, size: int = 16) -> np.ndarray:
    """Frame k's RGB pixels: a gradient whose offset is k (distinct for k < 256)."""
    base = np.arange(size * size * 3, dtype=np.int64).reshape(size, size, 3)
    return ((base + 7 * k) % 256).astype(np.uint8)


def state_of(k: int) -> np.ndarray:
    return np.array([k, k + 0.5, 0.1, 0.0, 0.0, 0.0, 1.0])


def action_of(k: int) -> np.ndarray:
    return np.array([0.01 * ((k % 7) - 3), 0.005, -0.005, 0.0, 0.0, 0.0, 0.0]) * (
        1 if k % 2 else -1
    )


def header(ns: int, frame_id: str = "camera") -> object:
    stamp = T["builtin_interfaces/msg/Time"](sec=ns // S, nanosec=ns % S)
    return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image(ns: int, pixels: np.ndarray, encoding: str = "rgb8") -> object:
    """``sensor_msgs/Image`` of RGB pixels in ``encoding`` (rgb8, bgr8, mono8 or anything)."""
    data = pixels
    if encoding == "bgr8":
        data = pixels[..., ::-1]
    elif encoding == "mono8":
        data = pixels[..., 0]
    data = np.ascontiguousarray(data).reshape(-1)
    h, w = pixels.shape[:2]
    return T["sensor_msgs/msg/Image"](
        header=header(ns), height=h, width=w, encoding=encoding, is_bigendian=0,
        step=data.size // h, data=data,
    )  # fmt: skip


def vector(values: Sequence[float], label: str) -> object:
    dim = T["std_msgs/msg/MultiArrayDimension"](label=label, size=len(values), stride=len(values))
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
    return T["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.asarray(values, np.float64))


def camera_info(ns: int, height: int, width: int, fy: float) -> object:
    k = np.array([fy, 0, width / 2, 0, fy, height / 2, 0, 0, 1], np.float64)
    roi = T["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return T["sensor_msgs/msg/CameraInfo"](
        header=header(ns), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0, roi=roi,
    )  # fmt: skip


@dataclass
class Recording:
    """What a scripted robot sent, in time order: ``(topic, receive ns, message)``."""

    messages: list[tuple[str, int, object]] = field(default_factory=list)

    def add(self, topic: str, ns: int, msg: object) -> None:
        self.messages.append((topic, ns, msg))

    def write(self, path: Path, storage: str = "mcap") -> Path:
        """Write as a rosbag2 directory with rosbags' writer (``mcap`` or ``sqlite3``)."""
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        with Writer(path, version=9, storage_plugin=plugin) as writer:
            conns = {}
            for topic, ns, msg in sorted(self.messages, key=lambda m: m[1]):
                if topic not in conns:
                    conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=TS)
                writer.write(conns[topic], ns, TS.serialize_cdr(msg, msg.__msgtype__))
        return path


def scripted(
    episodes: int = 2,
    steps: int = 5,
    control_hz: float = 5.0,
    camera_hz: float = 5.0,
    size: int = 16,
    marker: bool = True,
    encoding: str = "rgb8",
    camera_offset_s: float = -0.01,
    gap_s: float = 2.0,
    drop_frames: Sequence[int] = (),
) -> tuple[Recording, list[dict]]:
    """A scripted run and, per episode, what an import must give when nothing is dropped:
    ``frames`` (indices into the camera stream per observation), ``states``, ``actions``.

    Each episode: commands at ``control_hz`` from its start; the camera at ``camera_hz``
    offset by ``camera_offset_s`` (negative: a frame just before each command); a state with
    every frame; episodes ``gap_s`` apart; the marker counter reset at each start."""
    rec = Recording()
    period, cam_period = int(S / control_hz), int(S / camera_hz)
    frame_k = state_k = action_k = 0
    expected = []
    t_start = T0
    for _ in range(episodes):
        t_end = t_start + steps * period
        if marker:
            rec.add("/wm/sim/steps", t_start - period // 2, T["std_msgs/msg/UInt32"](data=0))
        cam_times = np.arange(t_start + int(camera_offset_s * S), t_end + period, cam_period)
        frames_here, ks = [], []
        for t in cam_times:
            if frame_k not in drop_frames:
                rec.add(
                    "/camera/image_raw",
                    int(t),
                    image(int(t), frame_pixels(frame_k, size), encoding),
                )
                rec.add("/wm/state", int(t), vector(state_of(state_k), "ee_state"))
                frames_here.append(int(t))
                ks.append(frame_k)
            frame_k += 1
            state_k += 1
        cmd_times = t_start + period * np.arange(steps)
        obs_times = np.append(cmd_times, cmd_times[-1] + period)
        picked = [ks[int(np.searchsorted(frames_here, t, side="right")) - 1] for t in obs_times]
        actions = []
        for t in cmd_times:
            rec.add("/wm/action", int(t), vector(action_of(action_k), "ee_delta"))
            actions.append(action_of(action_k))
            action_k += 1
        if marker:
            for j, t in enumerate(cmd_times):
                rec.add("/wm/sim/steps", int(t) + 1000, T["std_msgs/msg/UInt32"](data=j + 1))
        expected.append({"frames": picked, "actions": np.array(actions)})
        t_start = t_end + int(gap_s * S)
    return rec, expected


def measure_speed(out_dir: Path, seconds: float = 600.0, camera_hz: float = 30.0) -> str:
    """Import speed for a 64 px camera at ``camera_hz`` with 5 Hz control: one line."""
    from envs.data.rosbag import import_bag

    episodes = int(seconds // 7)  # 25 steps (5 s) + 2 s pause each
    rec, _ = scripted(episodes=episodes, steps=25, camera_hz=camera_hz, size=64)
    lines = []
    for storage in ("mcap", "sqlite3"):
        bag = rec.write(out_dir / f"speed_{storage}", storage)
        start = time.perf_counter()
        report = import_bag(bag, out_dir / f"speed_{storage}.h5", _options())
        wall = time.perf_counter() - start
        lines.append(
            f"{storage}: {report.duration_s:.0f} s of robot time ({episodes} episodes, 64 px camera "
            f"at {camera_hz:g} Hz, 5 Hz control) imported in {wall:.1f} s: "
            f"{report.duration_s / wall:.0f}x real time"
        )
    return "\n".join(lines)


def _options() -> object:
    from envs.data.rosbag import ImportOptions

    bound = (0.075, 0.075, 0.075, 0.0, 0.0, 0.0, 1.0)
    return ImportOptions(
        env_id="ros/synthetic", action_low=tuple(-b for b in bound), action_high=bound
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(measure_speed(Path(tmp), *(float(a) for a in sys.argv[1:3])))
