"""The first pass over a bag: every contract topic but the pixels, as per-topic arrays of
times and values, checked (topics present and typed, stamps in order, clocks in sync)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.data.rosbag.bag import Bag, RosbagError, Topics, deserialize, header_stamp_ns
from envs.data.rosbag.messages import IMAGE_TYPES, VECTOR_TYPES, MessageError, decode_image, vector
from envs.data.rosbag.options import ImportOptions
from envs.data.rosbag.resample import COUNTER_TYPES, estimate_control_hz

TOPIC_TYPES = {
    "image": IMAGE_TYPES,
    "state": VECTOR_TYPES,
    "command": VECTOR_TYPES,
    "camera_info": ("sensor_msgs/msg/CameraInfo",),
    "goal_image": IMAGE_TYPES,
    "success": ("std_msgs/msg/Bool",),
    "distance": ("std_msgs/msg/Float64", "std_msgs/msg/Float32"),
}
"""The types each contract topic may have (the episode marker may have any)."""
DIM = 7  # state and action length of the contract (docs/ros.md) and of the HDF5 layout
CLOCK_SKEW_S = 1.0  # camera header stamps further than this from receive times: unsynced clocks


@dataclass
class Stream:
    """One topic's messages in bag order: times (ns, the chosen clock), receive times, values."""

    ns: list[int] = field(default_factory=list)
    recv: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    msgtype: str = ""


def require_topics(bag: Bag, topics: Topics) -> None:
    """The image, state and command topics must be there; every contract topic there must
    have a type we read."""
    have = bag.topics
    required = {"image": topics.image, "state": topics.state, "command": topics.command}
    missing = {role: name for role, name in required.items() if name not in have}
    if missing:
        flags = ", ".join(f"--{role}-topic" for role in missing)
        raise RosbagError(
            f"{bag.path}: no {', '.join(missing.values())} in the bag; it has "
            f"{bag.describe_topics()}; name yours with {flags}"
        )
    for role, types in TOPIC_TYPES.items():
        name = getattr(topics, role)
        if name in have and have[name].msgtype not in types:
            raise RosbagError(
                f"{bag.path}: {name} is {have[name].msgtype}, expected {' or '.join(types)} "
                f"(--{role.replace('_', '-')}-topic names another)"
            )


def read_streams(bag: Bag, opts: ImportOptions) -> dict[str, Stream]:
    """Everything but the pixels: vectors decoded, frames as stamps, goals kept raw."""
    t = opts.topics
    roles = {t.image: "image", t.state: "state", t.command: "command", t.camera_info: "camera_info",
             t.episode: "episode", t.goal_image: "goal", t.success: "success", t.distance: "distance"}  # fmt: skip
    streams: dict[str, Stream] = defaultdict(Stream)
    for topic, msgtype, recv, raw in bag.messages(set(roles)):
        role, stream = roles[topic], streams[roles[topic]]
        stream.msgtype = msgtype
        ns = recv
        if role == "image":
            ns = header_stamp_ns(raw) if opts.clock == "header" else recv
        elif role in ("state", "command"):
            try:
                stream.values.append(vector(deserialize(raw, msgtype), DIM))
            except MessageError as err:
                raise RosbagError(f"{bag.path}: {topic} message {len(stream.ns)}: {err}") from err
        elif role == "goal":
            stream.values.append(raw)
        elif role == "camera_info" or (role == "episode" and msgtype in COUNTER_TYPES):
            stream.values.append(deserialize(raw, msgtype))
        elif role in ("success", "distance"):
            stream.values.append(deserialize(raw, msgtype).data)
        stream.ns.append(ns)
        stream.recv.append(recv)
    for role, topic in (("image", t.image), ("state", t.state), ("command", t.command)):
        _check_monotonic(bag, topic, streams[role], opts.clock if role == "image" else "receive")
        if not streams[role].ns:
            raise RosbagError(
                f"{bag.path}: {topic} has no readable message ({'; '.join(map(str, bag.cuts))})"
            )
    if opts.clock == "header":
        skew = float(np.median(np.subtract(streams["image"].recv, streams["image"].ns))) / 1e9
        if abs(skew) > CLOCK_SKEW_S:
            raise RosbagError(
                f"{bag.path}: {t.image} header stamps are {skew:+.1f} s off the bag's receive times "
                "(the camera's clock is not the recorder's); sync them, or pass --clock receive"
            )
    return streams


def _check_monotonic(bag: Bag, topic: str, stream: Stream, clock: str) -> None:
    ns = np.asarray(stream.ns, np.int64)
    back = np.flatnonzero(np.diff(ns) < 0)
    if len(back):
        k = int(back[0]) + 1
        hint = "; pass --clock receive to order frames by receive time" if clock == "header" else ""
        raise RosbagError(
            f"{bag.path}: {topic}: {clock} stamps go back in time at message {k} "
            f"({ns[k] / 1e9:.6f} s after {ns[k - 1] / 1e9:.6f} s; {len(back)} such messages){hint}"
        )


def control_rate(bag: Bag, command_ns: np.ndarray) -> float:
    try:
        return estimate_control_hz(command_ns)
    except ValueError as err:
        raise RosbagError(f"{bag.path}: {err} with --control-hz") from err


def first_frame(bag: Bag, topic: str) -> tuple[np.ndarray, Any]:
    """The first frame (decoded: an unreadable encoding fails before any work) and its message."""
    for _, msgtype, _, raw in bag.messages({topic}):
        msg = deserialize(raw, msgtype)
        return decode_frame(bag, topic, 0, msg, msgtype), msg
    raise RosbagError(f"{bag.path}: {topic} has no readable message")


def decode_frame(bag: Bag, topic: str, index: int, msg: Any, msgtype: str) -> np.ndarray:
    try:
        return decode_image(msg, msgtype)
    except MessageError as err:
        raise RosbagError(f"{bag.path}: {topic} message {index}: {err}") from err
