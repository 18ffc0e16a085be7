"""`protocol=dataset` (DINO-WM, LeWM): start from a recorded state, reach the frame k steps later.

Each `reset(seed)` draws, from a held-out recorded dataset, an episode and a start index t; it
sets the simulator to the recorded state at t + k, renders that frame as the goal image and
keeps its task positions, then sets the simulator to the state at t. The agent must get there
from pixels; it is scored by the env's own task distance (envs/common/distance.py; Panda: the
end-effector and the cube, metres), which no planner sees. The oracle plans towards the same
goal positions (agent/baselines.py reads `goal_features` through the wrapper chain).

What an env needs: a simulator state envs/common/sim_state.py can restore from the dataset's
`data/demo_K/states` (recorded by `wm-collect` through the same module) and `render()` (resized
here to the observation's pixel size when it differs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from envs.common.contract import EnvContract
from envs.common.distance import DistanceConfig
from envs.common.sim_state import get_sim_state, set_sim_state
from envs.data import open_dataset
from envs.data.episode import DatasetError, Episode
from envs.goals.goal_state import StateGoalWrapper


def check_recorded_env(reader: Any, env: gym.Env) -> None:
    """Refuse an env that differs from the one the dataset was recorded in: its control rate,
    action box, image size, dims, revision, camera and physics step (`EnvContract`). Goals a
    recording reached in k steps at 5 Hz, or with a wider action box, are other goals at
    10 Hz, and frames of another camera are other frames, whatever drives the env.

    Every agent kind meets this check, because every protocol=dataset env is built here."""
    try:
        recorded = EnvContract.from_dataset_attrs(reader.attrs)
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{reader.path}: cannot tell which env recorded it ({err})") from err
    recorded.check_same(
        EnvContract.from_env(env),
        where=f"{reader.path}: the dataset's env vs the eval env",
        hint="make the eval env as the dataset's env_kwargs attr says (env.kwargs / +env.kwargs.*)",
    )


class DatasetGoal(StateGoalWrapper):
    """Start and goal from a recorded trajectory, `offset` control steps apart.

    `offset` is k, the default planning horizon in control steps (blocks x block size); the
    episode budget is the caller's (2k in the anchors' protocol). Episodes are drawn with
    `numpy.random.default_rng(seed)`, so a seed always gives the same start and goal.
    """

    def __init__(
        self,
        env: gym.Env,
        dataset: str | Path,
        offset: int,
        distance: DistanceConfig | None = None,
    ) -> None:
        super().__init__(env, distance)
        if offset < 1:
            raise ValueError(f"dataset goal offset={offset}: must be >= 1 control step")
        self.offset = offset
        self._reader = open_dataset(dataset)
        try:
            own_id = env.spec.id if env.spec else None
            recorded_id = self._reader.attrs["env_id"]
            if own_id is not None and recorded_id != own_id:
                raise ValueError(f"{dataset}: recorded in {recorded_id!r}, not {own_id!r}")
            check_recorded_env(self._reader, env)
        except BaseException:
            self._reader.close()
            raise
        self._lengths = [
            int(self._reader.episode_attrs(i)["num_samples"]) for i in range(len(self._reader))
        ]
        self._usable = [i for i, n in enumerate(self._lengths) if n >= offset]
        if not self._usable:
            raise ValueError(
                f"{dataset}: no episode has {offset} steps (lengths {sorted(set(self._lengths))})"
            )
        self._movable: np.ndarray | None = None  # (K,) parts that move in the data; lazy
        self.start: tuple[int, int] | None = None  # (episode index, start step) of this episode
        self.recorded_plan: np.ndarray | None = None  # (offset, A) the recorded start -> goal
        # The goal frame's recorded simulator state: what a test beyond the task positions
        # reads (the cube's orientation in bench/anchors.py's strict criterion).
        self.goal_sim_state: np.ndarray | None = None
        self._replayed = 0  # recorded actions the expert row has used so far

    def _pixels(self) -> np.ndarray:
        frame = np.asarray(self.env.render(), np.uint8)[..., :3]
        size = self.observation_space["pixels"].shape[:2]
        if frame.shape[:2] != size:
            frame = np.asarray(Image.fromarray(frame).resize(size[::-1], Image.BILINEAR))
        return frame.copy()  # (H, W, 3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            raise ValueError("protocol=dataset needs reset(seed=...) to pick a recorded start")
        rng = np.random.default_rng(seed)
        index = self._usable[int(rng.integers(len(self._usable)))]
        start = int(rng.integers(self._lengths[index] - self.offset + 1))
        episode = self._reader[index]
        if episode.sim_states is None:
            raise ValueError(
                f"{self._reader.path}: {episode.attrs['name']} has no simulator states; record "
                "it with wm-collect from an env whose state envs/common/sim_state.py can save"
            )
        movable = self.movable_parts()  # before this episode's states: it resets the env
        # Same task instance as the recording (targets, colours) before restoring its states.
        _, info = self.env.reset(seed=int(episode.attrs.get("seed", seed)), options=options)
        self._restore(episode, start + self.offset)
        goal_pixels, self.goal_features = self._pixels(), self.task_distance.features()
        self._restore(episode, start)
        shift = self.task_distance.part_distances(self.task_distance.features(), self.goal_features)
        obs = {"pixels": self._pixels(), "state": episode.states[start].astype(np.float32)}
        self.start = (index, start)
        self.recorded_plan = np.asarray(episode.actions[start : start + self.offset], np.float32)
        self.goal_sim_state = np.asarray(episode.sim_states[start + self.offset])
        self._replayed = 0
        info = self._score(info)
        info["goal_pixels"] = goal_pixels
        info["goal_state"] = episode.states[start + self.offset].astype(np.float32)
        # Every task part that moves at all in the data (Panda: end effector and cube) is
        # farther from its goal place than the success threshold: the object has to be moved,
        # not only the arm. The subset the protocol's headline hides (most recorded 10-step
        # windows leave it put). Parts that never move (a foreign env's target body) are left
        # out, or no episode would ever count.
        moves = shift[movable] > self.task_distance.threshold
        info["every_position_moves"] = bool(movable.any() and moves.all())
        return obs, info

    def movable_parts(self, episodes: int = 16, frames: int = 5) -> np.ndarray:
        """(K,) bool: task parts that move farther than the success threshold within some of
        ``episodes`` recorded episodes (``frames`` states each, against the first).

        Measured once, on the recorded states, because a static body (a goal marker, a
        target) is static in every episode while a movable one may rest in a given episode.
        """
        if self._movable is not None:
            return self._movable
        picks = np.random.default_rng(0).permutation(len(self._reader))[:episodes]
        movable = None
        for i in picks:
            episode = self._reader[int(i)]
            if episode.sim_states is None:
                continue
            self.env.reset(seed=int(episode.attrs.get("seed", 0)))  # the recorded task instance
            steps = np.unique(np.linspace(0, len(episode.sim_states) - 1, frames).astype(int))
            readings = []
            for t in steps:
                self._restore(episode, int(t))
                readings.append(self.task_distance.features())
            moved = [self.task_distance.part_distances(r, readings[0]) for r in readings[1:]]
            moved = np.max(moved, axis=0) > self.task_distance.threshold if moved else False
            movable = moved if movable is None else movable | moved
        self._movable = np.atleast_1d(movable if movable is not None else np.zeros(0, bool))
        return self._movable

    def _restore(self, episode: Episode, step: int) -> None:
        """Set the simulator to the recorded state at ``step``; a state it cannot take (another
        size, NaN where it needs a number) is refused naming the file, episode and step."""
        state = episode.sim_states[step]
        where = f"{self._reader.path}: {episode.attrs['name']}: states at step {step}"
        own = np.shape(get_sim_state(self.env))
        if np.shape(state) != own:
            raise DatasetError(
                f"{where} have {np.shape(state)} numbers, this env's simulator state {own}: "
                "recorded from another model or version of the env"
            )
        try:
            set_sim_state(self.env, state)
        except (ValueError, TypeError) as err:
            raise DatasetError(f"{where}: {err}") from err
        if not np.isfinite(self.task_distance.features()).all():
            raise DatasetError(f"{where}: the restored scene has non-finite task positions")

    def replay_action(self, obs: dict, info: dict) -> np.ndarray:
        """The expert row of protocol=dataset: the recorded actions that led from the start to
        the goal, then holding still (a policy `(obs, info) -> action`)."""
        del obs, info
        if self.recorded_plan is not None and self._replayed < len(self.recorded_plan):
            self._replayed += 1
            return self.recorded_plan[self._replayed - 1].copy()
        return np.zeros(self.action_space.shape, np.float32)

    def close(self) -> None:
        self._reader.close()
        super().close()
