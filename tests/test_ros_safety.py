"""The ROS bridge's pure safety logic: image decoding, clamping, watchdog, latest-only slot.

No rclpy here: these run everywhere, and pin down the rules the DDS tests then check
end to end.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.ros.safety import (
    CommandLimits,
    LatestSlot,
    MalformedMessage,
    Watchdog,
    decode_image,
    resize_image,
    twist_from_action,
    validate_vector,
)

LOW = np.array([-0.075, -0.075, -0.075, 0.0, 0.0, 0.0, -1.0])


def limits() -> CommandLimits:
    return CommandLimits(LOW, -LOW, [0.2, -0.3, 0.0], [0.8, 0.3, 0.6])


# ----- images -----


def test_decode_rgb8_and_bgr8_give_the_same_rgb() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_image("rgb8", 4, 5, 15, rgb.tobytes()), rgb)
    bgr = rgb[..., ::-1].copy()
    assert np.array_equal(decode_image("bgr8", 4, 5, 15, bgr.tobytes()), rgb)


def test_decode_drops_row_padding() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.concatenate([rgb.reshape(2, 9), np.zeros((2, 3), np.uint8)], axis=1)  # step 12
    out = decode_image("rgb8", 2, 3, 12, padded.tobytes())
    assert np.array_equal(out, rgb) and out.flags.c_contiguous


@pytest.mark.parametrize(
    ("encoding", "height", "width", "step", "nbytes", "match"),
    [
        ("mono8", 4, 4, 4, 16, "encoding"),
        ("16UC1", 4, 4, 8, 32, "encoding"),
        ("rgb8", 4, 4, 12, 47, "bytes"),  # truncated buffer
        ("rgb8", 4, 4, 12, 60, "bytes"),  # size/step disagree
        ("rgb8", 4, 4, 10, 40, "step"),  # step shorter than a row
        ("rgb8", 0, 4, 12, 0, "empty"),
    ],
)
def test_decode_rejects_malformed(encoding, height, width, step, nbytes, match) -> None:
    with pytest.raises(MalformedMessage, match=match):
        decode_image(encoding, height, width, step, bytes(nbytes))


def test_resize_center_crops_then_scales() -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 8:56] = 200  # the centre square; the side bands must be cropped away
    out = resize_image(img, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out.min() == 200
    same = np.full((32, 32, 3), 7, np.uint8)
    assert np.array_equal(resize_image(same, 32), same)


# ----- vectors -----


def test_validate_vector() -> None:
    assert validate_vector([1, 2, 3, 4, 5, 6, 7]).dtype == np.float64
    with pytest.raises(MalformedMessage, match="expected 7"):
        validate_vector([1.0, 2.0])
    with pytest.raises(MalformedMessage, match="non-finite"):
        validate_vector([0, 0, 0, 0, 0, 0, math.nan])


# ----- clamping -----


def test_clamp_respects_action_bounds_and_zeroes_nan() -> None:
    state = np.array([0.5, 0.0, 0.3, 0, 0, 0, 1])
    out = limits().clamp(np.array([1.0, -1.0, 0.01, 0.5, 0.0, 0.0, 3.0]), state)
    assert np.allclose(out, [0.075, -0.075, 0.01, 0.0, 0.0, 0.0, 1.0])
    assert np.array_equal(limits().clamp(np.full(7, np.nan), state), np.zeros(7))
    assert np.array_equal(limits().clamp(np.ones(3), state), np.zeros(7))  # wrong length


def test_clamp_stops_at_workspace_edge() -> None:
    state = np.array([0.78, 0.0, 0.3, 0, 0, 0, 1])
    out = limits().clamp(np.array([0.05, 0, 0, 0, 0, 0, 0]), state)
    assert out[0] == pytest.approx(0.02)


def test_clamp_outside_box_allows_only_motion_back_and_never_creates_motion() -> None:
    state = np.array([0.9, 0.0, -0.1, 0, 0, 0, 1])  # beyond x max and below z min
    assert np.array_equal(limits().clamp(np.zeros(7), state), np.zeros(7))
    out = limits().clamp(np.array([0.05, 0, -0.05, 0, 0, 0, 0]), state)
    assert out[0] == 0.0 and out[2] == 0.0
    out = limits().clamp(np.array([-0.05, 0, 0.05, 0, 0, 0, 0]), state)
    assert out[0] == pytest.approx(-0.05) and out[2] == pytest.approx(0.05)


finite = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=7, max_size=7), st.lists(finite, min_size=3, max_size=3))
def test_clamp_output_always_within_bounds_and_never_leaves_box(action, pos) -> None:
    lim = limits()
    state = np.array([*pos, 0, 0, 0, 1.0])
    out = lim.clamp(np.array(action), state)
    assert np.all(out >= lim.action_low - 1e-12) and np.all(out <= lim.action_high + 1e-12)
    inside = (state[:3] >= lim.workspace_low) & (state[:3] <= lim.workspace_high)
    target = state[:3] + out[:3]
    assert np.all(~inside | (target >= lim.workspace_low - 1e-9))
    assert np.all(~inside | (target <= lim.workspace_high + 1e-9))
    # Outside the box, the distance to it never grows.
    gap_before = np.maximum(lim.workspace_low - state[:3], state[:3] - lim.workspace_high)
    gap_after = np.maximum(lim.workspace_low - target, target - lim.workspace_high)
    assert np.all(inside | (gap_after <= gap_before + 1e-9))


def test_limits_validate_configuration() -> None:
    with pytest.raises(ValueError, match="contain 0"):
        CommandLimits(np.full(7, 0.1), np.full(7, 0.2), [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="workspace_low"):
        CommandLimits(LOW, -LOW, [0, 0, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="action_low must be 7"):
        CommandLimits(LOW[:3], -LOW, [0, 0, 0], [1, 1, 1])


def test_twist_is_delta_over_period() -> None:
    linear, angular = twist_from_action(np.array([0.05, 0, -0.01, 0, 0, 0.02, 1.0]), 0.2)
    assert np.allclose(linear, [0.25, 0, -0.05]) and np.allclose(angular, [0, 0, 0.1])


# ----- watchdog and slot -----


def test_watchdog_trips_and_recovers_once_per_transition() -> None:
    dog = Watchdog(timeout_s=0.5)
    assert not dog.is_fresh(0.0) and dog.update(0.0) is None  # never fresh yet: no event
    dog.feed("image", 1.0)
    assert dog.stale_streams(1.0) == ["state"]
    dog.feed("state", 1.1)
    assert dog.update(1.2) == "recovered" and dog.update(1.3) is None
    assert dog.update(1.6) == "tripped"  # image is 0.6 s old
    assert dog.update(1.7) is None and dog.stale_streams(1.7) == ["image", "state"]
    dog.feed("image", 1.8)
    dog.feed("state", 1.8)
    assert dog.update(1.9) == "recovered"
    assert dog.ages(2.0) == pytest.approx({"image": 0.2, "state": 0.2})
    with pytest.raises(KeyError):
        dog.feed("lidar", 0.0)
    with pytest.raises(ValueError):
        Watchdog(timeout_s=0.0)


def test_latest_slot_keeps_only_the_newest_under_concurrent_writers() -> None:
    slot = LatestSlot()
    assert slot.get()[0] == 0 and slot.get()[1] is None

    def writer(k: int) -> None:
        for i in range(1000):
            slot.put((k, i), float(i))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seq, value, stamp = slot.get()
    assert seq == 4000 and value[1] == 999 and stamp == 999.0


def node_params(**overrides) -> dict:
    base = {"control_rate_hz": 0.0, "action_low": [], "action_high": []}
    return {**base, "workspace_low": [], "workspace_high": [], **overrides}


def test_command_settings_come_from_the_checkpoint_contract() -> None:
    from types import SimpleNamespace

    from agent.ros.safety import command_settings
    from tests.test_ros_fakes import FAKE_CONTRACT

    c = FAKE_CONTRACT
    policy = SimpleNamespace(contract=c, action_low=np.array(c.action_low), action_high=np.array(c.action_high))  # fmt: skip
    rate, limits = command_settings(policy, node_params())
    assert rate == c.control_hz
    np.testing.assert_allclose(limits.workspace_high, c.workspace_high)
    _, narrow = command_settings(policy, node_params(workspace_high=[0.5, 0.6, 0.9]))
    np.testing.assert_allclose(narrow.workspace_high, [0.5, 0.6, 0.9])
    np.testing.assert_allclose(narrow.workspace_low, c.workspace_low)  # the unset side
    with pytest.raises(ValueError, match=r"control_rate_hz=5\.0 but the checkpoint was trained at 10\.0 Hz"):  # fmt: skip
        command_settings(policy, node_params(control_rate_hz=5.0))
    with pytest.raises(ValueError, match=r"workspace bounds widened in dimension 2"):
        command_settings(policy, node_params(workspace_high=[0.9, 0.6, 1.5]))
    with pytest.raises(ValueError, match=r"action bounds widened in dimension 0"):
        command_settings(policy, node_params(action_high=[0.2, 0.075, 0.075, 0, 0, 0, 1.0]))
    standin = SimpleNamespace(contract=None, action_low=policy.action_low, action_high=policy.action_high)  # fmt: skip
    with pytest.raises(ValueError, match="no env contract"):
        command_settings(standin, node_params())
