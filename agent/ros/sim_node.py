"""``wm-ros-sim``: a ``wm/Panda*`` environment standing in for the robot and its camera.

It speaks the same topics a real cell would: it publishes ``/camera/image_raw`` and
``/wm/state`` at ``camera_rate_hz`` (and right after every step, so a policy never waits a
whole camera period for the result of its command), applies each ``/wm/action`` as one
environment step, publishes the goal image latched (transient local) and the task outcome
(``/wm/success``, ``/wm/distance``, ``/wm/sim/steps``). ``/wm/sim/reset`` starts a new
episode with the next seed. The simulator's success signal is for observers only; the
policy never subscribes to it.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64, Float64MultiArray, UInt32
from std_srvs.srv import Trigger

from agent.ros.messages import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_PUB_QOS,
    image_msg,
    spin,
    state_msg,
)
from agent.ros.safety import MalformedMessage, validate_vector


class SimNode(Node):
    """Runs one env; every received action is exactly one ``env.step``."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("wm_sim", **node_kwargs)
        env_id = self.declare_parameter("env_id", "wm/PandaReach-v0").value
        self.seed = int(self.declare_parameter("seed", 0).value)
        rate_hz = float(self.declare_parameter("camera_rate_hz", 10.0).value)
        self.frame_id = self.declare_parameter("camera_frame", "camera").value
        # The module whose import registers ``env_id``; imported here, not at the top, so the
        # policy node never pulls in MuJoCo through this file.
        env_module = self.declare_parameter("env_module", "envs").value
        if rate_hz <= 0:
            raise ValueError(f"camera_rate_hz must be > 0, got {rate_hz}")
        importlib.import_module(env_module)
        self.env = gym.make(env_id)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_PUB_QOS)
        self.state_pub = self.create_publisher(Float64MultiArray, "wm/state", SENSOR_PUB_QOS)
        self.goal_pub = self.create_publisher(Image, "wm/goal_image", LATCHED_QOS)
        self.success_pub = self.create_publisher(Bool, "wm/success", 10)
        self.distance_pub = self.create_publisher(Float64, "wm/distance", 10)
        self.steps_pub = self.create_publisher(UInt32, "wm/sim/steps", 10)
        self.create_subscription(Float64MultiArray, "wm/action", self._on_action, COMMAND_QOS)
        self.create_service(Trigger, "wm/sim/reset", self._on_reset)
        self.create_timer(1.0 / rate_hz, self._publish_observation)
        self._reset()
        self.get_logger().info(f"simulating {env_id} (seed {self.seed}), camera {rate_hz:.1f} Hz")

    def _reset(self) -> None:
        """New episode: fresh observation, goal image latched for late joiners."""
        self.obs, info = self.env.reset(seed=self.seed)
        self.success, self.distance = (
            bool(info.get("success", False)),
            float(info.get("distance", np.nan)),
        )
        self.steps = 0
        self.goal_pub.publish(
            image_msg(info["goal_pixels"], self.get_clock().now().to_msg(), self.frame_id)
        )
        self._publish_observation()

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.seed += 1
        self._reset()
        response.success, response.message = True, f"episode reset with seed {self.seed}"
        return response

    def _on_action(self, msg: Float64MultiArray) -> None:
        try:
            action = validate_vector(msg.data)
        except MalformedMessage as err:
            self.get_logger().warn(f"dropping action: {err}", throttle_duration_sec=2.0)
            return
        # The env clips to its own bounds too: the sim is as strict as a real controller.
        self.obs, _, _, _, info = self.env.step(action.astype(np.float32))
        self.success, self.distance = bool(info["success"]), float(info["distance"])
        self.steps += 1
        self._publish_observation()

    def _publish_observation(self) -> None:
        """Camera frame, state and outcome, stamped now (the scene is static between steps)."""
        stamp = self.get_clock().now().to_msg()
        self.image_pub.publish(image_msg(self.obs["pixels"], stamp, self.frame_id))
        self.state_pub.publish(state_msg(self.obs["state"]))
        self.success_pub.publish(Bool(data=self.success))
        self.distance_pub.publish(Float64(data=self.distance))
        self.steps_pub.publish(UInt32(data=self.steps))


def main(args: list[str] | None = None) -> None:
    """Entry point of ``wm-ros-sim``; ROS arguments (``--ros-args -p/-r``) pass through."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = SimNode()
    spin(node, SingleThreadedExecutor(), node.env.close)


if __name__ == "__main__":
    main()
