"""rosbag2 import (envs/data/rosbag): bags written by `rosbags`' own writer, MCAP and sqlite3, then
imported and compared with what was written, frame for frame. No ROS install needed."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="pip install rosbags (a core dependency)")

from envs.common.contract import EnvContract  # noqa: E402
from envs.data import open_dataset  # noqa: E402
from envs.data.rosbag import ImportOptions, RosbagError, Topics, import_bag, open_bag  # noqa: E402
from envs.data.rosbag.__main__ import main  # noqa: E402
from tests.rosbag_synthetic import (  # noqa: E402
    T0,
    S,
    _options,
    camera_info,
    frame_pixels,
    image,
    scripted,
    state_of,
    vector,
)

STORAGES = ("mcap", "sqlite3")


def _import(tmp_path: Path, rec, storage: str = "mcap", **options):
    bag = rec.write(tmp_path / f"bag_{storage}", storage)
    out = tmp_path / f"out_{storage}.h5"
    report = import_bag(bag, out, replace(_options(), **options))
    with open_dataset(out) as reader:
        return report, list(reader), reader.attrs


def _one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1 and "\n" not in err, err
    assert err.startswith("python -m envs.data.rosbag: error: ")
    return err


# ------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("storage", STORAGES)
def test_import_equals_what_was_recorded(tmp_path, storage):
    rec, expected = scripted(episodes=3, steps=6, camera_hz=5.0)
    report, episodes, attrs = _import(tmp_path, rec, storage)
    assert len(episodes) == 3
    for ep, want in zip(episodes, expected, strict=True):
        frames = np.stack([frame_pixels(k) for k in want["frames"]])
        np.testing.assert_array_equal(ep.pixels, frames)  # frame for frame
        np.testing.assert_array_equal(
            ep.states, np.stack([state_of(k) for k in want["frames"]]).astype(np.float32)
        )
        np.testing.assert_allclose(ep.actions, want["actions"], atol=1e-7)
        assert (
            ep.attrs["late_frames"]
            == ep.attrs["dropped_frames"]
            == ep.attrs["repeated_frames"]
            == 0
        )
    contract = EnvContract.from_dataset_attrs(attrs)  # what wm-train reads
    assert (contract.env_id, contract.control_hz, contract.image_size) == ("ros/synthetic", 5.0, 16)
    assert contract.action_high == _options().action_high
    assert report.episodes[0].line(0).startswith("episode 0: 6 steps")


# ------------------------------------------------------------------------------ resampling
def test_faster_camera_takes_latest_frame_before_each_command(tmp_path):
    rec, expected = scripted(episodes=1, steps=5, camera_hz=15.0)  # 3 frames per step
    report, (ep,), _ = _import(tmp_path, rec)
    np.testing.assert_array_equal(
        ep.pixels, np.stack([frame_pixels(k) for k in expected[0]["frames"]])
    )
    assert expected[0]["frames"][:3] == [0, 3, 6]
    assert report.episodes[0].plan.unused == 10  # frames 0..15 spanned, 6 used
    assert ep.attrs["late_frames"] == 0 and ep.attrs["repeated_frames"] == 0


def test_slower_camera_repeats_frames_and_counts_them_late(tmp_path):
    rec, expected = scripted(episodes=1, steps=6, camera_hz=2.5)  # a frame every other step
    report, (ep,), _ = _import(tmp_path, rec)
    np.testing.assert_array_equal(
        ep.pixels, np.stack([frame_pixels(k) for k in expected[0]["frames"]])
    )
    assert expected[0]["frames"] == [0, 0, 1, 1, 2, 2, 3]
    plan = report.episodes[0].plan
    assert (plan.repeated, plan.late, plan.unused) == (3, 3, 0)  # a 0.21 s old frame is late


def test_dropped_frames_are_counted(tmp_path):
    rec, expected = scripted(episodes=1, steps=8, camera_hz=5.0, drop_frames=(3, 4, 6))
    report, (ep,), _ = _import(tmp_path, rec)
    assert expected[0]["frames"] == [0, 1, 2, 2, 2, 5, 5, 7, 8]
    np.testing.assert_array_equal(
        ep.pixels, np.stack([frame_pixels(k) for k in expected[0]["frames"]])
    )
    assert (ep.attrs["dropped_frames"], ep.attrs["late_frames"], ep.attrs["repeated_frames"]) == (
        3,
        3,
        3,
    )


# ------------------------------------------------------------------------------ episodes
def test_episodes_split_at_the_marker_even_without_a_pause(tmp_path):
    rec, expected = scripted(episodes=3, steps=4, gap_s=0.0)  # commands never pause
    _, episodes, _ = _import(tmp_path, rec)
    assert [len(e) for e in episodes] == [4, 4, 4]
    # the boundary cuts the last observation at the next episode's marker (half a period)
    assert [len(e.pixels) for e in episodes] == [5, 5, 5]


def test_episodes_split_at_command_gaps_without_marker(tmp_path):
    rec, _ = scripted(episodes=3, steps=4, marker=False, gap_s=1.0)  # 5 control periods
    _, episodes, _ = _import(tmp_path, rec)
    assert [len(e) for e in episodes] == [4, 4, 4]
    _, episodes, _ = _import(tmp_path, rec, "sqlite3", gap_periods=7.0)
    assert [len(e) for e in episodes] == [12]


# ------------------------------------------------------------------------------ contract
def test_contract_from_camera_info_and_registered_env(tmp_path):
    rec, _ = scripted(episodes=1, steps=3, size=64)
    rec.add("/camera/camera_info", T0, camera_info(T0, 64, 64, fy=64 / 2 / np.tan(np.radians(25))))
    _, _, attrs = _import(tmp_path, rec)
    assert EnvContract.from_dataset_attrs(attrs).camera_fovy == pytest.approx(50.0)
    assert attrs["camera"]["k"][4] == pytest.approx(68.6, abs=0.1)
    report, _, attrs = _import(
        tmp_path, rec, "sqlite3", env_id="wm/PandaReach-v0", action_low=None, action_high=None
    )
    contract = EnvContract.from_dataset_attrs(attrs)
    assert contract.env_id == "wm/PandaReach-v0" and contract.workspace_low  # the env's own
    assert attrs["env_revision"] is not None


def test_non_square_frames_need_an_image_size(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=3)
    rec.messages = [
        (t, ns, image(ns, np.zeros((12, 20, 3), np.uint8)) if t == "/camera/image_raw" else m)
        for t, ns, m in rec.messages
    ]
    bag = rec.write(tmp_path / "bag")
    err = _one_line_error(capsys, ["import", str(bag), "--out", str(tmp_path / "o.h5"), "--env-id", "ros/x", "--action-low=-1,-1,-1,-1,-1,-1,-1", "--action-high=1,1,1,1,1,1,1"])  # fmt: skip
    assert "12x20, not square: pass --image-size" in err
    _, (ep,), _ = _import(tmp_path, rec, "sqlite3", image_size=8)
    assert ep.pixels.shape[1:] == (8, 8, 3)


# ------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize("encoding", ["bgr8", "mono8"])
def test_encodings(tmp_path, encoding):
    rec, expected = scripted(episodes=1, steps=3, encoding=encoding)
    _, (ep,), _ = _import(tmp_path, rec)
    want = np.stack([frame_pixels(k) for k in expected[0]["frames"]])
    if encoding == "mono8":
        want = np.repeat(want[..., :1], 3, axis=-1)
    np.testing.assert_array_equal(ep.pixels, want)


def test_compressed_png_frames(tmp_path):
    import io

    from PIL import Image

    from tests.rosbag_synthetic import TS, header

    rec, expected = scripted(episodes=1, steps=3)
    for i, (topic, ns, msg) in enumerate(rec.messages):
        if topic == "/camera/image_raw":
            png = io.BytesIO()
            Image.fromarray(msg.data.reshape(msg.height, msg.width, 3)).save(png, format="PNG")
            data = np.frombuffer(png.getvalue(), np.uint8)
            compressed = TS.types["sensor_msgs/msg/CompressedImage"](header(ns), "png", data)
            rec.messages[i] = (topic, ns, compressed)
    _, (ep,), _ = _import(tmp_path, rec)
    np.testing.assert_array_equal(
        ep.pixels, np.stack([frame_pixels(k) for k in expected[0]["frames"]])
    )


# ------------------------------------------------------------------------------ bad input
def _cli(tmp_path: Path, bag: Path, *extra: str) -> list[str]:
    bound = [
        "--action-low=-0.075,-0.075,-0.075,0,0,0,-1",
        "--action-high=0.075,0.075,0.075,0,0,0,1",
    ]
    return [
        "import",
        str(bag),
        "--out",
        str(tmp_path / "out.h5"),
        "--env-id",
        "ros/x",
        *bound,
        *extra,
    ]


def test_missing_topics_list_what_the_bag_has(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=3)
    bag = rec.write(tmp_path / "bag")
    err = _one_line_error(capsys, _cli(tmp_path, bag, "--command-topic", "/arm/cmd"))
    assert "no /arm/cmd in the bag; it has /camera/image_raw (sensor_msgs/msg/Image, 5)" in err
    assert "--command-topic" in err and not (tmp_path / "out.h5").exists()


def test_unreadable_encoding_is_named(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=3, encoding="16UC1")
    err = _one_line_error(capsys, _cli(tmp_path, rec.write(tmp_path / "bag")))
    assert (
        "/camera/image_raw message 0: image encoding '16UC1' cannot be read; supported: rgb8" in err
    )


def test_commands_outside_bounds_refused_or_clipped(tmp_path, capsys):
    rec, _ = scripted(episodes=2, steps=4)
    commands = [m for m in rec.messages if m[0] == "/wm/action"]
    topic, ns, _ = commands[6]  # episode 1, step 2
    rec.messages[rec.messages.index(commands[6])] = (
        topic,
        ns,
        vector([0.2, 0, 0, 0, 0, 0, 0], "ee_delta"),
    )
    bag = rec.write(tmp_path / "bag")
    err = _one_line_error(capsys, _cli(tmp_path, bag))
    assert re.search(r"episode 1 \(from t=[\d.]+ s in the bag\): 1 action values lie outside", err)
    assert (
        "first at step 2, dimension 0: 0.2 not in [-0.075, 0.075]" in err
        and "--clip-actions" in err
    )
    assert main(_cli(tmp_path, bag, "--clip-actions")) == 0
    assert "episode 1: 4 steps" in capsys.readouterr().out
    with open_dataset(tmp_path / "out.h5") as reader:
        assert reader[1].actions[2, 0] == pytest.approx(0.075)
        assert reader[1].attrs["clipped_actions"] == 1


def test_non_finite_values_and_wrong_types_refused(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=4)
    states = [i for i, m in enumerate(rec.messages) if m[0] == "/wm/state"]
    topic, ns, _ = rec.messages[states[1]]
    rec.messages[states[1]] = (topic, ns, vector([np.nan] * 7, "ee_state"))
    err = _one_line_error(capsys, _cli(tmp_path, rec.write(tmp_path / "bag")))
    assert (
        "episode 0 (from t=0.10 s in the bag): states holds 7 non-finite values (first at step 1"
        in err
    )
    rec, _ = scripted(episodes=1, steps=4)
    rec.add("/camera/camera_info", T0, vector([1.0] * 7, "oops"))
    err = _one_line_error(capsys, _cli(tmp_path, rec.write(tmp_path / "bag2")))
    assert (
        "/camera/camera_info is std_msgs/msg/Float64MultiArray, expected sensor_msgs/msg/Camera"
        in err
    )


def test_non_monotonic_stamps_refused(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=4)
    images = [i for i, m in enumerate(rec.messages) if m[0] == "/camera/image_raw"]
    topic, ns, _ = rec.messages[images[2]]
    rec.messages[images[2]] = (topic, ns, image(ns - S, frame_pixels(2)))  # stamped 1 s early
    bag = rec.write(tmp_path / "bag")
    err = _one_line_error(capsys, _cli(tmp_path, bag))
    assert "/camera/image_raw: header stamps go back in time at message 2" in err
    assert "--clock receive" in err
    assert main(_cli(tmp_path, bag, "--clock", "receive")) == 0


def _truncate(bag: Path, keep: float) -> Path:
    (storage,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    data = storage.read_bytes()
    storage.write_bytes(data[: int(len(data) * keep)])
    (bag / "metadata.yaml").unlink()  # a killed recorder never wrote it
    return storage


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_bag_imports_what_is_whole(tmp_path, storage, capsys):
    # 64 px frames at 15 Hz: 2.4 MB, more than two of the writer's 1 MiB MCAP chunks
    rec, expected = scripted(episodes=6, steps=10, size=64, camera_hz=15.0)
    bag = rec.write(tmp_path / "bag", storage)
    original = _truncate(bag, 0.75)
    size = original.stat().st_size
    assert main(_cli(tmp_path, bag, "--env-id", "ros/x")) == 0
    out = capsys.readouterr().out
    assert "truncated bag: metadata.yaml: cut: no metadata.yaml" in out
    assert f"truncated bag: {original.name}: cut" in out
    with open_dataset(tmp_path / "out.h5") as reader:
        episodes = list(reader)
    assert 1 <= len(episodes) < 6
    assert re.search(rf"episode {len(episodes)}: \d+ steps before the cut, may be unfinished", out)
    for ep, want in zip(episodes, expected, strict=False):  # whole episodes are exact
        np.testing.assert_array_equal(
            ep.pixels, np.stack([frame_pixels(k, 64) for k in want["frames"]])
        )
    assert original.stat().st_size == size  # the bag is never written to


def test_bag_without_metadata_reads_its_storage_file(tmp_path, capsys):
    rec, _ = scripted(episodes=2, steps=3)
    bag = rec.write(tmp_path / "bag", "sqlite3")
    (bag / "metadata.yaml").unlink()
    assert main(["info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "/wm/action" in out and "no metadata.yaml" in out
    assert main(_cli(tmp_path, bag)) == 0


def test_not_a_bag(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _one_line_error(capsys, ["info", str(tmp_path / "empty")])
    assert "not a rosbag2 bag" in err
    err = _one_line_error(capsys, ["info", str(tmp_path / "nothing")])
    assert "no such bag" in err


def test_existing_output_refused(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=3)
    bag = rec.write(tmp_path / "bag")
    (tmp_path / "out.h5").write_bytes(b"precious")
    err = _one_line_error(capsys, _cli(tmp_path, bag))
    assert "out.h5 already exists" in err and (tmp_path / "out.h5").read_bytes() == b"precious"


# ------------------------------------------------------------------------------ contract names
def test_default_topics_are_the_documented_contract():
    doc = (Path(__file__).parents[1] / "docs" / "ros.md").read_text()
    for f in fields(Topics):
        if f.name != "camera_info":  # the camera driver's, beside image_raw
            assert f"`{getattr(Topics(), f.name)}`" in doc, f.name
    assert Topics().under("/arm1/").command == "/arm1/wm/action"


def test_info_lists_topics(tmp_path, capsys):
    rec, _ = scripted(episodes=1, steps=3)
    with open_bag(rec.write(tmp_path / "bag")) as bag:
        assert bag.topics["/wm/action"].count == 3
    assert main(["info", str(tmp_path / "bag")]) == 0
    assert "contract topics found: image=/camera/image_raw" in capsys.readouterr().out


def test_options_refuse_bad_values():
    with pytest.raises(ValueError, match="clock="):
        ImportOptions(env_id="x", clock="gps")
    with pytest.raises(RosbagError):
        raise RosbagError("is a ValueError")


@pytest.mark.slow
def test_wm_train_on_an_imported_bag(tmp_path):
    """The imported file trains as it is: ``wm-train data=[out.h5]`` carries its contract."""
    import subprocess
    import sys

    from tests.test_train import TINY_WM_OVERRIDES
    from world_model import load_world_model

    rec, _ = scripted(episodes=4, steps=6)
    bag = rec.write(tmp_path / "bag", "mcap")
    import_bag(bag, tmp_path / "out.h5", _options())
    cmd = [
        sys.executable, "-m", "world_model.training.train", f"data=[{tmp_path / 'out.h5'}]",
        f"out_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}", "steps=2",
        "batch_size=4", "clip_len=3", "log_every=1", "val_every=2", "optim.warmup_steps=1",
        "optim.decay_steps=1", *TINY_WM_OVERRIDES,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    with open_dataset(tmp_path / "out.h5") as reader:
        contract = EnvContract.from_dataset_attrs(reader.attrs)
    assert load_world_model(tmp_path / "run" / "world_model").env_contract == contract
