"""LeRobotDataset v3 directories (envs/data/lerobot): HDF5 -> LeRobot -> HDF5 round trip, the
documented v3 layout, a dataset written the way LeRobot writes one (N actions for N frames,
several files, non-square cameras), refusals of corrupt ones, and a wm-train smoke run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envs.data import open_dataset
from envs.data.episode import DatasetError
from envs.data.lerobot import LeRobotKeys, LeRobotReader, LeRobotSource
from envs.data.lerobot.convert import export_hdf5, import_lerobot
from envs.data.lerobot.video import VideoFileWriter, decode_span
from tests.synthetic import synthetic_episodes
from tests.test_train import SYNTHETIC_CONTRACT, TINY_WM_OVERRIDES, write_h5
from world_model.training.latents import dataset_contract


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """(HDF5 file, its LeRobot export): 3 synthetic episodes of 5 actions, 16 px frames."""
    root = tmp_path_factory.mktemp("lerobot")
    h5 = write_h5(root / "d.h5", synthetic_episodes(3, length=5, size=16))
    return h5, export_hdf5(h5, root / "d_lerobot")


def test_round_trip_is_exact(exported, tmp_path):
    h5, directory = exported
    back = import_lerobot(directory, tmp_path / "back.h5")
    with open_dataset(h5) as a, open_dataset(directory) as b, open_dataset(back) as c:
        assert len(a) == len(b) == len(c) == 3
        for x, y, z in zip(a, b, c, strict=True):
            for field in ("pixels", "states", "actions", "goal_pixels", "goal_state"):
                # lossless codec (H.264 RGB, crf 0): frames come back bit-exact
                assert np.array_equal(getattr(x, field), getattr(y, field)), field
                assert np.array_equal(getattr(x, field), getattr(z, field)), field
            assert y.attrs["num_samples"] == x.attrs["num_samples"] == 5
        assert b.attrs["env_id"] == "synthetic" and b.attrs["control_hz"] == 5.0
    assert dataset_contract([directory]) == dataset_contract([back]) == SYNTHETIC_CONTRACT


def test_full_files_roll_over_to_the_next(exported, tmp_path, monkeypatch):
    """Past data_files_size_in_mb / video_files_size_in_mb the writer opens file-001 (as
    LeRobot does); here every episode fills its files, so each lands in its own."""
    import envs.data.lerobot.write as write

    monkeypatch.setattr(write, "DATA_FILE_MB", 0)
    monkeypatch.setattr(write, "VIDEO_FILE_MB", 0)
    h5, single = exported
    split = export_hdf5(h5, tmp_path / "split")
    assert len(list(split.glob("data/chunk-000/file-*.parquet"))) == 3
    assert len(list(split.glob("videos/observation.image/chunk-000/file-*.mp4"))) == 3
    episodes = pq.read_table(split / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["videos/observation.image/from_timestamp"] for e in episodes] == [0.0] * 3
    with open_dataset(single) as a, open_dataset(split) as b:
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x.pixels, y.pixels) and np.array_equal(x.actions, y.actions)


def test_layout_follows_lerobot_v3(exported):
    _, d = exported
    info = json.loads((d / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 5
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 18, 1)
    features = info["features"]
    assert features["observation.image"]["dtype"] == "video"
    assert features["observation.image"]["shape"] == [16, 16, 3]
    assert features["observation.image"]["info"]["video.codec"] == "h264"
    assert (features["action"]["dtype"], features["action"]["shape"]) == ("float32", [7])
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]

    episodes = pq.read_table(d / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_from_index"] for e in episodes] == [0, 6, 12]
    assert [e["videos/observation.image/from_timestamp"] for e in episodes] == [0.0, 1.2, 2.4]
    assert episodes[0]["tasks"] == ["synthetic"] and episodes[0]["length"] == 6
    assert len(episodes[0]["stats/observation.image/mean"]) == 3  # (3, 1, 1) per channel

    rows = pq.read_table(d / "data/chunk-000/file-000.parquet")
    assert rows.schema.field("action").type == pa.list_(pa.float32(), 7)  # fixed-size list
    assert rows.column("index").to_pylist() == list(range(18))
    assert rows.column("timestamp").to_pylist()[:2] == [0.0, pytest.approx(0.2)]

    tasks = pq.read_table(d / "meta/tasks.parquet")  # pandas reads ``task`` as the index
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks.to_pylist() == [{"task_index": 0, "task": "synthetic"}]
    stats = json.loads((d / "meta/stats.json").read_text())
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count"}
    assert max(stats["action"]["max"]) <= 0.25 + 1e-6 and stats["action"]["count"] == [18]
    assert stats["observation.image"]["count"] == [18 * 16 * 16]  # per-channel pixel values


FIXTURE = Path(__file__).parent / "fixtures/lerobot_written"


def test_reads_a_dataset_written_by_lerobot(tmp_path):
    """tests/fixtures/lerobot_written: written by lerobot 0.4.4's own LeRobotDataset writer
    (regenerate with tests/fixtures/make_lerobot_written.py): two AV1 cameras, 24x32 and
    16x16, 30 fps, 6-D state and action, episodes of 12, 9 and 15 frames."""
    ref = np.load(FIXTURE.with_suffix(".npz"))
    reader = LeRobotReader(FIXTURE, LeRobotKeys(camera_key="observation.images.wrist"))
    assert len(reader) == 3 and reader.attrs["env_contract"]["control_hz"] == 30.0
    for i, episode in enumerate(reader):
        np.testing.assert_array_equal(episode.states, ref[f"state{i}"])
        np.testing.assert_array_equal(episode.actions, ref[f"action{i}"][:-1])  # N - 1 moves
        # AV1 yuv420p at crf 30 is lossy: flat frames come back within one level
        assert np.abs(episode.pixels.astype(int) - ref[f"wrist{i}"]).max() <= 1
        assert episode.attrs["task"] == "pick the cube"
    front = LeRobotReader(FIXTURE, LeRobotKeys(image_size=16))  # default: first camera
    assert front.camera_key == "observation.images.front" and front[2].pixels.shape == (
        15,
        16,
        16,
        3,
    )
    contract = dataset_contract([LeRobotSource(FIXTURE, LeRobotKeys(image_size=16))])
    assert contract.env_id == "lerobot/so100" and contract.action_dim == 6
    stats = json.loads((FIXTURE / "meta/stats.json").read_text())["action"]
    assert contract.action_low == tuple(np.float32(stats["min"]).tolist())
    with pytest.raises(DatasetError, match=r"observation.state has 6 values.*holds 7"):
        import_lerobot(FIXTURE, tmp_path / "so100.h5", LeRobotKeys(image_size=16))
    assert not (tmp_path / "so100.h5").exists()


def _png_cell(image: np.ndarray) -> dict:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _write_native(root: Path, episodes: list[int], cameras: dict[str, tuple[int, int]]) -> Path:
    """A dataset laid out as LeRobot's writer lays it out (no latent_planner additions):
    N actions for N frames, one data and one video file per episode, lossy AV1 video."""
    rng = np.random.default_rng(0)
    features = {
        key: {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"]}
        for key, (h, w) in cameras.items()
    }
    features |= {
        "observation.images.still": {"dtype": "image", "shape": [8, 8, 3], "names": None},
        "observation.state": {"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {
        "codebase_version": "v3.0", "robot_type": "so101", "fps": 10, "features": features,
        "total_episodes": len(episodes), "total_frames": sum(episodes), "total_tasks": 1,
        "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    }  # fmt: skip
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/stats.json").write_text(
        json.dumps({"action": {"min": [-1.0, -2.0], "max": [1.0, 2.0]}})
    )
    rows, meta, start, frames = [], [], 0, {}
    for e, n in enumerate(episodes):
        table = {
            "observation.state": rng.normal(size=(n, 3)).astype(np.float32).tolist(),
            "action": rng.uniform(-1, 1, size=(n, 2)).astype(np.float32).tolist(),
            "timestamp": (np.arange(n, dtype=np.float32) / 10).tolist(),
            "frame_index": list(range(n)),
            "episode_index": [e] * n,
            "index": list(range(start, start + n)),
            "task_index": [0] * n,
        }
        stills = [_png_cell(np.full((8, 8, 3), 20 * t + e, np.uint8)) for t in range(n)]
        path = root / f"data/chunk-000/file-{e:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        # an ``image`` feature is a struct of PNG bytes and a path (LeRobot's embed_images)
        pq.write_table(pa.table(table | {"observation.images.still": stills}), path)
        rows.append(table)
        ep = {"episode_index": e, "tasks": ["pick"], "length": n, "data/chunk_index": 0,
              "data/file_index": e, "dataset_from_index": start, "dataset_to_index": start + n,
              "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}  # fmt: skip
        for key, (h, w) in cameras.items():
            video = root / f"videos/{key}/chunk-000/file-{e:03d}.mp4"
            writer = VideoFileWriter(video, 10, h, w, "av1")
            frames[(key, e)] = np.repeat(
                np.linspace(0, 255, n * h * w, dtype=np.uint8).reshape(n, h, w, 1), 3, axis=-1
            )
            t0, t1 = writer.append(frames[(key, e)])
            writer.close()
            ep |= {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": e,
                   f"videos/{key}/from_timestamp": t0, f"videos/{key}/to_timestamp": t1}  # fmt: skip
        meta.append(ep)
        start += n
    pq.write_table(pa.Table.from_pylist(meta), root / "meta/episodes/chunk-000/file-000.parquet")
    root.joinpath("rows.json").write_text(json.dumps(rows))  # what the test compares against
    return root


def test_reads_a_dataset_in_lerobots_own_shape(tmp_path):
    cams = {"observation.images.top": (24, 32), "observation.images.wrist": (16, 16)}
    d = _write_native(tmp_path / "native", [6, 4], cams)
    rows = json.loads((d / "rows.json").read_text())
    with pytest.raises(
        DatasetError, match=r"observation.images.top.*24x32, not square.*image_size"
    ):
        LeRobotReader(d)  # the first observation.images.* is the default camera
    reader = LeRobotReader(d, LeRobotKeys(image_size=16))
    assert reader.camera_key == "observation.images.top" and len(reader) == 2
    ep = reader[1]
    assert ep.pixels.shape == (4, 16, 16, 3) and ep.states.shape == (4, 3)
    np.testing.assert_array_equal(ep.actions, np.asarray(rows[1]["action"][:-1], np.float32))
    np.testing.assert_array_equal(ep.goal_state, ep.states[-1])  # hindsight goal: last frame
    contract = dataset_contract([LeRobotSource(d, LeRobotKeys(image_size=16))])
    assert (contract.env_id, contract.control_hz, contract.image_size) == (
        "lerobot/so101",
        10.0,
        16,
    )
    assert contract.action_low == (-1.0, -2.0) and contract.action_high == (1.0, 2.0)  # stats.json

    wrist = LeRobotReader(d, LeRobotKeys(camera_key="observation.images.wrist"))
    frames = wrist.frames(0)  # AV1 yuv420p is lossy: within a few levels on a smooth ramp
    raw = np.repeat(np.linspace(0, 255, 6 * 16 * 16, dtype=np.uint8).reshape(6, 16, 16, 1), 3, -1)
    assert frames.shape == raw.shape
    assert np.abs(frames.astype(int) - raw).mean() < 4
    still = LeRobotReader(d, LeRobotKeys(camera_key="observation.images.still"))[0]
    assert (
        still.pixels.shape == (6, 8, 8, 3) and (still.pixels[:, 0, 0, 0] == np.arange(6) * 20).all()
    )


def _copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported[1], tmp_path / "copy"))


def _edit_info(d: Path, **changes) -> None:
    info = json.loads((d / "meta/info.json").read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key)
        else:
            info[key] = value
    (d / "meta/info.json").write_text(json.dumps(info))


def _nan_action(d: Path) -> None:
    path = d / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    actions = np.asarray(table.column("action").combine_chunks().flatten()).reshape(-1, 7).copy()
    actions[8, 1] = np.nan
    flat = pa.array(actions.reshape(-1), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, 7)
    pq.write_table(table.set_column(table.column_names.index("action"), "action", column), path)


def _narrowed_contract(d: Path) -> dict:
    extra = json.loads((d / "meta/info.json").read_text())["latent_planner"]
    extra["env_contract"]["action_high"][0] = 0.01  # the data moves up to 0.25
    return extra


def _drop_last_frame(d: Path) -> None:
    video = d / "videos/observation.image/chunk-000/file-000.mp4"
    frames = decode_span(video, 0.0, np.arange(18) / 5, "test")[:-1]
    video.unlink()
    writer = VideoFileWriter(video, 5, 16, 16, "lossless")
    writer.append(frames)
    writer.close()
    _drop_checksums(d)  # as another tool writes it: the frame check, not the checksum


def _drop_checksums(d: Path) -> None:
    extra = json.loads((d / "meta/info.json").read_text())["latent_planner"]
    del extra["checksums"], extra["info_sha256"]
    _edit_info(d, latent_planner=extra)


def _edit_episodes(d: Path, column: str, row: int, delta: float) -> None:
    path = d / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] += delta
    index = table.column_names.index(column)
    pq.write_table(table.set_column(index, column, pa.array(values, pa.float64())), path)


def _fps_everywhere(d: Path, fps: int) -> None:
    info = json.loads((d / "meta/info.json").read_text())
    info["features"]["observation.image"]["info"]["video.fps"] = fps
    _edit_info(d, fps=fps, features=info["features"])


def _camera_shape(d: Path, shape: list[int]) -> None:
    info = json.loads((d / "meta/info.json").read_text())
    info["features"]["observation.image"]["shape"] = shape
    _edit_info(d, features=info["features"])
    _drop_checksums(d)  # as another tool writes it: the frame check, not the info digest


def _string_column(d: Path, column: str) -> None:
    path = d / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    strings = pa.array([str(v) for v in table.column(column).to_pylist()])
    pq.write_table(table.set_column(table.column_names.index(column), column, strings), path)


def _shift_row_timestamps(d: Path, episode: int, delta: float) -> None:
    path = d / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    ep = np.asarray(table.column("episode_index"))
    stamps = np.asarray(table.column("timestamp")).copy()
    stamps[ep == episode] += np.float32(delta)
    column = pa.array(stamps, pa.float32())
    pq.write_table(
        table.set_column(table.column_names.index("timestamp"), "timestamp", column), path
    )


def _flip_an_action_bit(d: Path) -> None:
    """One bit of one stored action, in a parquet that still parses (issue 32 item 6: an
    action changed from 0.075 to 0.0656 and check / import exited 0)."""
    path = d / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    actions = np.asarray(table.column("action").combine_chunks().flatten()).reshape(-1, 7)
    raw = bytearray(path.read_bytes())
    at = raw.find(np.float32(actions[8, 0]).tobytes())
    assert at >= 0, "the action's bytes are not stored as such"
    raw[at + 2] ^= 0x01  # a mantissa bit: a nearby, plausible action
    path.write_bytes(bytes(raw))
    changed = np.asarray(pq.read_table(path).column("action").combine_chunks().flatten())
    assert changed.reshape(-1, 7)[8, 0] != actions[8, 0]  # parses, and says something else


CORRUPTIONS = {
    "no info.json": (
        lambda d: (d / "meta/info.json").unlink(),
        r"copy is a directory without meta/info.json",
    ),
    "v2.1": (lambda d: _edit_info(d, codebase_version="v2.1"), r"codebase_version='v2.1'"),
    "no fps": (lambda d: _edit_info(d, fps=None), r"info.json: missing fields \['fps'\]"),
    "bad json": (lambda d: (d / "meta/info.json").write_text("{"), r"info.json: not valid JSON"),
    "nan action": (_nan_action, r"file-000.parquet: episode 1: action holds 1 non-finite"),
    "truncated parquet": (
        lambda d: (d / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1 trunc"),
        r"file-000.parquet: not a readable parquet file",
    ),
    "no video": (
        lambda d: (d / "videos/observation.image/chunk-000/file-000.mp4").unlink(),
        r"copy: video file videos/observation.image/chunk-000/file-000.mp4 .* is missing",
    ),
    "short video": (_drop_last_frame, r"episode_2: .*holds 5 frames .* rows want 6"),
    "episode count": (lambda d: _edit_info(d, total_episodes=4), r"total_episodes=4"),
    "action outside the contract": (
        lambda d: _edit_info(d, latent_planner=_narrowed_contract(d)),
        r"episode_\d: \d+ action values lie outside the recorded bounds",
    ),
    # issue 32 item 6: a flipped bit parsed and changed an action
    "bit flip": (_flip_an_action_bit, r"file-000.parquet: sha256 differs from the one recorded"),
    # issue 32 item 7: metadata that contradicts the data
    "span shifted": (
        lambda d: _edit_episodes(d, "videos/observation.image/from_timestamp", 1, 0.2),
        r"episode 1 \(observation.image\): span \[1.4000, 2.4000\) s is not its 6 frames",
    ),
    "spans overlap": (
        lambda d: (
            _edit_episodes(d, "videos/observation.image/from_timestamp", 1, 0.2),
            _edit_episodes(d, "videos/observation.image/to_timestamp", 1, 0.2),
        ),
        r"episodes 1 and 2 \(observation.image\) overlap",
    ),
    "fps against timestamps": (
        lambda d: _fps_everywhere(d, 10),
        r"fps=10 in meta/info.json|span .* is not its 6 frames at fps=10",
    ),
    "row timestamps": (
        lambda d: _shift_row_timestamps(d, 1, 0.2),
        r"episode 1: row 0 has timestamp 0.2000 s, fps=5 in meta/info.json puts it at 0.0000 s",
    ),
    "video fps": (lambda d: _edit_info(d, fps=10), r"video.fps=5, but fps=10"),
    "camera shape": (
        lambda d: _camera_shape(d, [8, 8, 3]),
        r"episode_0: camera 'observation.image' frames are \[16, 16, 3\], .* says shape \[8, 8, 3\]",
    ),
    "fps true": (lambda d: _edit_info(d, fps=True), r"fps=True must be a rate"),
    # issue 32 item 12: raw tracebacks before
    "path template": (
        lambda d: _edit_info(d, data_path="data/{chunk}.parquet"),
        r"data_path='data/\{chunk\}.parquet' is not a path template",
    ),
    "features list": (lambda d: _edit_info(d, features=[]), r"info.json: features must map"),
    "string column": (
        lambda d: _string_column(d, "index"),
        r"file-000.parquet: column 'index' holds string values; expected numbers",
    ),
    "string action": (
        lambda d: _string_column(d, "action"),
        r"file-000.parquet: column 'action' holds string values; expected numbers",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_refuses_a_corrupt_dataset(exported, tmp_path, case):
    d = _copy(exported, tmp_path)
    corrupt, message = CORRUPTIONS[case]
    corrupt(d)
    with pytest.raises(DatasetError, match=message), open_dataset(d) as reader:
        for _ in reader:  # videos are checked as each episode is read
            pass


def test_refuses_unknown_keys(exported):
    d = exported[1]
    with pytest.raises(
        DatasetError, match=r"lerobot.state_key='observation.joints' is not a feature"
    ):
        LeRobotReader(d, LeRobotKeys(state_key="observation.joints"))
    with pytest.raises(DatasetError, match=r"camera_key='action' is not a video or image feature"):
        LeRobotReader(d, LeRobotKeys(camera_key="action"))


@pytest.mark.slow
def test_wm_train_on_a_lerobot_directory(exported, tmp_path):
    _, d = exported
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "world_model.training.train", f"data=[{d}]", f"out_dir={out}",
        f"cache_dir={tmp_path / 'cache'}", "lerobot.camera_key=observation.image",
        "steps=2", "batch_size=4", "clip_len=3", "log_every=1", "val_every=2",
        "optim.warmup_steps=1", "optim.decay_steps=1", *TINY_WM_OVERRIDES,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    from world_model import load_world_model

    assert load_world_model(out / "world_model").env_contract == SYNTHETIC_CONTRACT
    bad = subprocess.run(
        cmd + ["lerobot.camera_key=observation.images.side"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "camera_key='observation.images.side'" in bad.stderr


def test_wm_collect_writes_a_lerobot_directory(tmp_path):
    """``format=lerobot`` records through ``<output>.collect.h5`` and exports it: the same episodes
    (frames, simulator states, goals, attrs) as ``format=hdf5`` with the same seeds."""
    from dataclasses import replace

    from envs.collect.app import collect
    from tests.test_dataset import _small_cfg

    h5 = collect(_small_cfg(tmp_path / "reach.h5", n=2))
    lerobot_cfg = replace(_small_cfg(tmp_path / "reach", n=2), format="lerobot")
    out = collect(lerobot_cfg)
    assert out.is_dir() and h5.is_file()  # the user's reach.h5 is not the recording's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reach", "reach.h5"]
    assert collect(lerobot_cfg) == out  # a second run finds it complete
    # killed between the export and deleting the recording (issue 32 item 13): the rerun tidies
    (tmp_path / "reach.collect.h5").write_bytes(b"recording")
    (tmp_path / "reach.collect.h5.parts").mkdir()
    assert collect(lerobot_cfg) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reach", "reach.h5"]
    with open_dataset(h5) as a, open_dataset(out) as b:
        assert dataset_contract([h5]) == dataset_contract([out])
        for x, y in zip(a, b, strict=True):
            for field in ("pixels", "states", "actions", "goal_pixels", "sim_states", "rewards"):
                assert np.array_equal(getattr(x, field), getattr(y, field)), field
            assert x.attrs | {"name": ""} == y.attrs | {"name": ""}
    with pytest.raises(ValueError, match=r"format=lerobot writes a directory: output=.*\.h5"):
        replace(lerobot_cfg, output=str(tmp_path / "x.h5"))


def test_check_names_checksums_and_prints_errors_in_one_line(exported, tmp_path, capsys):
    """Issue 32 items 6 and 12: ``check`` says whether checksums were verified (datasets
    from other tools have none, and still read), and a malformed dataset is one line."""
    from envs.data.lerobot.__main__ import main

    d = _copy(exported, tmp_path)
    assert main(["check", str(d)]) == 0
    assert "checksums: sha256 of" in capsys.readouterr().out
    _drop_checksums(d)
    assert main(["check", str(d)]) == 0
    assert "checksums: none recorded" in capsys.readouterr().out
    for corrupt in ("features list", "path template", "string column"):
        d = _copy(exported, tmp_path / corrupt)
        CORRUPTIONS[corrupt][0](d)
        with pytest.raises(SystemExit) as exit_:
            main(["check", str(d)])
        err = capsys.readouterr().err
        assert exit_.value.code == 1 and err.count("\n") == 1, err
        assert err.startswith("python -m envs.data.lerobot: error: ")


def test_image_size_is_bounded_and_recorded_in_the_env_kwargs(exported, tmp_path):
    """Issue 32 item 13: lerobot.image_size 8 and 1000 trained models no env renders for, and
    ``import --image-size 32`` wrote the recorded 64 into the env kwargs."""
    for size in (8, 1000):
        with pytest.raises(ValueError, match=rf"lerobot.image_size={size}: expected 16..256"):
            LeRobotKeys(image_size=size)
    d = _copy(exported, tmp_path)
    extra = json.loads((d / "meta/info.json").read_text())["latent_planner"]
    extra["attrs"]["env_kwargs"] = {"image_size": 16}  # as wm-collect records it
    extra["attrs"]["env_args"] = {"env_name": "synthetic", "env_kwargs": {"image_size": 16}}
    _edit_info(d, latent_planner=extra)
    _drop_checksums(d)
    back = import_lerobot(d, tmp_path / "back32.h5", LeRobotKeys(image_size=32))
    with open_dataset(back) as reader:
        assert reader.attrs["env_kwargs"] == {"image_size": 32}
        assert reader.attrs["env_args"]["env_kwargs"] == {"image_size": 32}
        assert reader.attrs["image_size"] == 32 == reader[0].pixels.shape[1]
        assert reader.attrs["env_contract"]["image_size"] == 32


def test_a_refused_read_back_leaves_no_directory(exported, tmp_path, monkeypatch):
    """Issue 32 item 10: an export its own reader refused stayed on disk."""
    import envs.data.lerobot.convert as convert

    def refuse(path, keys=None):
        raise DatasetError(f"{path}: refused")

    monkeypatch.setattr(convert, "LeRobotReader", refuse)
    with pytest.raises(DatasetError, match="refused"):
        export_hdf5(exported[0], tmp_path / "out")
    assert sorted(tmp_path.iterdir()) == []


def test_import_deletes_the_parts_of_killed_imports(exported, tmp_path):
    """Issue 32 item 13: ``<h5>.parts.tmp.<pid>`` of a killed import was never deleted."""
    from tests.faults import dead_pid

    stale = tmp_path / f"back.h5.parts.tmp.{dead_pid()}"
    stale.mkdir()
    (stale / "demo_0.h5").write_bytes(b"half")
    import_lerobot(exported[1], tmp_path / "back.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.h5"]


def _leaves(value, path=()):
    """(path, value) of every leaf of a JSON document."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list) and value and isinstance(value[0], dict | list):
        for i, sub in enumerate(value):
            yield from _leaves(sub, (*path, i))
    else:
        yield path, value


def _set_leaf(document, path, value) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _lerobot_result(d: Path) -> tuple:
    from envs.common.contract import EnvContract

    reader = LeRobotReader(d)
    episodes = [
        (e.pixels, e.states, e.actions, e.goal_pixels, e.goal_state, e.rewards, e.sim_states,
         e.attrs)
        for e in reader
    ]  # fmt: skip
    return reader.attrs, episodes, EnvContract.from_dataset_attrs(reader.attrs)


def test_every_recorded_field_perturbed_is_refused_or_changes_nothing(tmp_path):
    """Issue 32, property: change one leaf of info.json or stats.json, one cell of any
    parquet column (episodes, data, tasks) or one byte of the video of a small export; the
    reader refuses it, or training and evaluation get exactly what they got before."""
    from tests.synthetic import perturbed
    from tests.test_dataset import _property_dataset, _same

    original = export_hdf5(_property_dataset(tmp_path / "d.h5"), tmp_path / "d")
    expected = _lerobot_result(original)
    cases = []
    info = json.loads((original / "meta/info.json").read_text())
    cases += [("json", "meta/info.json", path) for path, _ in _leaves(info)]
    stats = json.loads((original / "meta/stats.json").read_text())  # each feature's first
    firsts = {path[0]: path for path, _ in reversed(list(_leaves(stats)))}
    cases += [("json", "meta/stats.json", path) for path in firsts.values()]
    for path in sorted(original.rglob("*.parquet")):
        rel = str(path.relative_to(original))
        cases += [("parquet", rel, column) for column in pq.read_table(path).column_names]
    cases += [("bytes", str(p.relative_to(original)), None) for p in original.rglob("*.mp4")]
    refused = 0
    for kind, name, where in cases:
        d = Path(shutil.copytree(original, tmp_path / "p", dirs_exist_ok=False))
        target = d / name
        if kind == "json":
            document = json.loads(target.read_text())
            leaf = dict(_leaves(document))[where]
            _set_leaf(document, where, perturbed(leaf))
            target.write_text(json.dumps(document))
        elif kind == "parquet":
            table = pq.read_table(target)
            cells = table.column(where).to_pylist()
            first = cells[0]
            cells[0] = (
                bytes([first[0] ^ 1]) + first[1:] if isinstance(first, bytes) else perturbed(first)
            )
            column = pa.array(cells, type=table.schema.field(where).type)
            pq.write_table(table.set_column(table.column_names.index(where), where, column), target)
        else:
            raw = bytearray(target.read_bytes())
            raw[len(raw) // 2] ^= 0x10
            target.write_bytes(bytes(raw))
        try:
            got = _lerobot_result(d)
        except ValueError:  # DatasetError (or a contract that cannot be built)
            refused += 1
        else:
            assert _same(got, expected), f"{kind} {name} {where}: a silently different dataset"
        shutil.rmtree(d)
    assert refused == len(cases), (refused, len(cases))
