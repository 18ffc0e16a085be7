"""``wm-ros-record`` over real Fast DDS: the fake sim driven step by step, recorded into a bag,
imported with `envs.data.rosbag`, and compared with what the sim did, frame for frame."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the [ros] extra: pip install -e '.[ros]'")

from std_msgs.msg import Float64MultiArray, UInt32  # noqa: E402

from agent.ros.harness import NodeProcess, Observer, pick_domain_id  # noqa: E402
from agent.ros.messages import COMMAND_QOS, action_msg  # noqa: E402
from agent.ros.recorder_node import FLUSH_PERIOD_S  # noqa: E402
from envs.data import open_dataset  # noqa: E402
from envs.data.rosbag import ImportOptions, import_bag, open_bag  # noqa: E402
from tests.test_ros_fakes import ACTION_LOW, render_blob  # noqa: E402

pytestmark = pytest.mark.ros
FAKE_SIM = ["-p", "env_module:=tests.test_ros_fakes", "-p", "env_id:=wmtest/FakeReach-v0"]
PERIOD_S = 0.2  # 5 Hz, as the shipped checkpoints


def drive(obs: Observer, episodes: list[list[np.ndarray]]) -> None:
    """Teleoperation stand-in: commands at 5 Hz, a sim reset one period after each episode."""
    pub = obs.node.create_publisher(Float64MultiArray, "/wm/action", COMMAND_QOS)
    assert obs.wait_for(lambda: pub.get_subscription_count() >= 2, 20), "sim or recorder missing"
    # the recorder subscribes to the camera too: start once discovery has matched it
    assert obs.wait_for(lambda: obs.node.count_subscribers("/camera/image_raw") >= 1, 20)
    time.sleep(1.0)
    for i, actions in enumerate(episodes):
        if i:
            assert obs.call_trigger("/wm/sim/reset")
            time.sleep(PERIOD_S)
        for action in actions:
            pub.publish(action_msg(action))
            time.sleep(PERIOD_S)
        time.sleep(PERIOD_S)  # the last step's frame arrives before the reset


def record(
    tmp_path: Path, storage: str, lengths: tuple[int, ...], kill: bool = False
) -> tuple[Path, list]:
    """Run the fake sim and the recorder, drive episodes of ``lengths`` random actions; stop
    the recorder with SIGINT, or SIGKILL it (``kill``) two flush periods later."""
    domain = pick_domain_id(salt=11 + 2 * ["mcap", "sqlite3"].index(storage) + int(kill))
    obs = Observer(domain)
    bag = tmp_path / "bag"
    sim = NodeProcess("agent.ros.sim_node", FAKE_SIM, domain, tmp_path / "sim.log")
    rec_args = ["-p", f"output:={bag}", "-p", f"storage:={storage}"]
    recorder = NodeProcess("agent.ros.recorder_node", rec_args, domain, tmp_path / "rec.log")
    try:
        obs.record(UInt32, "/wm/sim/steps")
        assert obs.wait_for(lambda: bool(obs.messages("/wm/sim/steps")), 30), sim.log_tail()
        rng = np.random.default_rng(0)
        episodes = [[ACTION_LOW * (1 - 2 * rng.uniform(size=7)) for _ in range(n)] for n in lengths]
        drive(obs, episodes)
        if kill:
            time.sleep(2 * FLUSH_PERIOD_S)
            recorder.kill()
    finally:
        recorder.stop()
        sim.stop()
        obs.close()
    return bag, episodes


def check_import(tmp_path: Path, bag: Path, episodes: list) -> list[str]:
    """Import the bag; each episode must be what the fake sim did, frame for frame."""
    bound = tuple(-ACTION_LOW)
    opts = ImportOptions(env_id="ros/fake", action_low=tuple(ACTION_LOW), action_high=bound)
    report = import_bag(bag, tmp_path / "out.h5", opts)
    with open_dataset(tmp_path / "out.h5") as reader:
        imported = list(reader)
    assert [len(e) for e in imported] == [len(e) for e in episodes], "\n".join(report.lines())
    for ep, actions in zip(imported, episodes, strict=True):
        np.testing.assert_allclose(ep.actions, np.clip(actions, ACTION_LOW, -ACTION_LOW), atol=1e-6)
        # the sim's own dynamics: state t = start + the first t actions (clipped)
        start = np.array([0.4, -0.1, 0.3, 0.0, 0.0, 0.0, 1.0])
        states = start + np.concatenate([[np.zeros(7)], np.cumsum(ep.actions, axis=0)])
        np.testing.assert_allclose(ep.states, states, atol=1e-5)
        np.testing.assert_array_equal(ep.pixels, np.stack([render_blob(s[:2]) for s in states]))
    return report.lines()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorded_bag_imports_frame_for_frame(tmp_path: Path, storage: str) -> None:
    bag, episodes = record(tmp_path, storage, (6, 4))
    assert (bag / "metadata.yaml").is_file()
    with open_bag(bag) as opened:
        assert opened.topics["/wm/action"].count == 10 and not opened.cuts
    check_import(tmp_path, bag, episodes)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_killed_recorder_leaves_a_bag_that_imports(tmp_path: Path, storage: str) -> None:
    bag, episodes = record(tmp_path, storage, (6, 3), kill=True)
    assert not (bag / "metadata.yaml").exists()  # never closed
    lines = check_import(tmp_path, bag, episodes)
    assert any("no metadata.yaml" in line for line in lines), lines
