"""The episodes a round records, in the collectors' format, and the dataset they grow.

Each episode is recorded by `envs.collect.rollout.record_episode` (frames, states, executed
actions, simulator states, the goal frame) from a protocol=dataset start of the training data,
and written as its own part (`envs.data.hdf5.write_episode_part`, atomic); a phase's parts
join `aggregated.h5` at its end (`append_parts`: the whole file rewritten through a rename).
A killed run keeps every finished part, and an episode is known by its index alone, so the
rerun records only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from envs.collect.rollout import record_episode
from envs.data import open_dataset
from envs.data.episode import Episode
from envs.data.hdf5 import append_parts, discard_temporaries, finished_parts, write_episode_part
from envs.data.storage import remove_stale_temporaries


class RecordingPolicy:
    """An agent as a recording policy `(obs, info) -> action`: `prefix` actions `(P, A)` (a
    hard negative's plan) run open loop first; then the agent acts from where they left it,
    its commands jittered by Gaussian noise of std `noise` x half-range, clipped to the bounds.

    The agent's context keeps the command it sent, as on a robot whose actuators do not track
    exactly; the recorder stores what the env executed."""

    def __init__(
        self,
        agent: Any,
        low: np.ndarray,
        high: np.ndarray,
        noise: float,
        rng: np.random.Generator,
        prefix: np.ndarray | None = None,
    ) -> None:
        self.agent, self.low, self.high, self.rng = agent, low, high, rng
        self.std = noise * (high - low) / 2  # (A,) zero on frozen dimensions
        self.prefix = np.zeros((0, len(low)), np.float32) if prefix is None else prefix
        self.t, self.goal = 0, None
        self.success_any = False
        self.planner_errors = 0

    def __call__(self, obs: dict, info: dict) -> np.ndarray:
        t, self.t = self.t, self.t + 1
        if t == 0:
            self.goal = info["goal_pixels"]  # steps' infos do not repeat it
        else:  # as the anchors: reached at any step after the start
            self.success_any |= bool(info["success"])
        if t < len(self.prefix):
            return self.prefix[t]
        if t == len(self.prefix):
            self.agent.reset()
            self.agent.set_goal(self.goal)
        action = self.agent.act(obs["pixels"], obs["state"])
        self.planner_errors += bool(self.agent.stats.error)
        jitter = self.rng.normal(0.0, 1.0, action.shape) * self.std
        return np.clip(action + jitter, self.low, self.high).astype(np.float32)


def record(
    env: Any, policy: RecordingPolicy, seed: int, task_seeds: list[int], attrs: dict[str, Any]
) -> Episode:
    """One episode from the protocol=dataset start `seed`, with where it started, its success
    at any step, and the seed of the recorded episode it started in as its own `seed` (the
    task instance a later restart from its states needs)."""
    episode = record_episode(env, policy, seed, attrs)
    index, step = env.get_wrapper_attr("start")
    episode.attrs.update(
        seed=task_seeds[index],
        start_seed=seed,
        source_episode=index,
        source_step=step,
        success_any=policy.success_any or bool(episode.attrs["success"]),
        planner_errors=policy.planner_errors,
    )
    return episode


class AggregatedData:
    """`aggregated.h5` and its pending parts (`aggregated.h5.parts/demo_<index>.h5`)."""

    def __init__(self, path: Path, root_attrs: dict[str, Any]) -> None:
        self.path, self.root_attrs = Path(path), root_attrs
        self.parts = self.path.with_name(self.path.name + ".parts")
        discard_temporaries(self.parts)  # half-written parts of a killed run
        remove_stale_temporaries(self.path.parent, f".{self.path.name}.tmp-*")  # a killed merge
        self._attrs: dict[int, dict[str, Any]] | None = None

    def episode_attrs(self) -> dict[int, dict[str, Any]]:
        """Index -> attrs of every episode in the file (read once per commit)."""
        if self._attrs is None:
            self._attrs = {}
            if self.path.exists():
                with open_dataset(self.path) as reader:
                    for i in range(len(reader)):
                        attrs = reader.episode_attrs(i)
                        self._attrs[int(attrs["name"].split("_", 1)[1])] = attrs
        return self._attrs

    def held(self) -> set[int]:
        """Indices recorded so far: in the file or waiting as parts."""
        return set(self.episode_attrs()) | set(finished_parts(self.parts))

    def add(self, index: int, episode: Episode) -> None:
        write_episode_part(self.parts, index, episode)

    def commit(self) -> list[int]:
        """Append the pending parts to the file; returns the indices added."""
        added = append_parts(self.parts, self.path, self.root_attrs)
        self._attrs = None
        return added

    def record_missing(
        self, indices: list[int], make: Callable[[int], Episode], log: Callable[[str], None]
    ) -> int:
        """Record the episodes of `indices` not held yet (`make(index)`), then commit them;
        returns how many were recorded."""
        held = self.held()
        todo = [i for i in indices if i not in held]
        for n, index in enumerate(todo, 1):
            self.add(index, make(index))
            if n % 10 == 0 or n == len(todo):
                log(f"  recorded {n}/{len(todo)}")
        self.commit()
        return len(todo)
