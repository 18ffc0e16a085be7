"""Message shapes, QoS profiles and the spin loop shared by both nodes, the tests and the bench.

Keeping the wire format in one place means the sim, the policy, the tests and the benchmark
cannot drift apart: a 7-D vector is always a labelled ``Float64MultiArray``, an image is
always ``rgb8`` without row padding.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, MultiArrayDimension


def sensor_qos(reliability: str) -> QoSProfile:
    """Depth-1 keep-last QoS for camera and state: only the newest sample matters.

    ``"reliable"`` (default) because Fast DDS drops large best-effort samples between
    processes (a 640x480 frame is ~15 UDP fragments; lose one, lose the frame): measured,
    about a third of VGA frames lost at 15 Hz. Keep-last 1 still bounds memory and never
    blocks the publisher. ``"best_effort"`` matches cameras that publish with the sensor-data
    profile (a reliable subscriber does not connect to a best-effort publisher).
    """
    policies = {
        "reliable": ReliabilityPolicy.RELIABLE,
        "best_effort": ReliabilityPolicy.BEST_EFFORT,
    }
    if reliability not in policies:
        raise ValueError(
            f"sensor_reliability must be 'reliable' or 'best_effort', got {reliability!r}"
        )
    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=policies[reliability])


# The goal is published once; transient-local lets a policy started later still receive it.
LATCHED_QOS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

# Camera and state are sent reliable so both reliable and best-effort subscribers connect.
SENSOR_PUB_QOS = sensor_qos("reliable")


def image_msg(pixels: np.ndarray, stamp: Any, frame_id: str) -> Image:
    """``uint8 (H, W, 3)`` RGB -> ``sensor_msgs/Image`` (rgb8, no row padding)."""
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, int(pixels.shape[1]) * 3
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()  # bytes: the fast path
    return msg


def state_msg(state: np.ndarray) -> Float64MultiArray:
    """7-D end-effector state (xyz m, Euler xyz rad, gripper) with a labelled layout."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="ee_state", size=7, stride=7)]
    msg.data = [float(v) for v in state]
    return msg


def action_msg(action: np.ndarray) -> Float64MultiArray:
    """Wrap a 7-D end-effector delta with a labelled layout."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="ee_delta", size=7, stride=7)]
    msg.data = [float(v) for v in action]
    return msg


def spin(node: Node, executor: Executor, on_exit: Callable[[], None]) -> None:
    """Spin until SIGINT/SIGTERM, run ``on_exit`` while the context still works, then shut down.

    rclpy's own signal handler would shut the context down first, so a node could not send
    its last zero command; we take SIGTERM ourselves and turn both signals into
    ``KeyboardInterrupt``, which the short spin timeout delivers promptly.
    """

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        on_exit()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
