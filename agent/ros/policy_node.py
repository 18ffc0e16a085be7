"""``wm-ros-policy``: the planning agent as a ROS 2 node.

Threads, and why:

* one executor thread runs the subscriptions, which only decode, validate and overwrite a
  one-element slot, plus a *guard* timer and the services; it never plans, so the watchdog
  keeps ticking while a slow planner is busy. (A single-threaded executor: rclpy's
  multi-threaded one took in about a fifth as many 640x480 frames per second here.)
* one planner thread owns the policy object (it is not thread-safe): it takes the newest
  image and state, plans, clamps and publishes.

The guard timer publishes zero commands whenever the node must not move the arm (stopped,
no goal yet, or an input stream older than ``watchdog_timeout_s``); the planner thread
publishes only while none of those hold, checked again after planning under the same lock.
Topic and parameter contract: ``docs/ros.md``.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import importlib
import math
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from agent.policy import DeployedPolicy
from agent.ros.messages import COMMAND_QOS, LATCHED_QOS, action_msg, sensor_qos, spin
from agent.ros.safety import (
    LatestSlot,
    MalformedMessage,
    Watchdog,
    command_settings,
    decode_image,
    resize_image,
    twist_from_action,
    validate_vector,
)
from configs.cli import one_line_errors


def load_policy(factory: str, checkpoint: str, planner: str, device: str) -> DeployedPolicy:
    """Build the policy from ``"module:callable"`` (default ``agent.factory:load_agent``).

    A dotted factory keeps the node independent of how a policy is built, so a user can
    plug in their own (or a dry-run stand-in) without editing this file.
    """
    if not checkpoint and factory == "agent.factory:load_agent":
        raise ValueError("no checkpoint: pass --ros-args -p checkpoint:=<checkpoint directory>")
    module_name, _, attr = factory.partition(":")
    if not attr:
        raise ValueError(
            f"policy_factory must look like 'package.module:callable', got {factory!r}"
        )
    build = getattr(importlib.import_module(module_name), attr)
    return build(checkpoint, planner=planner, device=device)


def read_stat(stats: Any, key: str, default: float) -> float:
    """Read one figure from the policy's stats, whether a dataclass or a dict."""
    value = stats.get(key, default) if isinstance(stats, dict) else getattr(stats, key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _stat_text(stats: Any, key: str) -> str:
    """A text field of the policy's stats ("" when absent)."""
    value = stats.get(key, "") if isinstance(stats, dict) else getattr(stats, key, "")
    return str(value or "")


class PolicyNode(Node):
    """Subscribes to camera, state and goal; publishes clamped commands and diagnostics."""

    def __init__(self, policy: DeployedPolicy | None = None, **node_kwargs: Any) -> None:
        super().__init__("wm_policy", **node_kwargs)
        p = self._declare_parameters()
        self.policy = policy or load_policy(
            p["policy_factory"], p["checkpoint"], p["planner"], p["device"]
        )
        rate_hz, self.limits = command_settings(self.policy, p)
        self.control_period_s = 1.0 / rate_hz
        self.base_frame = p["base_frame"]
        self.watchdog = Watchdog(p["watchdog_timeout_s"])
        self._lock = threading.Lock()  # guards watchdog, running flag and the publish decision
        self._running = p["autostart"]
        self._reset_pending = True
        self.image, self.state, self.goal = LatestSlot(), LatestSlot(), LatestSlot()
        self.counters = {
            "images": 0,
            "dropped_images": 0,
            "dropped_states": 0,
            "commands": 0,
            "clamped": 0,
        }
        self._last_plan = {
            "act_ms": math.nan,
            "plan_ms": math.nan,
            "energy": math.nan,
            "image_to_command_ms": math.nan,
        }
        self._policy_error = ""  # non-empty: the last command was a fallback zero (ERROR status)

        sensors_qos = sensor_qos(p["sensor_reliability"])
        self.create_subscription(Image, "camera/image_raw", self._on_image, sensors_qos)
        self.create_subscription(Float64MultiArray, "wm/state", self._on_state, sensors_qos)
        self.create_subscription(Image, "wm/goal_image", self._on_goal, LATCHED_QOS)
        self.action_pub = self.create_publisher(Float64MultiArray, "wm/action", COMMAND_QOS)
        self.twist_pub = self.create_publisher(TwistStamped, "wm/twist", COMMAND_QOS)
        self.status_pub = self.create_publisher(DiagnosticArray, "wm/status", 10)
        self.create_service(Trigger, "wm/start", self._on_start)
        self.create_service(Trigger, "wm/stop", self._on_stop)
        self.create_timer(self.control_period_s, self._guard)
        self.create_timer(1.0 / p["status_rate_hz"], self._publish_status)

        self._shutdown, self._new_image = threading.Event(), threading.Event()
        self._frame_lag_s = math.nan
        self._planner_thread = threading.Thread(
            target=self._plan_loop, name="wm_planner", daemon=True
        )
        self._planner_thread.start()
        self.get_logger().info(
            f"policy ready: image {self.policy.image_size}px, {rate_hz:.1f} Hz, "
            f"watchdog {p['watchdog_timeout_s']:.2f} s, running={self._running}"
        )

    def _declare_parameters(self) -> dict[str, Any]:
        """Declare every parameter with its default; returns their values by name."""
        defaults: dict[str, Any] = {
            "checkpoint": "",
            "planner": "cem",
            "device": "cpu",
            "policy_factory": "agent.factory:load_agent",
            "control_rate_hz": 0.0,  # 0: the rate the checkpoint was trained at
            "watchdog_timeout_s": 0.5,
            "status_rate_hz": 2.0,
            "autostart": True,
            "base_frame": "panda_link0",
            "sensor_reliability": "reliable",
        }
        values = {
            name: self.declare_parameter(name, default).value for name, default in defaults.items()
        }
        # Empty by default = the bounds and workspace of the checkpoint's env contract.
        for name in ("action_low", "action_high", "workspace_low", "workspace_high"):
            values[name] = list(
                self.declare_parameter(name, Parameter.Type.DOUBLE_ARRAY).value or []
            )
        return values

    # ----- subscriptions: decode, validate, overwrite the slot; never plan here -----

    def _on_image(self, msg: Image) -> None:
        try:
            pixels = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        except MalformedMessage as err:
            self.counters["dropped_images"] += 1
            self.get_logger().warning(f"dropping camera image: {err}", throttle_duration_sec=2.0)
            return
        now, ros_now = time.monotonic(), self._ros_seconds()
        # Capture time on this node's clock; drivers that leave the stamp empty get receipt time.
        captured = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec or ros_now
        self._frame_lag_s = ros_now - captured
        if not -0.5 < self._frame_lag_s < 1.0:
            self.get_logger().warning(
                f"camera stamp is {self._frame_lag_s:+.2f} s off this node's clock; frames are "
                "used only if stamped after the previous command, so sync the clocks",
                throttle_duration_sec=5.0,
            )
        self.image.put((pixels, captured), now)
        self.counters["images"] += 1
        self._new_image.set()
        with self._lock:
            self.watchdog.feed("image", now)

    def _on_state(self, msg: Float64MultiArray) -> None:
        try:
            state = validate_vector(msg.data)
        except MalformedMessage as err:
            self.counters["dropped_states"] += 1
            self.get_logger().warning(f"dropping state: {err}", throttle_duration_sec=2.0)
            return
        now = time.monotonic()
        self.state.put(state, now)
        with self._lock:
            self.watchdog.feed("state", now)

    def _on_goal(self, msg: Image) -> None:
        try:
            pixels = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        except MalformedMessage as err:
            self.get_logger().error(f"dropping goal image: {err}")
            return
        self.goal.put(resize_image(pixels, self.policy.image_size), time.monotonic())
        self.get_logger().info(f"new goal image {msg.width}x{msg.height}")

    # ----- services -----

    def _on_start(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._running, self._reset_pending = True, True
        response.success, response.message = True, "started"
        return response

    def _on_stop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._running = False
            self._publish(np.zeros(7))
        response.success, response.message = True, "stopped; publishing zero commands"
        return response

    # ----- control -----

    def _blocker(self, now: float) -> str | None:
        """Why the arm must not move right now, or None. Call with ``self._lock`` held."""
        if not self._running:
            return "stopped"
        stale = self.watchdog.stale_streams(now)
        if stale:
            return "no fresh " + " and ".join(stale)
        if self.goal.get()[0] == 0:
            return "waiting for a goal image"
        return None

    def _guard(self) -> None:
        """Control-rate timer: zero commands while blocked; logs watchdog transitions once."""
        now = time.monotonic()
        with self._lock:
            event = self.watchdog.update(now)
            reason = self._blocker(now)
            if reason is not None:
                self._publish(np.zeros(7))
            if event == "recovered":
                self._reset_pending = True  # the warm start belongs to the old data
        if event == "tripped":
            self.get_logger().warning(
                f"watchdog: {reason}; publishing zero commands until data returns"
            )
        elif event == "recovered":
            self.get_logger().info("watchdog: image and state fresh; commanding")

    def _plan_loop(self) -> None:
        """Planner thread: at most one plan per control period, each on a frame newer than
        the previous command, so the policy never re-plans on an image that predates the
        motion it already commanded; it plans as soon as such a frame arrives."""
        goal_seq_used = 0
        last_command_s, next_allowed_t = -math.inf, 0.0  # ROS time (s), monotonic (s)
        while not self._shutdown.is_set():
            self._shutdown.wait(max(0.0, next_allowed_t - time.monotonic()))  # rate limit
            self._new_image.clear()
            seq, frame, t_received = self.image.get()
            # Header stamps, not receipt times: a frame captured just before the command but
            # delivered after it must not be mistaken for the command's result.
            if seq == 0 or not frame[1] > last_command_s:
                self._new_image.wait(0.1)
                continue
            pixels, captured = frame
            goal_seq, goal, _ = self.goal.get()
            _, state, _ = self.state.get()
            with self._lock:
                if self._blocker(time.monotonic()) is not None:
                    last_command_s = captured  # the guard timer holds the arm; wait for new data
                    continue
                reset, self._reset_pending = self._reset_pending, False
            t0 = time.monotonic()
            next_allowed_t = t0 + self.control_period_s
            try:
                if goal_seq != goal_seq_used:
                    self.policy.set_goal(goal)
                    goal_seq_used, reset = goal_seq, True
                if reset:
                    self.policy.reset()
                action = self.policy.act(resize_image(pixels, self.policy.image_size), state)
                error = _stat_text(getattr(self.policy, "stats", None), "error")
            except Exception as err:  # a planner bug must stop the arm, not kill the node
                action, error = np.zeros(7), f"policy failed: {err!r}"
            if error:  # the agent already holds still; make the safe output explicit
                action = np.zeros(7)
                self.get_logger().error(f"{error}; holding still", throttle_duration_sec=2.0)
            self._policy_error = error
            self._command(action, 1e3 * (time.monotonic() - t0), t_received)
            last_command_s = self._ros_seconds()

    def _ros_seconds(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _command(self, action: np.ndarray, plan_ms: float, t_received: float) -> None:
        """Clamp against the newest state and publish, unless the node became blocked meanwhile."""
        _, state, _ = self.state.get()
        safe = self.limits.clamp(action, state)
        with self._lock:
            if self._blocker(time.monotonic()) is not None:
                return
            self._publish(safe)
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        if raw.shape != safe.shape or not np.allclose(raw, safe):
            self.counters["clamped"] += 1
        self.counters["commands"] += 1
        stats = getattr(self.policy, "stats", None)
        self._last_plan = {
            "act_ms": plan_ms,  # wall time of policy.act, measured here
            "plan_ms": read_stat(stats, "plan_ms", plan_ms),  # as the policy reports it
            "energy": read_stat(stats, "energy", math.nan),
            "image_to_command_ms": 1e3 * (time.monotonic() - t_received),
        }

    def _publish(self, action: np.ndarray) -> None:
        """Send one command on both outputs (the delta and the equivalent twist)."""
        self.action_pub.publish(action_msg(action))
        twist = TwistStamped()
        twist.header.stamp = self.get_clock().now().to_msg()
        twist.header.frame_id = self.base_frame
        linear, angular = twist_from_action(action, self.control_period_s)
        twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = map(float, linear)
        twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = map(float, angular)
        self.twist_pub.publish(twist)

    def _publish_status(self) -> None:
        """DiagnosticArray with the planning latency, energy, data ages and drop counters."""
        now = time.monotonic()
        with self._lock:
            reason = self._blocker(now)
            ages = self.watchdog.ages(now)
        status = DiagnosticStatus(name="wm_policy", hardware_id="wm_policy")
        status.level = DiagnosticStatus.OK if reason is None else DiagnosticStatus.WARN
        status.message = "running" if reason is None else reason
        if reason is None and self._policy_error:  # commanding, but only safe zeros
            status.level, status.message = DiagnosticStatus.ERROR, self._policy_error
        values = {
            "goal_received": self.goal.get()[0] > 0,
            "error": self._policy_error,
            **self._last_plan,
            "frame_lag_s": self._frame_lag_s,
            **{f"{k}_age_s": v for k, v in ages.items()},
            **self.counters,
        }
        status.values = [
            KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v))
            for k, v in values.items()
        ]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(msg)

    def close(self) -> None:
        """Stop the planner thread and leave the arm with a zero command."""
        self._shutdown.set()
        self._planner_thread.join(timeout=5.0)
        with self._lock:
            self._running = False
            self._publish(np.zeros(7))
        # The process may exit right after this: make sure reliable subscribers got the zero.
        for pub in (self.action_pub, self.twist_pub):
            pub.wait_for_all_acked(Duration(seconds=1.0))


@one_line_errors("wm-ros-policy")
def main(args: list[str] | None = None) -> None:
    """Entry point of ``wm-ros-policy``; ROS arguments (``--ros-args -p/-r``) pass through. A
    policy that cannot load (a missing or corrupt checkpoint) is one line, exit status 1."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = PolicyNode()
    except BaseException:
        rclpy.try_shutdown()
        raise
    spin(node, SingleThreadedExecutor(), node.close)


if __name__ == "__main__":
    main()
