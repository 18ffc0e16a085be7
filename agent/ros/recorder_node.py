"""``wm-ros-record``: record the contract topics into a standard rosbag2 bag.

Our ROS 2 support is the Kilted wheels from PyPI, which do not ship rosbag2, so a robot set
up that way has no ``ros2 bag record``. This node subscribes to the contract topics
(docs/ros.md) with raw (serialised) messages and writes them unchanged with `rosbags`' writer,
as MCAP or sqlite3: ``ros2 bag info`` and ``python -m envs.data.rosbag`` both read the result.
Each message is stamped with the time its publisher sent it (the DDS source timestamp), where
``ros2 bag record`` stamps the time it arrived. A command then always counts as sent before the
robot reacted to it: the sim steps within a millisecond of receiving a command, and a
receive time can be later than the frame that already shows the command's effect (measured:
the first step of a recording, tests/test_ros_recorder.py). The bag is closed
(``metadata.yaml`` written) on SIGINT or SIGTERM. A recorder that is killed leaves a bag that
the importer still reads up to its last whole record.

Parameters: ``output`` (the bag directory, must not exist; default ``rosbag2_<date>``),
``storage`` (``mcap`` or ``sqlite3``), ``sensor_reliability`` (as for the policy node) and
``extra_topics`` (``"topic:pkg/msg/Type,..."`` for anything beyond the contract).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, Float64, Float64MultiArray, UInt32

from agent.ros.messages import COMMAND_QOS, LATCHED_QOS, sensor_qos, spin

# Relative names, like the sim and policy nodes' (so ``-r __ns:=/arm1`` and remaps apply),
# with the QoS each is published with: sensors keep-last, the goal latched, the rest reliable.
CONTRACT_TOPICS: dict[str, tuple[Any, str]] = {
    "camera/image_raw": (Image, "sensor"),
    "camera/camera_info": (CameraInfo, "sensor"),
    "wm/state": (Float64MultiArray, "sensor"),
    "wm/action": (Float64MultiArray, "command"),
    "wm/twist": (TwistStamped, "command"),
    "wm/goal_image": (Image, "latched"),
    "wm/sim/steps": (UInt32, "command"),
    "wm/success": (Bool, "command"),
    "wm/distance": (Float64, "command"),
}
FLUSH_PERIOD_S = 1.0  # the most a killed recorder loses (see RecorderNode.flush)
RECORD_DEPTH = 50  # a sensor burst waits in the queue instead of being dropped (keep-last 1)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
TYPESTORE = get_typestore(Stores.ROS2_KILTED)  # the message definitions the bag carries


def message_class(type_name: str) -> Any:
    """``sensor_msgs/msg/Image`` -> the rclpy message class."""
    package, _, name = type_name.partition("/msg/")
    if not name:
        raise ValueError(f"message type {type_name!r}: write it as pkg/msg/Type")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def type_name(msg_class: Any) -> str:
    module = msg_class.__module__.split(".")[0]  # sensor_msgs.msg._image -> sensor_msgs
    return f"{module}/msg/{msg_class.__name__}"


class RecorderNode(Node):
    """Writes every message of its topics, serialised as received, into one bag."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("wm_recorder", **node_kwargs)
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S")
        output = self.declare_parameter("output", f"rosbag2_{stamp}").value
        storage = self.declare_parameter("storage", "mcap").value
        reliability = self.declare_parameter("sensor_reliability", "reliable").value
        extra = self.declare_parameter("extra_topics", "").value
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        topics = dict(CONTRACT_TOPICS)
        for item in filter(None, (s.strip() for s in extra.split(","))):
            topic, _, name = item.rpartition(":")
            topics[topic] = (message_class(name), "command")
        qos = {
            "sensor": QoSProfile(
                depth=RECORD_DEPTH, reliability=sensor_qos(reliability).reliability
            ),
            "command": COMMAND_QOS,
            "latched": LATCHED_QOS,
        }
        self.path = Path(output)
        self.writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self.writer.open()
        self.count = 0
        for topic, (msg_class, kind) in topics.items():
            name = self.resolve_topic_name(topic)  # namespace and remaps applied: /arm1/wm/state
            conn = self.writer.add_connection(name, type_name(msg_class), typestore=TYPESTORE)
            self.create_subscription(msg_class, topic, self._writer_for(conn), qos[kind], raw=True)
        self.create_timer(FLUSH_PERIOD_S, self.flush)
        self.get_logger().info(f"recording {len(topics)} topics into {self.path} ({storage})")

    def _writer_for(self, conn: Any) -> Any:
        def write(raw: bytes, info: Any) -> None:
            # When the publisher sent it (see the module docstring), else when it arrived.
            stamp = int(info["source_timestamp"]) or int(info["received_timestamp"])
            self.writer.write(conn, stamp, raw)
            self.count += 1

        return write

    def flush(self) -> None:
        """Put what was received on disk, so that a killed recorder loses at most one flush
        period. rosbags' writers hold it back until they close: sqlite3 keeps one open
        transaction, MCAP a chunk of up to 1 MiB in memory. This reaches into their storage
        objects (rosbags 0.11), and does nothing on any other version."""
        storage = getattr(self.writer, "storage", None)
        if hasattr(storage, "conn"):  # sqlite3
            storage.conn.commit()
        elif hasattr(storage, "close_chunk") and getattr(storage.chunk, "msgs", None):  # MCAP
            storage.close_chunk()
            storage.bio.flush()

    def close(self) -> None:
        """Write ``metadata.yaml``: the bag is complete and ``ros2 bag info`` reads it."""
        self.writer.close()
        self.get_logger().info(f"wrote {self.count} messages to {self.path}")


def main(args: list[str] | None = None) -> None:
    """Entry point of ``wm-ros-record``; ROS arguments (``--ros-args -p/-r``) pass through."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = RecorderNode()
    spin(node, SingleThreadedExecutor(), node.close)


if __name__ == "__main__":
    main()
