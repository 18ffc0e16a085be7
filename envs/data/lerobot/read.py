"""A LeRobotDataset v3 directory read as `envs.data.episode.Episode`s, behind the same interface as
`envs.data.hdf5.EpisodeReader` (``attrs``, ``len``, indexing, ``episode_attrs``, ``goal_pixels``),
so everything that opens a dataset through `envs.data.open_dataset` reads either format.

Metadata and every parquet row are read and checked when the reader opens (missing files or
columns, wrong counts, non-finite values); a video is decoded, and its frames checked against
the rows' timestamps, when its episode is read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.checks import outside_bounds
from envs.data.episode import DatasetError, Episode, bad_sim_states, non_finite
from envs.data.lerobot.columns import column, png_image, read_parquet, square
from envs.data.lerobot.layout import (
    EPISODE_ATTRS,
    EXTRA,
    GOAL_IMAGE,
    GOAL_STATE,
    INFO_PATH,
    REWARD,
    SIM_STATE,
    STATS_PATH,
    LeRobotKeys,
    file_sha256,
    info_digest,
)
from envs.data.lerobot.video import TIMESTAMP_TOLERANCE_S, VideoDecodeError, decode_span

_INFO_FIELDS = ("codebase_version", "fps", "features", "data_path")
_EPISODE_COLUMNS = (
    "episode_index",
    "length",
    "dataset_from_index",
    "dataset_to_index",
    "data/chunk_index",
    "data/file_index",
)


class LeRobotReader:
    """Validated read-only view of one LeRobot v3 dataset; iterating yields `Episode`s."""

    def __init__(self, path: str | Path, keys: LeRobotKeys | None = None) -> None:
        self.path, self.keys = Path(path), keys or LeRobotKeys()
        self.info = self._load_info()
        self.fps = self.info["fps"]
        self.camera_key = self._camera_key()
        self.shapes = {k: self._vector(k) for k in (self.keys.state_key, self.keys.action_key)}
        self._episodes = self._load_episodes()
        self._rows = self._load_rows()
        self.names = [f"episode_{int(e)}" for e in self._episodes["episode_index"]]
        self.attrs = self._dataset_attrs()
        self._check_action_bounds()
        self.checksums_verified = self._verify_checksums()

    # ------------------------------------------------------------------ metadata
    def _fail(self, problem: str) -> DatasetError:
        return DatasetError(f"{self.path}: {problem}")

    def _load_info(self) -> dict[str, Any]:
        info_path = self.path / INFO_PATH
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: no such LeRobot dataset directory")
        if not info_path.is_file():
            raise DatasetError(
                f"{self.path} is a directory without {INFO_PATH}: not a LeRobot v3 dataset "
                "(wm-collect's HDF5 datasets are files)"
            )
        try:
            info = json.loads(info_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(f"{info_path}: not valid JSON ({err})") from err
        missing = [k for k in _INFO_FIELDS if k not in info]
        if missing:
            raise DatasetError(f"{info_path}: missing fields {missing}")
        version = str(info["codebase_version"])
        if not version.startswith("v3."):
            raise DatasetError(
                f"{info_path}: codebase_version={version!r}, this reader reads v3.x "
                "(convert v2.1 with lerobot's convert_dataset_v21_to_v30)"
            )
        _check_info_fields(info_path, info)
        return info

    def _file(self, template: str, **fields: Any) -> str:
        """``info[template]`` (data_path, video_path) filled in; a template naming other fields
        than LeRobot's (``chunk_index``, ``file_index``, ``video_key``) is refused."""
        try:
            return self.info[template].format(**fields)
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            raise DatasetError(
                f"{self.path / INFO_PATH}: {template}={self.info[template]!r} is not a path "
                f"template over {sorted(fields)} ({type(err).__name__}: {err})"
            ) from err

    def _camera_key(self) -> str:
        features = self.info["features"]
        cameras = [k for k, f in features.items() if f.get("dtype") in ("video", "image")]
        key = self.keys.camera_key
        if key is None:
            if "observation.image" in cameras:
                key = "observation.image"
            else:
                key = next((k for k in cameras if k.startswith("observation.images.")), None)
            if key is None:
                raise self._fail(f"no camera feature (video/image dtype) in {INFO_PATH}")
        if key not in cameras:
            raise self._fail(
                f"lerobot.camera_key={key!r} is not a video or image feature; cameras: {cameras}"
            )
        feature = features[key]
        if feature["dtype"] == "video" and "video_path" not in self.info:
            raise self._fail(f"{INFO_PATH} has video feature {key!r} but no video_path")
        shape = list(feature.get("shape", []))
        if len(shape) != 3 or shape[-1] != 3:
            raise self._fail(f"camera {key!r} shape {shape}: expected [height, width, 3]")
        height, width = shape[:2]
        if self.keys.image_size is None and height != width:
            raise self._fail(
                f"camera {key!r} is {height}x{width}, not square: set lerobot.image_size=N to "
                "centre-crop and resize it"
            )
        self.image_size = self.keys.image_size or height
        return key

    def _vector(self, key: str) -> int:
        feature = self.info["features"].get(key)
        which = "state_key" if key == self.keys.state_key else "action_key"
        if feature is None:
            names = sorted(self.info["features"])
            raise self._fail(f"lerobot.{which}={key!r} is not a feature; features: {names}")
        shape = list(feature.get("shape", []))
        if not str(feature.get("dtype", "")).startswith("float") or len(shape) != 1:
            raise self._fail(f"feature {key!r} is {feature.get('dtype')} {shape}: want 1-D float")
        return int(shape[0])

    def _load_episodes(self) -> dict[str, np.ndarray]:
        import pyarrow as pa

        files = sorted((self.path / "meta/episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise self._fail("no meta/episodes/chunk-*/file-*.parquet")
        needed = list(_EPISODE_COLUMNS)
        video = self.info["features"][self.camera_key]["dtype"] == "video"
        if video:
            needed += [f"videos/{self.camera_key}/{c}" for c in ("chunk_index", "file_index")]
            needed += [f"videos/{self.camera_key}/{c}" for c in ("from_timestamp", "to_timestamp")]
        tables = [read_parquet(f, needed, "meta/episodes") for f in files]
        table = pa.concat_tables(tables, promote_options="permissive")
        where = f"{self.path}/meta/episodes"
        cols = {c: column(table, c, len(table), where) for c in needed}
        for optional in ("tasks", GOAL_STATE, GOAL_IMAGE, EPISODE_ATTRS):
            if optional in table.column_names:
                cols[optional] = table.column(optional).to_pylist()
        order = np.argsort(cols["episode_index"], kind="stable")
        cols = {
            k: (v[order] if isinstance(v, np.ndarray) else [v[i] for i in order])
            for k, v in cols.items()
        }
        total = self.info.get("total_episodes", len(order))
        if len(order) != total:
            raise self._fail(
                f"meta/episodes lists {len(order)} episodes, info.json total_episodes={total}"
            )
        lengths = cols["dataset_to_index"] - cols["dataset_from_index"]
        if (lengths != cols["length"]).any() or (lengths < 2).any():
            bad = int(np.argmax((lengths != cols["length"]) | (lengths < 2)))
            raise self._fail(
                f"episode {int(cols['episode_index'][bad])}: length={int(cols['length'][bad])}, "
                f"dataset_to_index - dataset_from_index = {int(lengths[bad])} (need equal, >= 2)"
            )
        if video:  # every file exists now; frames are checked against rows when decoded
            key = self.camera_key
            files = {
                (int(c), int(f))
                for c, f in zip(
                    cols[f"videos/{key}/chunk_index"], cols[f"videos/{key}/file_index"], strict=True
                )
            }
            for chunk, file in sorted(files):
                rel = self._file("video_path", video_key=key, chunk_index=chunk, file_index=file)
                if not (self.path / rel).is_file():
                    raise self._fail(f"video file {rel} (camera {key!r}) is missing")
            self._check_video_spans(cols, key)
        return cols

    def _check_video_spans(self, cols: dict[str, Any], key: str) -> None:
        """Each episode's ``[from_timestamp, to_timestamp)`` span is ``length / fps`` long (to
        half a frame) and does not overlap the next episode's in the same file: a shifted span
        would read its neighbour's frames, which the frame timestamps alone do not reveal."""
        prefix = f"videos/{key}/"
        start, end = cols[prefix + "from_timestamp"], cols[prefix + "to_timestamp"]
        length, fps = cols["length"], float(self.fps)
        half_frame = 0.5 / fps
        for e in range(len(length)):
            name = f"episode {int(cols['episode_index'][e])}"
            if (
                start[e] < -TIMESTAMP_TOLERANCE_S
                or abs((end[e] - start[e]) - length[e] / fps) > half_frame
            ):
                raise self._fail(
                    f"meta/episodes: {name} ({key}): span [{start[e]:.4f}, {end[e]:.4f}) s is "
                    f"not its {int(length[e])} frames at fps={self.fps} "
                    f"({length[e] / fps:.4f} s): from_timestamp / to_timestamp were edited"
                )
        files = list(zip(cols[prefix + "chunk_index"], cols[prefix + "file_index"], strict=True))
        for f in set(files):
            mine = sorted((start[e], end[e], e) for e in range(len(files)) if files[e] == f)
            for (_, a_end, a), (b_start, _, b) in zip(mine, mine[1:], strict=False):
                if b_start < a_end - TIMESTAMP_TOLERANCE_S:
                    raise self._fail(
                        f"meta/episodes: episodes {int(cols['episode_index'][a])} and "
                        f"{int(cols['episode_index'][b])} ({key}) overlap in their video file "
                        f"([..., {a_end:.4f}) and [{b_start:.4f}, ...) s)"
                    )

    def _verify_checksums(self) -> int | None:
        """sha256 of every file our exporter recorded in info.json (a flipped bit in a parquet
        changes an action and still parses); -> files verified, None when none are recorded
        (a dataset written by another tool)."""
        recorded = self.info.get(EXTRA, {}).get("checksums")
        if recorded is None:
            return None
        if not isinstance(recorded, dict):
            raise self._fail(f"{INFO_PATH}: {EXTRA}.checksums is not a mapping of files")
        if self.info[EXTRA].get("info_sha256") != info_digest(self.info):
            raise self._fail(
                f"{INFO_PATH} differs from the info_sha256 recorded in it: a field was edited "
                "after it was written (fps, features, the env contract...); restore or re-export"
            )
        for rel, digest in sorted(recorded.items()):
            path = self.path / rel
            if not path.is_file():
                raise self._fail(f"{rel} is missing (its sha256 is recorded in {INFO_PATH})")
            if file_sha256(path) != digest:
                raise DatasetError(
                    f"{path}: sha256 differs from the one recorded in {INFO_PATH}: the file "
                    "changed after it was written (a flipped bit, an edit); restore or re-export it"
                )
        return len(recorded)

    # ------------------------------------------------------------------ rows
    def _row_keys(self) -> list[str]:
        """Per-row values kept for each episode: timestamp, state, action, and the simulator
        state and reward when present."""
        present = [k for k in (SIM_STATE, REWARD) if k in self.info["features"]]
        return ["timestamp", self.keys.state_key, self.keys.action_key, *present]

    def _load_rows(self) -> dict[str, list]:
        """Every episode's rows (key -> one array per episode; ``image``: PNG cells or None),
        each data file read once."""
        keys = self._row_keys()
        out: dict[str, list] = {k: [] for k in [*keys, "image"]}
        files: dict[str, dict[str, Any]] = {}
        eps = self._episodes
        for e in range(len(eps["episode_index"])):
            rel = self._file(
                "data_path",
                chunk_index=int(eps["data/chunk_index"][e]),
                file_index=int(eps["data/file_index"][e]),
            )
            if rel not in files:
                files[rel] = self._read_data_file(rel, keys)
            cols = files[rel]
            rows = self._episode_rows(cols, e, rel)
            self._check_timestamps(cols["timestamp"][rows], f"{self.path / rel}: episode "
                                   f"{int(eps['episode_index'][e])}")  # fmt: skip
            for key in keys:
                values = cols[key][rows]  # (N,) or (N, D)
                # NaN in a simulator state marks a number it lacks (Push-T's first last action)
                check = bad_sim_states if key == SIM_STATE else lambda v, k=key: non_finite(k, v)
                if problem := check(values):
                    raise DatasetError(
                        f"{self.path / rel}: episode {int(eps['episode_index'][e])}: {problem}; "
                        "one NaN would make every trained weight NaN"
                    )
                out[key].append(values)
            out["image"].append([cols["image"][r] for r in rows] if "image" in cols else None)
        for key, dim in self.shapes.items():
            if out[key][0].shape[-1] != dim:
                raise self._fail(
                    f"data column {key!r} has {out[key][0].shape[-1]} values per row, "
                    f"info.json says shape [{dim}]"
                )
        return out

    def _check_timestamps(self, stamps: np.ndarray, where: str) -> None:
        """Row t's timestamp is t / fps (LeRobot writes frame_index / fps): an fps that the
        rows contradict would give the model another control rate than the data's."""
        stamps = np.asarray(stamps, np.float64).reshape(-1)
        want = np.arange(len(stamps)) / float(self.fps)
        tol = TIMESTAMP_TOLERANCE_S + 2 * float(np.spacing(np.float32(np.abs(stamps).max())))
        off = np.abs(stamps - want)
        if off.max() > tol:
            t = int(np.argmax(off > tol))  # the first row out of place
            raise DatasetError(
                f"{where}: row {t} has timestamp {stamps[t]:.4f} s, fps={self.fps} in "
                f"{INFO_PATH} puts it at {want[t]:.4f} s: fps and timestamps disagree"
            )

    def _read_data_file(self, rel: str, keys: list[str]) -> dict[str, Any]:
        """One data parquet file as arrays (``image``: the camera's PNG cells, if stored so)."""
        path = self.path / rel
        image = self.info["features"][self.camera_key]["dtype"] == "image"
        names = ["episode_index", "frame_index", "index", *keys]
        table = read_parquet(path, names + ([self.camera_key] if image else []), "data")
        cols = {c: column(table, c, len(table), str(path)) for c in names}
        if image:
            cols["image"] = table.column(self.camera_key).to_pylist()
        return cols

    def _episode_rows(self, cols: dict[str, Any], e: int, rel: str) -> np.ndarray:
        """Row numbers of the `e`-th listed episode in its data file, in frame order, checked
        against meta/episodes (length, frame_index 0.., index from dataset_from_index)."""
        eps = self._episodes
        ep_index = int(eps["episode_index"][e])
        rows = np.flatnonzero(cols["episode_index"] == ep_index)
        rows = rows[np.argsort(cols["frame_index"][rows], kind="stable")]
        start, length = int(eps["dataset_from_index"][e]), int(eps["length"][e])
        where = f"{self.path / rel}: episode {ep_index}"
        if len(rows) != length:
            raise DatasetError(f"{where}: {len(rows)} rows, meta/episodes says length {length}")
        if (cols["frame_index"][rows] != np.arange(length)).any() or (
            cols["index"][rows] != np.arange(start, start + length)
        ).any():
            raise DatasetError(
                f"{where}: frame_index / index are not 0..{length - 1} / "
                f"{start}..{start + length - 1} (dataset_from_index)"
            )
        return rows

    # ------------------------------------------------------------------ contract and attrs
    def _dataset_attrs(self) -> dict[str, Any]:
        """The `envs.data.hdf5` root attrs this dataset stands for (env id, rate, contract)."""
        extra = self.info.get(EXTRA, {})
        attrs = copy.deepcopy(extra.get("attrs", {}))  # edited below; info stays as read
        state_dim, action_dim = self.shapes[self.keys.state_key], self.shapes[self.keys.action_key]
        contract = dict(extra.get("env_contract", {}))
        if contract:  # exported by us: the recorded contract, sized to the chosen features
            contract.update(image_size=self.image_size, state_dim=state_dim, action_dim=action_dim)
        else:
            low, high = self._action_bounds()
            contract = {
                "env_id": f"lerobot/{self.info.get('robot_type') or self.path.name}",
                "control_hz": float(self.fps),
                "action_low": low,
                "action_high": high,
                "image_size": self.image_size,
                "state_dim": state_dim,
                "action_dim": action_dim,
            }
        attrs.setdefault("env_kwargs", {})
        # Frames read at another size (lerobot.image_size) come from an env rendering at it.
        env_args = attrs.get("env_args")
        inner = env_args.get("env_kwargs") if isinstance(env_args, dict) else None
        for kwargs in (attrs["env_kwargs"], inner):
            if isinstance(kwargs, dict) and "image_size" in kwargs:
                kwargs["image_size"] = self.image_size
        attrs.setdefault("camera", {"name": self.camera_key})
        attrs.setdefault("policy", {"name": "lerobot"})
        attrs |= {
            "env_id": contract["env_id"],
            "control_hz": contract["control_hz"],
            "image_size": self.image_size,
            "env_contract": contract,
            "lerobot_keys": {**self.keys.to_dict(), "camera_key": self.camera_key},
        }
        return attrs

    def _action_bounds(self) -> tuple[list[float], list[float]]:
        """Action box from meta/stats.json min / max, else from the rows themselves."""
        key = self.keys.action_key
        stats_path = self.path / STATS_PATH
        if stats_path.is_file():
            try:
                stats = json.loads(stats_path.read_text()).get(key, {})
            except json.JSONDecodeError as err:
                raise DatasetError(f"{stats_path}: not valid JSON ({err})") from err
            if "min" in stats and "max" in stats:
                low, high = np.asarray(stats["min"], float), np.asarray(stats["max"], float)
                if (
                    low.shape == high.shape == (self.shapes[key],)
                    and np.isfinite([low, high]).all()
                ):
                    return low.tolist(), high.tolist()
                raise DatasetError(
                    f"{stats_path}: {key} min/max are not {self.shapes[key]} finite values"
                )
        actions = np.concatenate(self._rows[key])
        return actions.min(0).tolist(), actions.max(0).tolist()

    def _check_action_bounds(self) -> None:
        """Every action inside the contract's box, as `envs.data.hdf5` checks HDF5 files: a
        recorded contract the data breaks, or stats.json min / max that do not describe it."""
        contract = self.attrs["env_contract"]
        low, high = np.asarray(contract["action_low"]), np.asarray(contract["action_high"])
        for i, actions in enumerate(self._rows[self.keys.action_key]):
            if problem := outside_bounds(actions, low, high):
                raise self._fail(f"{self.names[i]}: {problem} (env contract or stats.json)")

    # ------------------------------------------------------------------ episodes
    def __len__(self) -> int:
        return len(self.names)

    def episode_attrs(self, i: int) -> dict[str, Any]:
        """Attrs of episode i (num_samples, task, what our exporter stored) without its frames."""
        eps = self._episodes
        stored = eps.get(EPISODE_ATTRS, [None] * len(self))[i]
        attrs = json.loads(stored) if stored else {}
        tasks = eps.get("tasks", [None] * len(self))[i] or []
        return {
            "name": self.names[i],
            **attrs,
            "num_samples": int(eps["length"][i]) - 1,
            **({"task": tasks[0]} if tasks and not stored else {}),  # a foreign dataset's
        }

    def frames(self, i: int, last_only: bool = False) -> np.ndarray:
        """Episode i's frames `(N, S, S, 3)` uint8 (S = the image size), decoded and checked."""
        stamps = self._rows["timestamp"][i][-1:] if last_only else self._rows["timestamp"][i]
        if self._rows["image"][i] is not None:
            images = self._rows["image"][i][-1:] if last_only else self._rows["image"][i]
            frames = np.stack([png_image(img, f"{self.path}: {self.names[i]}") for img in images])
        else:
            eps, key = self._episodes, self.camera_key
            chunk, file = (
                int(eps[f"videos/{key}/chunk_index"][i]),
                int(eps[f"videos/{key}/file_index"][i]),
            )
            rel = self._file("video_path", video_key=key, chunk_index=chunk, file_index=file)
            try:
                frames = decode_span(
                    self.path / rel, float(eps[f"videos/{key}/from_timestamp"][i]), stamps,
                    f"{self.path}: {self.names[i]}",
                )  # fmt: skip
            except VideoDecodeError as err:
                raise DatasetError(str(err)) from err
        shape = self.info["features"][self.camera_key]["shape"]
        if list(frames.shape[1:]) != list(shape):  # resized silently otherwise
            raise DatasetError(
                f"{self.path}: {self.names[i]}: camera {self.camera_key!r} frames are "
                f"{list(frames.shape[1:])}, {INFO_PATH} says shape {shape}"
            )
        return square(frames, self.image_size)

    def goal_pixels(self, i: int) -> np.ndarray:
        """Episode i's goal image `(S, S, 3)`: the stored one, else its last frame (hindsight)."""
        stored = self._episodes.get(GOAL_IMAGE, [None] * len(self))[i]
        if stored:
            return square(
                png_image({"bytes": stored}, f"{self.path}: {self.names[i]} goal")[None],
                self.image_size,
            )[0]
        return self.frames(i, last_only=True)[0]

    def __getitem__(self, i: int) -> Episode:
        rows, keys = self._rows, self.keys
        states = rows[keys.state_key][i].astype(np.float32)  # (N, S)
        goal_state = self._episodes.get(GOAL_STATE, [None] * len(self))[i]
        return Episode(
            pixels=self.frames(i),
            states=states,
            actions=rows[keys.action_key][i][:-1].astype(np.float32),  # (N - 1, A)
            goal_pixels=self.goal_pixels(i),
            goal_state=np.asarray(goal_state if goal_state is not None else states[-1], np.float32),
            attrs={"env_id": self.attrs["env_id"], **self.episode_attrs(i)},
            rewards=rows[REWARD][i].reshape(-1)[:-1].astype(np.float32) if REWARD in rows else None,
            sim_states=rows[SIM_STATE][i].astype(np.float64) if SIM_STATE in rows else None,
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Nothing stays open between reads (files are opened per episode)."""

    def __enter__(self) -> LeRobotReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_info_fields(info_path: Path, info: dict[str, Any]) -> None:
    """The info.json fields every read relies on have the types LeRobot writes: ``fps`` a
    number (``true`` is not 1 Hz), ``features`` a mapping of feature dicts with integer
    shapes, each video's ``video.fps`` the dataset's, path templates strings."""
    fps = info["fps"]
    if isinstance(fps, bool) or not (isinstance(fps, int | float) and 0 < fps < float("inf")):
        raise DatasetError(f"{info_path}: fps={fps!r} must be a rate > 0 (frames per second)")
    features = info["features"]
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        raise DatasetError(
            f"{info_path}: features must map each feature name to its dtype / shape, got "
            f"{str(features)[:80]}"
        )
    for key, feature in features.items():
        shape = feature.get("shape", [])
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape
        ):
            raise DatasetError(f"{info_path}: feature {key!r} shape {shape!r}: want [n, ...]")
        video_fps = (
            feature.get("info", {}).get("video.fps")
            if isinstance(feature.get("info"), dict)
            else None
        )
        if video_fps is not None and video_fps != fps:
            raise DatasetError(
                f"{info_path}: feature {key!r} video.fps={video_fps!r}, but fps={fps!r}"
            )
    extra = info.get(EXTRA, {})
    if not isinstance(extra, dict) or not all(
        isinstance(extra.get(k, {}), dict) for k in ("attrs", "env_contract")
    ):
        raise DatasetError(f"{info_path}: {EXTRA} must map attrs / env_contract to objects")
    for name in ("data_path", "video_path"):
        if name in info and not isinstance(info[name], str):
            raise DatasetError(f"{info_path}: {name}={info[name]!r} is not a path template")
