"""ROS 2 bridge benchmark: image-in to command-out latency, and the camera rate the node keeps up with.

Runs ``wm-ros-policy`` as a separate process over real Fast DDS (isolated domain, localhost
discovery) and drives it from this process:

* **latency**: publish one camera frame (with a fresh state), wait for the next
  ``/wm/action``; the time between is what a robot sees (DDS both ways, decode, resize,
  ``policy.act``, clamp, publish). Frames are spaced so the rate limit never delays them.
* **camera rate**: publish 640x480 rgb8 frames at increasing rates; per rate, the frames the
  node actually took in (its ``images`` counter), its resident memory before/after, and the
  command rate. "Keeps up" = takes in >= 90 % of the frames, commands at >= 80 % of
  min(control rate, camera rate), and RSS grows < 20 MB; above that rate the depth-1 queue
  drops frames (bounded memory by design) and the node plans on the newest.

Each is run with Fast DDS's default transports and with ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``
(shared memory + TCP for large samples; the ROS 2 docs' advice for camera streams).

Usage::

    python -m bench ros                      # the bridge with a stand-in policy
    python -m bench ros --checkpoint DIR     # ... plus latency with the learned agent
    python -m bench ros --checkpoint DIR --agent-only   # only add the agent section

Writes ``bench/results/ros.json`` and ``bench/results/ros.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import store
from envs.common.config import PandaEnvConfig

RESULTS = store.RESULTS
STATE = np.array([0.5, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0])


class StandInPolicy:
    """Constant small action: measures the bridge itself, with planning cost ~0. Trained on no
    env (no contract), so the node is given the rate and the Panda's workspace explicitly."""

    image_size = 64
    action_low, action_high = (np.array(b) for b in PandaEnvConfig().action_bounds())
    contract = None
    stats: dict[str, float] = {"plan_ms": 0.0, "energy": 0.0}

    def set_goal(self, goal_pixels: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        return np.array([0.01, 0, 0, 0, 0, 0, 0])


def make_standin(checkpoint: str, planner: str = "", device: str = "cpu") -> StandInPolicy:
    """Factory with the ``agent.factory.load_agent`` signature."""
    return StandInPolicy()


class Driver:
    """Publishes camera/state/goal into the node under test and reads its outputs."""

    def __init__(self, obs: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float64MultiArray

        from agent.ros.messages import LATCHED_QOS

        self.obs, node = obs, obs.node
        obs.record(Float64MultiArray, "/wm/action", 100)
        obs.record(DiagnosticArray, "/wm/status", 100)
        self.image_pub = node.create_publisher(Image, "/camera/image_raw", 1)
        self.state_pub = node.create_publisher(Float64MultiArray, "/wm/state", 1)
        self.goal_pub = node.create_publisher(Image, "/wm/goal_image", LATCHED_QOS)

    def send(self, frame: np.ndarray) -> bool:
        """One state + one frame; False when the middleware refused the frame (queue full)."""
        from rclpy._rclpy_pybind11 import RCLError

        from agent.ros.messages import image_msg, state_msg

        self.state_pub.publish(state_msg(STATE))
        try:
            self.image_pub.publish(
                image_msg(frame, self.obs.node.get_clock().now().to_msg(), "camera")
            )
        except RCLError:
            return False
        return True

    def status(self) -> dict[str, str]:
        msgs = self.obs.messages("/wm/status")
        if not msgs:
            return {}
        s = msgs[-1][1].status[0]
        return {"message": s.message, **{kv.key: kv.value for kv in s.values}}

    def settle(self, frame: np.ndarray, timeout_s: float = 60.0) -> None:
        """Goal in, data flowing, node commanding."""
        self.goal_pub.publish(_image(frame, self.obs))

        def running() -> bool:
            self.send(frame)
            time.sleep(0.05)
            return self.status().get("message") == "running"

        if not self.obs.wait_for(running, timeout_s):
            raise RuntimeError(f"policy node never started commanding: {self.status()}")


def _image(frame: np.ndarray, obs: Any) -> Any:
    from agent.ros.messages import image_msg

    return image_msg(frame, obs.node.get_clock().now().to_msg(), "camera")


def measure_latency(drv: Driver, frame: np.ndarray, n: int, gap_s: float) -> dict[str, float]:
    """Ping-pong ``n`` frames; percentiles of publish -> next command received (ms)."""
    lat = []
    for _ in range(n):
        time.sleep(gap_s)
        t0 = time.monotonic()
        drv.send(frame)
        if drv.obs.wait_for(lambda t0=t0: bool(drv.obs.messages("/wm/action", since=t0)), 30.0):
            lat.append(1e3 * (drv.obs.messages("/wm/action", since=t0)[0][0] - t0))
    arr = np.array(lat)
    return {
        "frames": n,
        "answered": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "max_ms": float(arr.max()),
    }


def measure_rate(drv: Driver, proc: Any, frame: np.ndarray, rate_hz: float, seconds: float, control_hz: float) -> dict[str, float]:  # fmt: skip
    """Publish at ``rate_hz`` (0 = as fast as possible) for ``seconds``; what the node kept."""
    before = drv.status()
    rss0, t0 = proc.rss_mb(), time.monotonic()
    sent, refused, period = 0, 0, (1.0 / rate_hz if rate_hz > 0 else 0.0)
    while time.monotonic() < t0 + seconds:
        refused += not drv.send(frame)
        sent += 1
        if period:
            time.sleep(max(0.0, t0 + sent * period - time.monotonic()))
    elapsed = time.monotonic() - t0
    time.sleep(0.3)  # one status period for the counters
    rss1 = proc.rss_mb()
    after = drv.status()
    taken, commands = (int(after[k]) - int(before[k]) for k in ("images", "commands"))
    result = {
        "target_hz": rate_hz,
        "sent_hz": (sent - refused) / elapsed,
        "refused_by_publisher": refused,
        "taken_hz": taken / elapsed,
        "command_hz": commands / elapsed,
        "rss_start_mb": rss0,
        "rss_growth_mb": rss1 - rss0,
    }
    result["keeps_up"] = bool(
        result["taken_hz"] >= 0.9 * result["sent_hz"]
        and result["command_hz"] >= 0.8 * min(control_hz, result["sent_hz"])
        and result["rss_growth_mb"] < 20
    )
    return result


def run(args: argparse.Namespace, transports: str) -> dict[str, Any]:
    """Launch the node with one Fast DDS transport setting, measure, stop it."""
    from agent.ros.harness import NodeProcess, Observer, pick_domain_id

    # Read by Fast DDS when a participant is created: this process's and the child's.
    if transports == "default":
        os.environ.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    else:
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = transports
    domain = pick_domain_id(salt=77 + len(transports))
    policy = ["-p", "policy_factory:=bench.ros:make_standin"]
    box = PandaEnvConfig()
    ros_args = [*policy, "-p", f"control_rate_hz:={args.control_hz}", "-p", "status_rate_hz:=10.0",
                "-p", f"workspace_low:={list(box.workspace_low)}",
                "-p", f"workspace_high:={list(box.workspace_high)}"]  # fmt: skip
    obs = Observer(domain, "wm_bench")
    proc = NodeProcess("agent.ros.policy_node", ros_args, domain, Path(args.log))
    try:
        drv = Driver(obs)
        rng = np.random.default_rng(0)
        vga = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        small = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        drv.settle(vga)
        gap = 1.2 / args.control_hz  # the rate limit never holds a ping back
        latency = {
            "64x64": measure_latency(drv, small, args.pings, gap),
            "640x480": measure_latency(drv, vga, args.pings, gap),
        }
        rates = [measure_rate(drv, proc, vga, r, args.seconds, args.control_hz) for r in args.rates]
        kept = [r["target_hz"] for r in rates if r["keeps_up"] and r["target_hz"] > 0]
        return {
            "latency": latency,
            "camera_rates": rates,
            "max_rate_kept_up_hz": max(kept) if kept else 0.0,
            "max_rss_growth_mb": max(r["rss_growth_mb"] for r in rates),
            "load_average_at_end": os.getloadavg()[0],
        }
    finally:
        proc.stop()
        obs.close()


def run_agent(args: argparse.Namespace) -> dict[str, Any]:
    """Latency with the learned agent in the node: planning dominates, so pings only."""
    from agent.ros.harness import NodeProcess, Observer, pick_domain_id

    os.environ.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    domain = pick_domain_id(salt=91)
    ros_args = [
        "-p",
        f"checkpoint:={args.checkpoint}",
        "-p",
        f"planner:={args.planner}",
        "-p",
        "status_rate_hz:=10.0",
    ]  # fmt: skip  (rate, bounds and workspace from the checkpoint)
    obs = Observer(domain, "wm_bench_agent")
    # Two torch threads, as on the 2-core CI runner.
    proc = NodeProcess("agent.ros.policy_node", ros_args, domain, Path(args.log), {"OMP_NUM_THREADS": "2"})  # fmt: skip
    try:
        drv = Driver(obs)
        frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        drv.settle(frame, timeout_s=180)
        latency = measure_latency(drv, frame, args.agent_pings, gap_s=0.25)
        st = drv.status()
        return {
            "policy": f"agent.factory.load_agent({args.checkpoint!r}, planner={args.planner!r}), cpu",
            "latency_64x64": latency,
            "last_plan_ms": float(st.get("plan_ms", "nan")),
            "last_act_ms": float(st.get("act_ms", "nan")),
            "command": store.command(),
            "provenance": store.provenance(checkpoint=args.checkpoint),
        }
    finally:
        proc.stop()
        obs.close()


def to_markdown(res: dict[str, Any]) -> str:
    """The results as the table committed next to the JSON."""
    lines = [
        "# ROS 2 bridge benchmark",
        "",
        f"Policy: {res['policy']}. Control rate {res['control_hz']:.0f} Hz. {res['machine']}.",
        f"Command: `{res['command']}` (method in the module docstring of `bench/ros.py`).",
        "Latency = publish a frame (with a fresh state) -> the next `/wm/action` received, both",
        "over DDS between processes. Camera rate: 640x480 rgb8 frames at the target rate, 4 s each.",
    ]
    for name, cfg in res["configs"].items():
        label = "default transports" if name == "default" else f"FASTDDS_BUILTIN_TRANSPORTS={name}"
        lines += [
            "",
            f"## rmw_fastrtps_cpp, {label} (load average {cfg['load_average_at_end']:.1f} at the end)",
            "",
            "| frame | p50 ms | p95 ms | max ms | answered |",
            "|---|---|---|---|---|",
        ]
        for size, r in cfg["latency"].items():
            lines.append(f"| {size} rgb8 | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['answered']}/{r['frames']} |")  # fmt: skip
        lines += [
            "",
            "| camera target Hz | sent Hz | taken in Hz | commands Hz | RSS start MB | RSS growth MB | keeps up |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in cfg["camera_rates"]:
            target = "max" if r["target_hz"] == 0 else f"{r['target_hz']:.0f}"
            lines.append(
                f"| {target} | {r['sent_hz']:.0f} | {r['taken_hz']:.0f} | {r['command_hz']:.1f} | "
                f"{r['rss_start_mb']:.0f} | {r['rss_growth_mb']:+.1f} | {'yes' if r['keeps_up'] else 'no'} |"
            )
        lines += [
            "",
            f"Highest camera rate kept up with: **{cfg['max_rate_kept_up_hz']:.0f} Hz** at 640x480; "
            f"largest RSS growth over any window: **{cfg['max_rss_growth_mb']:+.1f} MB**.",
        ]
    agent = res.get("agent")
    lines += ["", "## With the learned agent", ""]
    if agent:
        lines += agent_lines(agent)
    else:
        lines += [
            "Not run: no checkpoint given (`--checkpoint DIR --agent-only`, e.g.",
            "`checkpoints/reach_lewm`); the tables above use the stand-in. Agents of retired",
            "checkpoints: archive/ros.md.",
        ]
    lines += [
        "",
        "Above the highest rate the depth-1 subscription drops frames and the node plans on the",
        "newest; memory stays flat at every rate. Figures are from a 2-core machine shared with",
        "other jobs (see the load average), so treat them as lower bounds.",
        "",
    ]
    return "\n".join(lines)


def agent_lines(agent: dict[str, Any]) -> list[str]:
    """The learned agent's latency table (markdown lines)."""
    r = agent["latency_64x64"]
    return [
        f"Policy: {agent['policy']}, control rate 5 Hz, 2 torch threads.",
        "",
        "| frame | p50 ms | p95 ms | max ms | answered | last plan_ms |",
        "|---|---|---|---|---|---|",
        f"| 64x64 rgb8 | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} | "
        f"{r['answered']}/{r['frames']} | {agent['last_plan_ms']:.0f} |",
    ]


def render_archive(data: dict[str, Any]) -> str:
    """archive/ros.md: the agent sections moved out of ros.json (`{"rows": {key: agent}}`)."""
    lines = ["# ROS 2 bridge benchmark: archived learned-agent rows"]
    for key, agent in data["rows"].items():
        lines += ["", f"## {key}", "", *agent_lines(agent)]
    return "\n".join([*lines, *store.archive_notes(data["rows"].values())]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="", help="world-model dir; empty = stand-in policy")
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--control-hz", type=float, default=10.0)
    parser.add_argument("--pings", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[15, 30, 60, 120, 240, 0])
    parser.add_argument("--log", default="/tmp/wm_bench_ros_policy.log")
    parser.add_argument("--transports", nargs="+", default=["default", "LARGE_DATA"])
    parser.add_argument("--out", default=str(RESULTS / "ros"))
    parser.add_argument("--agent-pings", type=int, default=20)
    parser.add_argument(
        "--agent-only", action="store_true", help="keep the stand-in tables of an earlier run"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.agent_only:
        res = json.loads(out.with_suffix(".json").read_text())
    else:
        res = {
            "policy": "stand-in (constant action, no planning): the bridge's own overhead",
            "control_hz": args.control_hz,
            "command": store.command(),
            "provenance": store.provenance(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
            f"Python {platform.python_version()}",
            "configs": {t: run(args, t) for t in args.transports},
        }
    res["agent"] = run_agent(args) if args.checkpoint else None
    store.save(out.name, res, to_markdown, out.parent)
    print(to_markdown(res))
