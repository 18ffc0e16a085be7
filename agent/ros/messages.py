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

# Depth 1, best effort: a sensor stream where only the newest sample matters. Best effort
# subscribers also accept reliable publishers, so any camera driver connects.
SENSOR_QOS = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT
)
# The goal is published once; transient-local lets a policy started later still receive it.
LATCHED_QOS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

# Camera and state are sent reliable so the policy's best-effort subscription and a
# reliable one (e.g. ``ros2 topic echo``) both connect; depth 1 keeps only the newest.
SENSOR_PUB_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


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
