"""rosbag2 -> HDF5 dataset (`envs.data.hdf5` layout): what ``python -m envs.data.rosbag import``
runs.

Two passes over the bag. The first reads everything but the pixels (commands, states, markers,
camera info, goal images, and each frame's stamp from its header bytes) and plans the episodes
and steps (`envs.data.rosbag.resample`); the second decodes only the frames a step uses and writes
each episode as soon as its last frame has passed, through `envs.data.hdf5`'s part writer and
merge (atomic). Memory holds one episode's frames, whatever the bag's length.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.common.contract import EnvContract
from envs.data import open_dataset
from envs.data.checks import outside_bounds
from envs.data.episode import Episode, non_finite
from envs.data.hdf5 import merge_parts, write_episode_part
from envs.data.lerobot.columns import square
from envs.data.rosbag.bag import Bag, RosbagError, deserialize, open_bag
from envs.data.rosbag.contract import bag_contract
from envs.data.rosbag.options import ImportOptions
from envs.data.rosbag.resample import StepPlan, marker_starts, plan_steps, split_episodes
from envs.data.rosbag.streams import (
    DIM,
    Stream,
    control_rate,
    decode_frame,
    first_frame,
    read_streams,
    require_topics,
)
from envs.data.storage import remove_path


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


def import_bag(bag_path: str | Path, out: str | Path, opts: ImportOptions) -> ImportReport:
    """Import a rosbag2 bag as an HDF5 dataset at ``out`` (refused if it exists); raises
    `RosbagError` (a ValueError) naming the bag and the problem, leaving nothing behind."""
    start = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise RosbagError(f"{out} already exists; remove it or choose another output")
    with open_bag(bag_path) as bag:
        require_topics(bag, opts.topics)
        streams = read_streams(bag, opts)
        commands = np.asarray(streams["command"].values).reshape(-1, DIM)
        command_ns = np.asarray(streams["command"].ns, np.int64)
        control_hz = opts.control_hz or control_rate(bag, command_ns)
        first = first_frame(bag, opts.topics.image)
        contract, root_attrs = bag_contract(opts, control_hz, first, streams["camera_info"], bag)
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


# ------------------------------------------------------------------------------ planning
def _plan(
    bag: Bag, streams: dict[str, Stream], contract: EnvContract, opts: ImportOptions
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
    streams: dict[str, Stream],
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
    streams: dict[str, Stream],
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
    streams: dict[str, Stream],
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
            frame = decode_frame(bag, image_topic, k, deserialize(raw, msgtype), msgtype)
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
    streams: dict[str, Stream],
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
            frame = decode_frame(
                bag, "goal image", k, deserialize(goal.values[k], msgtype), msgtype
            )
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
