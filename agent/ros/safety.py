"""Pure safety and conversion logic of the ROS 2 bridge, free of ``rclpy``.

Everything that decides whether a command is safe to send lives here, so it is unit-tested
without DDS and the node stays thin plumbing:

* :func:`decode_image` turns the fields of a ``sensor_msgs/Image`` into an RGB array, or
  raises :class:`MalformedMessage` (wrong encoding, inconsistent size/step, short buffer);
* :func:`validate_vector` rejects states and actions of the wrong length or with NaN/inf;
* :class:`CommandLimits` clamps every command to the action bounds and keeps the commanded
  end-effector position inside a workspace box;
* :class:`Watchdog` tracks the age of each input stream and says when to stop;
* :class:`LatestSlot` holds only the newest message, so a fast sensor cannot queue memory.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# Encodings we accept: the channel order a camera driver reports. Anything else (mono8,
# 16-bit, Bayer, compressed) is dropped with a log line rather than guessed at.
CHANNEL_ORDER = {"rgb8": (0, 1, 2), "bgr8": (2, 1, 0)}
STATE_DIM = 7  # ee xyz (m), extrinsic Euler xyz (rad), gripper opening [0, 1]


class MalformedMessage(ValueError):
    """An input message that cannot be used; the node logs it and drops it."""


def decode_image(encoding: str, height: int, width: int, step: int, data: Any) -> np.ndarray:
    """Decode ``sensor_msgs/Image`` fields into an owned ``uint8 (height, width, 3)`` RGB array.

    ``data`` is any buffer (``array.array``, ``bytes``, ``np.ndarray``). Row padding
    (``step > width * 3``) is allowed, as camera drivers emit it. The result is a copy, so the
    message buffer can be released as soon as the callback returns.
    """
    if encoding not in CHANNEL_ORDER:
        raise MalformedMessage(f"unsupported encoding {encoding!r}; expected one of rgb8, bgr8")
    if height <= 0 or width <= 0:
        raise MalformedMessage(f"empty image {height}x{width}")
    row_bytes = width * 3
    if step < row_bytes:
        raise MalformedMessage(f"step {step} < width*3 = {row_bytes}")
    flat = np.frombuffer(data, dtype=np.uint8)
    if flat.size != step * height:
        raise MalformedMessage(
            f"data has {flat.size} bytes, expected step*height = {step * height}"
        )
    rows = flat.reshape(height, step)[:, :row_bytes]  # [H, step] -> [H, W*3]
    pixels = rows.reshape(height, width, 3)  # [H, W, 3] in the message's channel order
    return np.ascontiguousarray(pixels[..., list(CHANNEL_ORDER[encoding])])


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """Center-crop to a square, then resize to ``uint8 (size, size, 3)``.

    Cropping first keeps the scene undistorted when a real camera is 4:3 or 16:9 while the
    model was trained on square renders; the goal image goes through the same function, so
    the two stay comparable. Antialiased bilinear matches how a downsampled render looks.
    """
    h, w, _ = pixels.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = pixels[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    x = (
        torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1)[None].float()
    )  # [1, 3, S, S]
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # [size, size, 3]


def validate_vector(values: Sequence[float] | np.ndarray, dim: int = STATE_DIM) -> np.ndarray:
    """Return ``values`` as a finite ``float64 (dim,)`` array or raise :class:`MalformedMessage`."""
    vec = np.asarray(values, dtype=np.float64).reshape(-1)
    if vec.shape != (dim,):
        raise MalformedMessage(f"expected {dim} values, got {vec.size}")
    if not np.all(np.isfinite(vec)):
        raise MalformedMessage(f"non-finite values {vec.tolist()}")
    return vec


@dataclass
class CommandLimits:
    """Bounds every command must respect before it leaves the node.

    ``action_low/high`` (7,) bound the per-step end-effector delta (m, rad, gripper units);
    ``workspace_low/high`` (3,) are a box in the robot base frame (m) that the commanded
    position ``state[:3] + action[:3]`` must stay in.
    """

    action_low: np.ndarray
    action_high: np.ndarray
    workspace_low: np.ndarray
    workspace_high: np.ndarray

    def __post_init__(self) -> None:
        self.action_low = np.asarray(self.action_low, dtype=np.float64).reshape(-1)
        self.action_high = np.asarray(self.action_high, dtype=np.float64).reshape(-1)
        self.workspace_low = np.asarray(self.workspace_low, dtype=np.float64).reshape(-1)
        self.workspace_high = np.asarray(self.workspace_high, dtype=np.float64).reshape(-1)
        for name, arr, dim in (
            ("action_low", self.action_low, STATE_DIM),
            ("action_high", self.action_high, STATE_DIM),
            ("workspace_low", self.workspace_low, 3),
            ("workspace_high", self.workspace_high, 3),
        ):
            if arr.shape != (dim,) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be {dim} finite numbers, got {arr.tolist()}")
        if np.any(self.action_low > self.action_high):
            raise ValueError(f"action_low {self.action_low} > action_high {self.action_high}")
        if np.any(self.action_low > 0) or np.any(self.action_high < 0):
            raise ValueError(
                "action bounds must contain 0 so that 'stop' is always a legal command"
            )
        if np.any(self.workspace_low >= self.workspace_high):
            raise ValueError(
                f"workspace_low {self.workspace_low} must be < workspace_high {self.workspace_high}"
            )

    def clamp(self, action: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Return the safe version of ``action`` (7,) given the current ``state`` (7,).

        Non-finite actions become zero. The translation is cut so the commanded position
        stays in the workspace; when the arm is already outside, the only motion allowed on
        that axis is back towards the box. The result is always inside the action bounds.
        """
        act = np.asarray(action, dtype=np.float64).reshape(-1)
        if act.shape != (STATE_DIM,) or not np.all(np.isfinite(act)):
            return np.zeros(STATE_DIM)
        act = np.clip(act, self.action_low, self.action_high)
        pos = np.asarray(state, dtype=np.float64)[:3]
        lo, hi = self.workspace_low - pos, self.workspace_high - pos  # allowed delta per axis
        # Outside the box one limit changes sign; widening it to 0 keeps "hold still" legal and
        # lets only motion back towards the box through. The clamp never creates motion.
        act[:3] = np.clip(act[:3], np.minimum(lo, 0.0), np.maximum(hi, 0.0))
        return np.clip(act, self.action_low, self.action_high)


def twist_from_action(action: np.ndarray, control_period_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear (m/s) and angular (rad/s) velocity that realise one per-step delta over one period.

    The Euler-angle delta is used as the angular velocity, which is exact for one axis and a
    first-order approximation otherwise (our rotations are small or frozen). The gripper is
    not part of a twist; use ``/wm/action[6]`` for it.
    """
    act = np.asarray(action, dtype=np.float64)
    return act[:3] / control_period_s, act[3:6] / control_period_s


@dataclass
class Watchdog:
    """Staleness of each input stream, on a monotonic clock the caller passes in.

    Fresh means every stream has delivered within ``timeout_s``; before the first message a
    stream is infinitely old. :meth:`update` reports transitions so the node logs once per
    trip, not once per tick, and can reset the planner's warm start when data returns.
    """

    timeout_s: float
    streams: tuple[str, ...] = ("image", "state")
    _last: dict[str, float] = field(default_factory=dict)
    _fresh: bool = False

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(
                f"watchdog timeout must be a positive number of seconds, got {self.timeout_s}"
            )

    def feed(self, stream: str, now: float) -> None:
        """Record that ``stream`` delivered a valid message at ``now`` (seconds)."""
        if stream not in self.streams:
            raise KeyError(f"unknown stream {stream!r}; watched: {self.streams}")
        self._last[stream] = now

    def ages(self, now: float) -> dict[str, float]:
        """Seconds since each stream last delivered (``inf`` if it never did)."""
        return {s: now - self._last[s] if s in self._last else math.inf for s in self.streams}

    def is_fresh(self, now: float) -> bool:
        """True when every stream delivered within the timeout."""
        return all(age <= self.timeout_s for age in self.ages(now).values())

    def update(self, now: float) -> str | None:
        """Return ``"tripped"``, ``"recovered"`` or ``None`` (no change since the last call)."""
        fresh = self.is_fresh(now)
        event = None if fresh == self._fresh else ("recovered" if fresh else "tripped")
        self._fresh = fresh
        return event

    def stale_streams(self, now: float) -> list[str]:
        """Names of the streams older than the timeout, for log and status messages."""
        return [s for s, age in self.ages(now).items() if age > self.timeout_s]


class LatestSlot:
    """A one-element mailbox: ``put`` overwrites, ``get`` returns the newest value and its number.

    Together with depth-1 QoS this bounds memory whatever the sender's rate: at most one
    decoded frame waits for the planner. The sequence number lets the planner tell whether a
    new frame arrived since it last planned.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Any = None
        self._seq = 0
        self._stamp = math.nan

    def put(self, value: Any, stamp: float) -> None:
        """Store ``value`` received at monotonic time ``stamp`` (s), dropping the previous one."""
        with self._lock:
            self._value, self._stamp = value, stamp
            self._seq += 1

    def get(self) -> tuple[int, Any, float]:
        """Return ``(seq, value, stamp)``; ``seq`` is 0 and ``value`` None before the first put."""
        with self._lock:
            return self._seq, self._value, self._stamp


def command_settings(policy: Any, p: dict[str, Any]) -> tuple[float, CommandLimits]:
    """Control rate (Hz) and command limits for the policy node's parameters ``p``.

    They come from ``policy.contract`` (the checkpoint's env contract) unless the parameters
    narrow them; a rate other than the trained one, or wider bounds or workspace, is refused.
    Fills the unset sides of ``p["action_*"]`` and ``p["workspace_*"]`` from the contract.
    """
    contract = policy.contract
    rate = p["control_rate_hz"]
    if contract is None:  # a stand-in policy that was never trained on an env
        if rate <= 0 or not p["workspace_low"] or not p["workspace_high"]:
            raise ValueError(
                "the policy carries no env contract: set control_rate_hz, workspace_low and "
                "workspace_high explicitly"
            )
    else:
        if rate <= 0:
            rate = contract.control_hz
        elif not math.isclose(rate, contract.control_hz, rel_tol=1e-6):
            raise ValueError(
                f"control_rate_hz={rate} but the checkpoint was trained at "
                f"{contract.control_hz} Hz ({contract.env_id}): one predicted step is "
                f"1/{contract.control_hz} s; leave control_rate_hz unset"
            )
        own = {
            "action": (policy.action_low, policy.action_high),
            "workspace": (contract.workspace_low, contract.workspace_high),
        }
        for kind, (own_low, own_high) in own.items():
            given = bool(p[f"{kind}_low"]) or bool(p[f"{kind}_high"])
            p[f"{kind}_low"] = list(p[f"{kind}_low"] or own_low)  # an unset side: the trained one
            p[f"{kind}_high"] = list(p[f"{kind}_high"] or own_high)
            if given:
                contract.check_narrower(
                    p[f"{kind}_low"], p[f"{kind}_high"], kind, where=f"{kind}_low/{kind}_high"
                )
    if not p["workspace_low"]:
        raise ValueError(
            f"{contract.env_id if contract else 'the policy'} has no workspace box: set "
            "workspace_low and workspace_high (m, base frame)"
        )
    limits = CommandLimits(
        p["action_low"] or policy.action_low,
        p["action_high"] or policy.action_high,
        p["workspace_low"],
        p["workspace_high"],
    )  # CommandLimits checks shapes and that each box holds 0 / is non-empty
    return rate, limits
