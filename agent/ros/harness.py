"""Launch the nodes as processes and watch their topics: shared by the tests and ``bench/ros.py``.

Everything runs over real DDS on an isolated domain: :func:`ros_environment` pins the RMW,
a domain id and localhost-only discovery, so parallel runs on one machine do not hear each
other. :class:`NodeProcess` always terminates (then kills) what it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

REPO_ROOT = Path(__file__).resolve().parents[2]


def pick_domain_id(salt: int = 0) -> int:
    """A domain id in 1..100 from the pid, so concurrent runs rarely share one."""
    return 1 + (os.getpid() + salt) % 100


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment for child nodes: Fast DDS, this domain, localhost discovery, lean threads."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])),
    )
    return env


class NodeProcess:
    """One ``python -m <module> --ros-args ...`` child, logging to a file; a context manager."""

    def __init__(
        self,
        module: str,
        ros_args: list[str],
        domain_id: int,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--ros-args", *ros_args],
            cwd=REPO_ROOT,
            env={**ros_environment(domain_id), **(extra_env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own process group: a kill reaches nothing else
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of the child (MB), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as when a robot driver crashes: no goodbye message."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGINT (clean shutdown path), then SIGKILL if it does not exit in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Observer:
    """An in-process node on its own context; records what arrives on the given topics."""

    def __init__(self, domain_id: int, name: str = "wm_observer") -> None:
        os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.received: dict[str, list[tuple[float, Any]]] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # shutdown races end the loop quietly
                if not self.context.ok():
                    return
                raise

    def record(self, msg_type: Any, topic: str, qos: Any = 10) -> None:
        """Keep ``(monotonic time, message)`` for every message on ``topic``."""
        self.received.setdefault(topic, [])

        def store(msg: Any) -> None:
            with self.lock:
                self.received[topic].append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, store, qos)

    def messages(self, topic: str, since: float = -1.0) -> list[tuple[float, Any]]:
        with self.lock:
            return [(t, m) for t, m in self.received[topic] if t >= since]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Poll ``predicate`` until it holds or the timeout passes; returns whether it held."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def call_trigger(self, service: str, timeout_s: float = 10.0) -> bool:
        """Call a ``std_srvs/Trigger`` service; returns its ``success``."""
        from std_srvs.srv import Trigger

        client = self.node.create_client(Trigger, service)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {service} not available")
        future = client.call_async(Trigger.Request())
        if not self.wait_for(future.done, timeout_s):
            raise TimeoutError(f"service {service} did not answer")
        return bool(future.result().success)

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
