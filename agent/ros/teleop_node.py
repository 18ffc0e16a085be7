"""A scripted teleoperator for ``wm-ros-sim``: our expert, publishing the command topic.

It stands in for the person (or spacemouse) driving a real arm while ``wm-ros-record`` records
(docs/ros.md, "Rehearsing the robot loop in simulation"). The experts act on privileged state
(the goal position, the cube), which no topic carries, so the node runs a *twin* of the sim's
env in its own process: reset with the same seed and stepped with the same actions, the twin
is where the sim is, and the expert reads it. Each episode is the one ``wm-collect`` would
record at that index (`envs.collect.app.episode_plan`: seed ``seed + k``, expert or random,
noise), so a bag recorded this way imports into the dataset ``wm-collect`` writes, frame for
frame (all but the goal state, which no topic carries: the import takes the last state).

Per episode: reset the twin (and, after the first, the sim through ``wm/sim/reset``), check
that the sim shows the twin's start (goal image and state; a wrong ``seed`` is named), send one
command per control period until the twin's episode ends, stay quiet for one and a half
periods, check that the sim ended where the twin did. The quiet is what the importer needs:
the observation after an episode's last command is the newest one up to one period later, so
a reset sooner would put the reset's frame there. The node exits when its episodes are done.

    python -m agent.ros.teleop_node --ros-args -p episodes:=10 -p policy:=mixed

Parameters: ``env_id`` and ``seed`` (as the sim's), ``episodes``, ``episode_steps`` (0 = the
env's registered length), ``policy``, ``expert_fraction``, ``noise``, ``noise_max`` (as
``wm-collect``'s ``policy.*``, same defaults) and ``min_subscribers`` (subscribers the command
topic must have before the first command: the sim, plus a recorder).
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from agent.ros.messages import COMMAND_QOS, LATCHED_QOS, action_msg, sensor_qos
from agent.ros.safety import decode_image
from envs.collect.app import episode_plan, make_env
from envs.collect.config import PANDA_IDS, CollectConfig, PandaEnvEntry, PolicyConfig
from envs.common.contract import EnvContract
from envs.common.experts import make_policy

START_TIMEOUT_S = 120.0  # the sim and recorder starting on a loaded 2-core machine
SYNC_TIMEOUT_S = 10.0  # the most the sim may take to show an episode's start or end
# After an episode's last command, the importer takes its last observation up to one control
# period later; the sim is reset no sooner than this many periods (half of one for jitter).
QUIET_PERIODS = 1.5
STATE_ATOL = 1e-6  # float32 states sent as float64: equal when the sim followed


class TeleopError(RuntimeError):
    """The sim is not where the twin is (wrong seed, a lost command): the recording is wrong."""


def collect_config(
    env_id: str, seed: int, episodes: int, episode_steps: int, policy: PolicyConfig
) -> CollectConfig:
    """The ``wm-collect`` run whose episodes the teleoperator drives (and so the dataset a bag
    of them imports into): ``env=<env_id> seed=... num_episodes=... policy.*``."""
    if env_id not in PANDA_IDS:
        raise ValueError(f"env_id={env_id!r}: the sim runs the wm/Panda* ids {list(PANDA_IDS)}")
    entry = PandaEnvEntry(id=env_id, task=PANDA_IDS[env_id], max_episode_steps=episode_steps)
    return CollectConfig(env=entry, policy=policy, num_episodes=max(episodes, 1), seed=seed)


class TeleopNode(Node):
    """Drives ``wm-ros-sim`` through wm-collect's episodes; `run` blocks until they are done."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("wm_teleop", **node_kwargs)
        default = PolicyConfig()
        env_id = self.declare_parameter("env_id", "wm/PandaReach-v0").value
        self.episodes = int(self.declare_parameter("episodes", 1).value)
        steps = int(self.declare_parameter("episode_steps", 0).value)
        policy = PolicyConfig(
            name=self.declare_parameter("policy", default.name).value,
            expert_fraction=float(
                self.declare_parameter("expert_fraction", default.expert_fraction).value
            ),
            noise=float(self.declare_parameter("noise", default.noise).value),
            noise_max=float(self.declare_parameter("noise_max", default.noise_max).value),
        )
        self.min_subscribers = int(self.declare_parameter("min_subscribers", 1).value)
        seed = int(self.declare_parameter("seed", 0).value)
        self.cfg = collect_config(env_id, seed, self.episodes, steps, policy)
        self.twin = make_env(self.cfg.env)
        self.period_s = 1.0 / EnvContract.from_env(self.twin).control_hz
        self.command_pub = self.create_publisher(Float64MultiArray, "wm/action", COMMAND_QOS)
        self.reset_client = self.create_client(Trigger, "wm/sim/reset")
        self._lock = threading.Lock()
        self._state: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self.create_subscription(
            Float64MultiArray, "wm/state", self._on_state, sensor_qos("reliable")
        )
        self.create_subscription(Image, "wm/goal_image", self._on_goal, LATCHED_QOS)

    def _on_state(self, msg: Float64MultiArray) -> None:
        with self._lock:
            self._state = np.asarray(msg.data, np.float64)

    def _on_goal(self, msg: Image) -> None:
        pixels = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        with self._lock:
            self._goal = pixels

    def run(self) -> int:
        """Teleoperate every episode; returns the number of commands sent."""
        self._wait(
            lambda: self.command_pub.get_subscription_count() >= self.min_subscribers,
            f"{self.min_subscribers} subscriber(s) on {self.command_pub.topic_name}",
            timeout_s=START_TIMEOUT_S,
        )
        time.sleep(1.0)  # discovery of the remaining topics (a recorder's camera subscription)
        sent = 0
        for index in range(self.episodes):
            plan = episode_plan(self.cfg, index)
            policy = make_policy(plan["policy"], self.twin, noise=plan["noise"], seed=plan["seed"])
            obs, info = self.twin.reset(seed=plan["seed"])
            if index:
                self._reset_sim()
            self._expect(obs["state"], info["goal_pixels"], f"episode {index} start")
            steps, end_state = self._drive(policy, obs, info)
            sent += steps
            self._expect(end_state, None, f"episode {index} end")
            self.get_logger().info(
                f"episode {index}: seed {plan['seed']}, {plan['policy']} "
                f"(noise {plan['noise']:.2f}), {sent} commands so far"
            )
        return sent

    def _drive(
        self, policy: Any, obs: dict[str, Any], info: dict[str, Any]
    ) -> tuple[int, np.ndarray]:
        """One command per control period, on a fixed schedule, until the twin's episode ends;
        returns, no sooner than `QUIET_PERIODS` after the last command, the number of commands
        and the twin's final state."""
        low, high = self.twin.action_space.low, self.twin.action_space.high
        next_time, done, sent = time.monotonic(), False, 0
        while not done:
            # As record_episode does: float32, clipped to the bounds the env executes.
            action = np.clip(np.asarray(policy(obs, info), np.float32), low, high)
            self.command_pub.publish(action_msg(action))
            sent_at = time.monotonic()
            obs, _, terminated, truncated, info = self.twin.step(action)
            done, sent = terminated or truncated, sent + 1
            next_time += self.period_s
            time.sleep(max(0.0, next_time - time.monotonic()))
        # Counted from the publish, not the schedule: the schedule's slot began before the
        # expert's compute, so waiting for it alone leaves less than a period (module docstring).
        time.sleep(max(0.0, sent_at + QUIET_PERIODS * self.period_s - time.monotonic()))
        return sent, obs["state"]

    def _reset_sim(self) -> None:
        if not self.reset_client.wait_for_service(timeout_sec=SYNC_TIMEOUT_S):
            raise TeleopError(f"service {self.reset_client.srv_name} not available")
        future = self.reset_client.call_async(Trigger.Request())
        self._wait(future.done, f"an answer from {self.reset_client.srv_name}")

    def _expect(self, state: np.ndarray, goal: np.ndarray | None, when: str) -> None:
        """Wait until the sim shows the twin's state (and goal image); else name the cause."""

        def matches() -> bool:
            with self._lock:
                seen_state, seen_goal = self._state, self._goal
            if seen_state is None or not np.allclose(seen_state, state, atol=STATE_ATOL):
                return False
            return goal is None or (seen_goal is not None and np.array_equal(seen_goal, goal))

        if not self._wait(matches, when, raise_on_timeout=False):
            raise TeleopError(
                f"{when}: the sim is not where the twin env is (state {self._state} vs "
                f"{np.asarray(state)}). Start wm-ros-sim with the same env_id and seed "
                f"(seed:={self.cfg.seed}) and let nothing else command it"
            )

    def _wait(
        self,
        predicate: Any,
        what: str,
        raise_on_timeout: bool = True,
        timeout_s: float = SYNC_TIMEOUT_S,
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                if raise_on_timeout:
                    raise TeleopError(f"no {what} within {timeout_s:g} s")
                return False
            time.sleep(0.01)
        return True


def main(args: list[str] | None = None) -> None:
    """``python -m agent.ros.teleop_node``; ROS arguments (``--ros-args -p/-r``) pass through."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM ends it like Ctrl-C
    node = TeleopNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        sent = node.run()
        node.get_logger().info(f"teleoperated {node.episodes} episodes, {sent} commands")
    except KeyboardInterrupt:
        pass
    finally:
        node.twin.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
