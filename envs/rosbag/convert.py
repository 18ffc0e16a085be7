"""rosbag2 -> HDF5 dataset (`envs.dataset` layout), what ``python -m envs.rosbag import`` runs.

Two passes over the bag. The first reads everything but the pixels (commands, states, markers,
camera info, goal images, and each frame's stamp from its header bytes) and plans the episodes
and steps (`envs.rosbag.resample`); the second decodes only the frames a step uses and writes
each episode as soon as its last frame has passed, through `envs.dataset`'s part writer and
merge (atomic). Memory holds one episode's frames, whatever the bag's length.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.contract import EnvContract
from envs.dataset import Episode, merge_parts, non_finite, open_dataset, write_episode_part
from envs.dataset_checks import outside_bounds
from envs.lerobot.columns import square
from envs.rosbag.bag import Bag, RosbagError, Topics, deserialize, header_stamp_ns, open_bag
from envs.rosbag.messages import (
    IMAGE_TYPES,
    VECTOR_TYPES,
    MessageError,
    decode_image,
    vector,
    vertical_fov_deg,
)
from envs.rosbag.resample import (
    COUNTER_TYPES,
    StepPlan,
    estimate_control_hz,
    marker_starts,
    plan_steps,
    split_episodes,
)
from envs.storage import remove_path

TOPIC_TYPES = {
    "image": IMAGE_TYPES,
    "state": VECTOR_TYPES,
    "command": VECTOR_TYPES,
    "camera_info": ("sensor_msgs/msg/CameraInfo",),
    "goal_image": IMAGE_TYPES,
    "success": ("std_msgs/msg/Bool",),
    "distance": ("std_msgs/msg/Float64", "std_msgs/msg/Float32"),
}
"""The types each contract topic may have (the episode marker may have any)."""
DIM = 7  # state and action length of the contract (docs/ros.md) and of the HDF5 layout
CLOCK_SKEW_S = 1.0  # camera header stamps further than this from receive times: unsynced clocks


@dataclass(frozen=True)
class ImportOptions:
    """What the bag cannot tell. Units: Hz, seconds, the action's units (m, rad, opening)."""

    env_id: str
    """Env id written into the contract; a registered one (``wm/PandaReach-v0``) brings its
    bounds, workspace and camera, anything else (``ros/my_cell``) needs the action bounds."""
    topics: Topics = field(default_factory=Topics)
    control_hz: float | None = None
    """Commands per second; None = the median command rate, rounded to 0.1 Hz."""
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    workspace_low: tuple[float, ...] = ()
    workspace_high: tuple[float, ...] = ()
    image_size: int | None = None
    """Side of the stored square frames; None = the env's, else the camera's (if square)."""
    gap_periods: float = 3.0
    """Without an episode marker topic, a pause between commands longer than this many
    control periods starts a new episode."""
    max_frame_age_s: float | None = None
    """An observation whose newest frame is older than this is counted late; None = 1 period."""
    clip_actions: bool = False
    """Clip commands outside the action bounds (counted) instead of refusing the bag."""
    clock: str = "header"
    """Frame times: ``header`` (the camera's stamps) or ``receive`` (the bag's own timestamps,
    as for states and commands: arrival times from ``ros2 bag record``, send times from
    ``wm-ros-record``; for a camera whose clock is not synced with the recorder's)."""

    def __post_init__(self) -> None:
        if self.clock not in ("header", "receive"):
            raise ValueError(f"clock={self.clock!r}: 'header' or 'receive'")
        if self.gap_periods <= 1:
            raise ValueError(f"gap_periods={self.gap_periods}: must be > 1 control period")
        if self.control_hz is not None and not self.control_hz > 0:
            raise ValueError(f"control_hz={self.control_hz}: must be > 0")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ValueError(f"image_size={self.image_size}: want 8 to 1024 pixels")
        if (self.action_low is None) != (self.action_high is None):
            raise ValueError("give both action_low and action_high, or neither")


@dataclass
class EpisodeReport:
    steps: int
    start_s: float
    plan: StepPlan
    clipped: int = 0
    goal: str = "last frame"

    def line(self, index: int) -> str:
        p = self.plan
        skipped = (
            f", {p.skipped_leading} leading commands before any frame" if p.skipped_leading else ""
        )
        return (
            f"episode {index}: {self.steps} steps from t={self.start_s:.2f} s; frames: "
            f"{p.dropped} dropped, {p.late} late, {p.repeated} repeated, {p.unused} unused; "
            f"states late {p.late_states}; {self.clipped} clipped; goal: {self.goal}{skipped}"
        )


@dataclass
class ImportReport:
    out: Path
    bag: Path
    storage: str
    duration_s: float
    episodes: list[EpisodeReport]
    contract: EnvContract
    notes: list[str]
    """What the bag lost: cut storage files, an episode the cut left unfinished."""
    seconds: float = 0.0

    def lines(self) -> list[str]:
        steps = sum(e.steps for e in self.episodes)
        speed = self.duration_s / self.seconds if self.seconds > 0 else float("inf")
        return [
            *(e.line(i) for i, e in enumerate(self.episodes)),
            *self.notes,
            f"{self.out}: {len(self.episodes)} episodes, {steps} steps, "
            f"{self.contract.image_size} px, {self.contract.control_hz:g} Hz, env {self.contract.env_id}",
            f"imported {self.duration_s:.1f} s of {self.storage} bag in {self.seconds:.2f} s "
            f"({speed:.0f}x real time)",
        ]


@dataclass
class _Stream:
    """One topic's messages in bag order: times (ns, the chosen clock), receive times, values."""

    ns: list[int] = field(default_factory=list)
    recv: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    msgtype: str = ""


def import_bag(bag_path: str | Path, out: str | Path, opts: ImportOptions) -> ImportReport:
    """Import a rosbag2 bag as an HDF5 dataset at ``out`` (refused if it exists); raises
    `RosbagError` (a ValueError) naming the bag and the problem, leaving nothing behind."""
    start = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise RosbagError(f"{out} already exists; remove it or choose another output")
    with open_bag(bag_path) as bag:
        _require_topics(bag, opts.topics)
        streams = _first_pass(bag, opts)
        commands = np.asarray(streams["command"].values).reshape(-1, DIM)
        command_ns = np.asarray(streams["command"].ns, np.int64)
        control_hz = opts.control_hz or _rate(bag, command_ns)
        first = _first_frame(bag, opts.topics.image)
        contract, root_attrs = _contract(opts, control_hz, first, streams["camera_info"], bag)
        plans, notes = _plan(bag, streams, contract, opts)
        notes += _drop_cut_episode(bag, streams, plans, contract, opts)
        reports = _check_values(bag, plans, streams, contract, opts)
        parts = out.with_name(f"{out.name}.parts.tmp.{os.getpid()}")
        remove_path(parts)
        try:
            _second_pass(bag, opts.topics.image, streams, plans, reports, commands, contract, parts)
            merge_parts(parts, out, root_attrs)
        finally:
            if parts.exists():
                shutil.rmtree(parts, ignore_errors=True)
        with open_dataset(out):  # the standard reader refuses what it could not read back
            pass
        duration = (bag.end_ns - bag.start_ns) / 1e9
        cuts = [f"truncated bag: {c}" for c in bag.cuts]
        report = ImportReport(out, bag.path, bag.storage, duration, reports, contract, cuts + notes)
    report.seconds = time.perf_counter() - start
    return report


# ------------------------------------------------------------------------------ first pass
def _require_topics(bag: Bag, topics: Topics) -> None:
    """The image, state and command topics must be there; every contract topic there must
    have a type we read."""
    have = bag.topics
    required = {"image": topics.image, "state": topics.state, "command": topics.command}
    missing = {role: name for role, name in required.items() if name not in have}
    if missing:
        flags = ", ".join(f"--{role}-topic" for role in missing)
        raise RosbagError(
            f"{bag.path}: no {', '.join(missing.values())} in the bag; it has "
            f"{bag.describe_topics()}; name yours with {flags}"
        )
    for role, types in TOPIC_TYPES.items():
        name = getattr(topics, role)
        if name in have and have[name].msgtype not in types:
            raise RosbagError(
                f"{bag.path}: {name} is {have[name].msgtype}, expected {' or '.join(types)} "
                f"(--{role.replace('_', '-')}-topic names another)"
            )


def _first_pass(bag: Bag, opts: ImportOptions) -> dict[str, _Stream]:
    """Everything but the pixels: vectors decoded, frames as stamps, goals kept raw."""
    t = opts.topics
    roles = {t.image: "image", t.state: "state", t.command: "command", t.camera_info: "camera_info",
             t.episode: "episode", t.goal_image: "goal", t.success: "success", t.distance: "distance"}  # fmt: skip
    streams: dict[str, _Stream] = defaultdict(_Stream)
    for topic, msgtype, recv, raw in bag.messages(set(roles)):
        role, stream = roles[topic], streams[roles[topic]]
        stream.msgtype = msgtype
        ns = recv
        if role == "image":
            ns = header_stamp_ns(raw) if opts.clock == "header" else recv
        elif role in ("state", "command"):
            try:
                stream.values.append(vector(deserialize(raw, msgtype), DIM))
            except MessageError as err:
                raise RosbagError(f"{bag.path}: {topic} message {len(stream.ns)}: {err}") from err
        elif role == "goal":
            stream.values.append(raw)
        elif role == "camera_info" or (role == "episode" and msgtype in COUNTER_TYPES):
            stream.values.append(deserialize(raw, msgtype))
        elif role in ("success", "distance"):
            stream.values.append(deserialize(raw, msgtype).data)
        stream.ns.append(ns)
        stream.recv.append(recv)
    for role, topic in (("image", t.image), ("state", t.state), ("command", t.command)):
        _check_monotonic(bag, topic, streams[role], opts.clock if role == "image" else "receive")
        if not streams[role].ns:
            raise RosbagError(
                f"{bag.path}: {topic} has no readable message ({'; '.join(map(str, bag.cuts))})"
            )
    if opts.clock == "header":
        skew = float(np.median(np.subtract(streams["image"].recv, streams["image"].ns))) / 1e9
        if abs(skew) > CLOCK_SKEW_S:
            raise RosbagError(
                f"{bag.path}: {t.image} header stamps are {skew:+.1f} s off the bag's receive times "
                "(the camera's clock is not the recorder's); sync them, or pass --clock receive"
            )
    return streams


def _check_monotonic(bag: Bag, topic: str, stream: _Stream, clock: str) -> None:
    ns = np.asarray(stream.ns, np.int64)
    back = np.flatnonzero(np.diff(ns) < 0)
    if len(back):
        k = int(back[0]) + 1
        hint = "; pass --clock receive to order frames by receive time" if clock == "header" else ""
        raise RosbagError(
            f"{bag.path}: {topic}: {clock} stamps go back in time at message {k} "
            f"({ns[k] / 1e9:.6f} s after {ns[k - 1] / 1e9:.6f} s; {len(back)} such messages){hint}"
        )


def _rate(bag: Bag, command_ns: np.ndarray) -> float:
    try:
        return estimate_control_hz(command_ns)
    except ValueError as err:
        raise RosbagError(f"{bag.path}: {err} with --control-hz") from err


def _first_frame(bag: Bag, topic: str) -> tuple[np.ndarray, Any]:
    """The first frame (decoded: an unreadable encoding fails before any work) and its message."""
    for _, msgtype, _, raw in bag.messages({topic}):
        msg = deserialize(raw, msgtype)
        return _decode(bag, topic, 0, msg, msgtype), msg
    raise RosbagError(f"{bag.path}: {topic} has no readable message")


def _decode(bag: Bag, topic: str, index: int, msg: Any, msgtype: str) -> np.ndarray:
    try:
        return decode_image(msg, msgtype)
    except MessageError as err:
        raise RosbagError(f"{bag.path}: {topic} message {index}: {err}") from err


# ------------------------------------------------------------------------------ contract
def _contract(
    opts: ImportOptions,
    control_hz: float,
    first: tuple[np.ndarray, Any],
    camera_info: _Stream,
    bag: Bag,
) -> tuple[EnvContract, dict[str, Any]]:
    """The env contract and the dataset's root attrs, from the env id and what the bag says."""
    pixels, msg = first
    height, width = pixels.shape[:2]
    info = camera_info.values[-1] if camera_info.values else None
    fovy = vertical_fov_deg(info) if info is not None else None
    camera = {
        "name": msg.header.frame_id or opts.topics.image,
        "topic": opts.topics.image,
        "frame_id": msg.header.frame_id,
        "width": width,
        "height": height,
        "fovy": fovy,
    }
    if info is not None:
        camera |= {
            "k": list(map(float, info.k)),
            "d": list(map(float, info.d)),
            "distortion_model": info.distortion_model,
        }
    policy = {"name": "rosbag", "bag": str(bag.path), "command_topic": opts.topics.command}
    registered = _registered(opts.env_id)
    size = opts.image_size
    if registered:
        return _registered_contract(
            opts, control_hz, size or (height if height == width else None), fovy, camera, policy
        )
    if size is None:
        if height != width:
            raise RosbagError(
                f"{bag.path}: {opts.topics.image} frames are {height}x{width}, not square: pass "
                "--image-size N (centre crop, then resize, as wm-ros-policy does)"
            )
        size = height
    if opts.action_low is None or opts.action_high is None:
        raise RosbagError(
            f"{bag.path}: env {opts.env_id!r} is not registered, so the bag cannot tell the action "
            "bounds: pass --action-low and --action-high (7 comma-separated values each)"
        )
    contract = EnvContract(
        env_id=opts.env_id,
        control_hz=control_hz,
        action_low=opts.action_low,
        action_high=opts.action_high,
        image_size=size,
        state_dim=DIM,
        action_dim=DIM,
        workspace_low=opts.workspace_low,
        workspace_high=opts.workspace_high,
        camera_fovy=fovy,
    )
    attrs = {
        "env_id": opts.env_id,
        "env_kwargs": "{}",
        "env_args": json.dumps({"env_name": opts.env_id, "type": "rosbag", "env_kwargs": {}}),
        "control_hz": control_hz,
        "camera": json.dumps(camera),
        "image_size": size,
        "policy": json.dumps(policy),
        "env_contract": json.dumps(contract.to_dict()),
    }
    return contract, attrs


def _registered(env_id: str) -> bool:
    import gymnasium as gym

    import envs  # noqa: F401  (registers the wm/* ids)

    return env_id in gym.envs.registry


def _registered_contract(
    opts: ImportOptions,
    control_hz: float,
    size: int | None,
    fovy: float | None,
    camera: dict[str, Any],
    policy: dict[str, Any],
) -> tuple[EnvContract, dict[str, Any]]:
    """A bag recorded from a registered env (``wm-ros-sim``): its contract, as wm-collect's."""
    import gymnasium as gym

    from envs.rollout import dataset_root_attrs

    if opts.action_low is not None or opts.workspace_low:
        raise RosbagError(
            f"env {opts.env_id} fixes the action bounds and workspace; drop those flags"
        )
    kwargs = {"image_size": size} if size is not None else {}
    env = gym.make(opts.env_id, **kwargs)
    try:
        attrs = dataset_root_attrs(opts.env_id, kwargs, env, policy)
    finally:
        env.close()
    contract = EnvContract.from_dict(json.loads(attrs["env_contract"]))
    if abs(contract.control_hz - control_hz) > 1e-6 * control_hz:
        raise RosbagError(
            f"the commands come at {control_hz:g} Hz, env {opts.env_id} steps at "
            f"{contract.control_hz:g} Hz; pass --control-hz {contract.control_hz:g} if the robot was "
            "commanded at that rate (slower commands: planning overran)"
        )
    if (
        fovy is not None
        and contract.camera_fovy is not None
        and abs(fovy - contract.camera_fovy) > 0.5
    ):
        raise RosbagError(
            f"camera_info gives a {fovy:.1f} deg field of view, env {opts.env_id} renders "
            f"{contract.camera_fovy:.1f} deg"
        )
    attrs["camera"] = json.dumps({**json.loads(attrs["camera"]), "ros": camera})
    attrs["policy"] = json.dumps(policy)
    return contract, attrs


# ------------------------------------------------------------------------------ planning
def _plan(
    bag: Bag, streams: dict[str, _Stream], contract: EnvContract, opts: ImportOptions
) -> tuple[list[StepPlan], list[str]]:
    """The steps of each episode, and a note for each run of commands left out."""
    period = int(round(1e9 / contract.control_hz))
    command_ns = np.asarray(streams["command"].ns, np.int64)
    frame_ns = np.asarray(streams["image"].ns, np.int64)
    state_ns = np.asarray(streams["state"].ns, np.int64)
    starts = None
    marker = streams.get("episode")
    if marker is not None and marker.ns:
        values = np.asarray([m.data for m in marker.values]) if marker.values else None
        starts = marker_starts(np.asarray(marker.ns, np.int64), values)
    groups = split_episodes(command_ns, period, opts.gap_periods, starts)
    max_age = int(round((opts.max_frame_age_s or 1 / contract.control_hz) * 1e9))
    camera_period = float(np.median(np.diff(frame_ns))) if len(frame_ns) > 1 else None
    plans, notes = [], []
    for i, idx in enumerate(groups):
        if starts is not None:
            later = starts[starts > command_ns[idx[-1]]]
            end = int(later[0]) if len(later) else None
        else:
            end = int(command_ns[groups[i + 1][0]]) if i + 1 < len(groups) else None
        plan = plan_steps(
            idx, command_ns, frame_ns, state_ns, period, end, max_age, camera_period or None
        )
        if plan is not None and len(plan):
            plans.append(plan)
        else:
            start_s = (command_ns[idx[0]] - bag.start_ns) / 1e9
            notes.append(
                f"{len(idx)} commands from t={start_s:.2f} s have no frame and state before "
                "them: not imported"
            )
    if not plans:
        raise RosbagError(
            f"{bag.path}: {len(command_ns)} commands on {opts.topics.command}, but none has both a "
            f"frame ({opts.topics.image}) and a state ({opts.topics.state}) before it"
        )
    return plans, notes


def _drop_cut_episode(
    bag: Bag,
    streams: dict[str, _Stream],
    plans: list[StepPlan],
    contract: EnvContract,
    opts: ImportOptions,
) -> list[str]:
    """A truncated bag's last episode is left out when the bag ends less than ``gap_periods``
    control periods after its last command: it may have gone on. Returns the note."""
    if not bag.cuts:
        return []
    last_read = max(max(s.recv) for s in streams.values() if s.recv)
    last_command = streams["command"].recv[plans[-1].commands[-1]]
    if last_read - last_command >= opts.gap_periods * 1e9 / contract.control_hz:
        return []
    cut = plans.pop()
    if not plans:
        raise RosbagError(
            f"{bag.path}: the bag was cut inside its first episode ({'; '.join(map(str, bag.cuts))})"
        )
    return [
        f"episode {len(plans)}: {len(cut)} steps before the cut, may be unfinished: not imported"
    ]


def _check_values(
    bag: Bag,
    plans: list[StepPlan],
    streams: dict[str, _Stream],
    contract: EnvContract,
    opts: ImportOptions,
) -> list[EpisodeReport]:
    """Refuse non-finite commands or states and (unless clipping) commands outside the bounds,
    naming the episode and step."""
    low, high = np.asarray(contract.action_low), np.asarray(contract.action_high)
    commands, states = np.asarray(streams["command"].values), np.asarray(streams["state"].values)
    reports = []
    for e, plan in enumerate(plans):
        actions = commands[plan.commands]  # (L, 7)
        start_s = (streams["command"].ns[plan.commands[0]] - bag.start_ns) / 1e9
        where = f"{bag.path}: episode {e} (from t={start_s:.2f} s in the bag)"
        for key, values in (("commands", actions), ("states", states[plan.states])):
            if problem := non_finite(key, values):
                raise RosbagError(f"{where}: {problem}")
        clipped = 0
        if problem := outside_bounds(actions, low, high):
            if not opts.clip_actions:
                raise RosbagError(f"{where}: {problem}; pass --clip-actions to clip them (counted)")
            clipped = int(np.any((actions < low) | (actions > high), axis=1).sum())
        reports.append(EpisodeReport(len(plan), start_s, plan, clipped))
    return reports


# ------------------------------------------------------------------------------ second pass
def _second_pass(
    bag: Bag,
    image_topic: str,
    streams: dict[str, _Stream],
    plans: list[StepPlan],
    reports: list[EpisodeReport],
    commands: np.ndarray,
    contract: EnvContract,
    parts: Path,
) -> None:
    """Decode the frames the steps use; write each episode once its last frame is in."""
    size = contract.image_size
    wanted: dict[int, list[tuple[int, int]]] = defaultdict(list)  # frame -> [(episode, obs)]
    for e, plan in enumerate(plans):
        for t, k in enumerate(plan.frames):
            wanted[int(k)].append((e, t))
    pixels: dict[int, np.ndarray] = {}  # episode -> (L+1, size, size, 3), while in flight
    last_needed = [int(p.frames.max()) for p in plans]
    written = 0
    for k, (_, msgtype, _, raw) in enumerate(bag.messages({image_topic})):
        if k in wanted:
            frame = _decode(bag, image_topic, k, deserialize(raw, msgtype), msgtype)
            frame = square(frame[None], size)[0]  # (size, size, 3)
            for e, t in wanted[k]:
                pixels.setdefault(e, np.zeros((len(plans[e].frames), size, size, 3), np.uint8))[
                    t
                ] = frame
        while written < len(plans) and last_needed[written] <= k:
            episode = _episode(
                bag,
                streams,
                plans[written],
                reports[written],
                pixels.pop(written),
                commands,
                contract,
            )
            write_episode_part(parts, written, episode)
            written += 1
    if written < len(plans):
        raise RosbagError(
            f"{bag.path}: {image_topic}: frames read in the first pass are gone in the second"
        )


def _episode(
    bag: Bag,
    streams: dict[str, _Stream],
    plan: StepPlan,
    report: EpisodeReport,
    pixels: np.ndarray,
    commands: np.ndarray,
    contract: EnvContract,
) -> Episode:
    """One planned episode as an `Episode`: states and actions by index, goal, attrs."""
    states = np.asarray(streams["state"].values)[plan.states]  # (L+1, 7)
    actions = commands[plan.commands]  # (L, 7)
    actions = np.clip(actions, contract.action_low, contract.action_high)  # a no-op unless clipping
    end_ns = int(plan.obs_ns[-1])
    goal_pixels = pixels[-1]
    goal = streams.get("goal")
    if goal is not None and goal.recv:
        k = int(np.searchsorted(np.asarray(goal.recv), end_ns, side="right")) - 1
        if k >= 0:
            msgtype = goal.msgtype
            frame = _decode(bag, "goal image", k, deserialize(goal.values[k], msgtype), msgtype)
            goal_pixels, report.goal = square(frame[None], contract.image_size)[0], "topic"
    attrs: dict[str, Any] = {
        "source": "rosbag",
        "start_ns": int(plan.obs_ns[0]),
        "late_frames": plan.late,
        "repeated_frames": plan.repeated,
        "dropped_frames": plan.dropped,
        "late_states": plan.late_states,
        "clipped_actions": report.clipped,
        "goal_source": report.goal,
    }
    for key in ("success", "distance"):
        stream = streams.get(key)
        if stream is not None and stream.recv:
            k = int(np.searchsorted(np.asarray(stream.recv), end_ns, side="right")) - 1
            if k >= 0:
                attrs[key] = bool(stream.values[k]) if key == "success" else float(stream.values[k])
    return Episode(
        pixels=pixels,
        states=states.astype(np.float32),
        actions=actions.astype(np.float32),
        goal_pixels=goal_pixels,
        goal_state=states[-1].astype(np.float32),  # a bag carries no goal state: the final one
        attrs=attrs,
    )
