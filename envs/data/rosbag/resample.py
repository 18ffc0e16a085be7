"""Episodes and control steps from message times: pure numpy, no bag, no ROS.

The rules (docs/ros.md, "From a robot back to training"):

* **Episodes.** Where the bag has the episode marker topic, each marker starts an episode (a
  counter such as the sim's ``/wm/sim/steps`` marks one where it goes down). Otherwise a gap
  between two commands longer than ``gap_periods`` control periods starts one.
* **Steps.** Every command is one control step. Observation t (frame and state) is the latest
  message stamped at or before command t; the observation after the last command is the latest
  one at or before one control period later (and before the next episode starts). Leading
  commands with no frame or state before them are left out.
* **Report.** Per episode: ``late`` observations whose newest frame is older than ``max_age``
  (the camera sent nothing fresher; the old frame is kept), ``repeated`` ones that reuse the
  previous observation's frame (camera slower than control, or frames lost), ``unused`` frames
  no step picked (camera faster than control), and ``dropped`` camera frames missing from the
  bag, estimated from gaps longer than 1.5 median camera periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COUNTER_TYPES = (
    "std_msgs/msg/UInt32",
    "std_msgs/msg/Int32",
    "std_msgs/msg/UInt64",
    "std_msgs/msg/Int64",
)


@dataclass
class StepPlan:
    """One episode's steps as indices into the time-sorted frame, state and command arrays."""

    commands: np.ndarray  # (L,) int: command index of each step
    frames: np.ndarray  # (L+1,) int: frame index of each observation
    states: np.ndarray  # (L+1,) int: state index of each observation
    obs_ns: np.ndarray  # (L+1,) int64: the time each observation stands for
    skipped_leading: int = 0  # commands before the first frame and state
    late: int = 0
    late_states: int = 0
    repeated: int = 0
    unused: int = 0
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.commands)


def estimate_control_hz(command_ns: np.ndarray) -> float:
    """The median command rate rounded to 0.1 Hz (a 5 Hz robot with jitter gives 5.0)."""
    if len(command_ns) < 2:
        raise ValueError("fewer than 2 commands: cannot tell the control rate (pass it)")
    period_s = float(np.median(np.diff(command_ns))) / 1e9
    if period_s <= 0:
        raise ValueError("commands share one timestamp: cannot tell the control rate (pass it)")
    return round(1.0 / period_s, 1)


def marker_starts(marker_ns: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Episode start times from a marker topic: every message, or for a counter (``values``
    given) every message whose value is below the previous one."""
    if values is None:
        return marker_ns
    down = np.flatnonzero(np.diff(values.astype(np.int64)) < 0) + 1
    return marker_ns[down]


def split_episodes(
    command_ns: np.ndarray, period_ns: int, gap_periods: float, starts: np.ndarray | None
) -> list[np.ndarray]:
    """Command indices of each episode (sorted times in): split at ``starts`` when given (a
    marker topic), else where two commands are more than ``gap_periods`` periods apart."""
    if len(command_ns) == 0:
        return []
    if starts is not None:
        group = np.searchsorted(starts, command_ns, side="right")
        cuts = np.flatnonzero(np.diff(group)) + 1
    else:
        cuts = np.flatnonzero(np.diff(command_ns) > gap_periods * period_ns) + 1
    return np.split(np.arange(len(command_ns)), cuts)


def latest_at_or_before(times_ns: np.ndarray, query_ns: np.ndarray) -> np.ndarray:
    """Index of the last of sorted ``times_ns`` at or before each query; -1 where none is."""
    return np.searchsorted(times_ns, query_ns, side="right") - 1


def plan_steps(
    command_idx: np.ndarray,
    command_ns: np.ndarray,
    frame_ns: np.ndarray,
    state_ns: np.ndarray,
    period_ns: int,
    end_ns: int | None,
    max_age_ns: int,
    camera_period_ns: float | None,
) -> StepPlan | None:
    """Resample one episode's observations to its command times; None if no step has both a
    frame and a state before it. ``end_ns``: when the next episode starts (exclusive)."""
    times = command_ns[command_idx]
    last_obs = times[-1] + period_ns
    if end_ns is not None:
        last_obs = min(last_obs, end_ns - 1)
    obs_ns = np.append(times, max(last_obs, times[-1]))  # (L+1,)
    frames = latest_at_or_before(frame_ns, obs_ns)
    states = latest_at_or_before(state_ns, obs_ns)
    have = np.flatnonzero((frames[:-1] >= 0) & (states[:-1] >= 0))
    if len(have) == 0:
        return None
    first = int(have[0])  # both indices only grow, so every later step has both too
    frames, states, obs_ns = frames[first:], states[first:], obs_ns[first:]
    plan = StepPlan(command_idx[first:], frames, states, obs_ns, skipped_leading=first)
    plan.late = int(np.sum(obs_ns - frame_ns[frames] > max_age_ns))
    plan.late_states = int(np.sum(obs_ns - state_ns[states] > max_age_ns))
    plan.repeated = int(np.sum(np.diff(frames) == 0))
    span = frame_ns[frames[0] : frames[-1] + 1]  # every frame between the first and last used
    plan.unused = len(span) - len(np.unique(frames))
    if camera_period_ns and len(span) > 1:
        gaps = np.diff(span) / camera_period_ns
        plan.dropped = int(np.sum(np.where(gaps > 1.5, np.round(gaps) - 1, 0)))
    return plan
