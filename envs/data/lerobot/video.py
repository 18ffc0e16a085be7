"""MP4 video of a LeRobot v3 dataset through PyAV: episodes are appended back to back to one
encoder stream per file (LeRobot concatenates per-episode files the same way), and an
episode is read back as the frames whose timestamps fall in its ``[from, to)`` span.

Timestamps, not frame counts, locate an episode: ``meta/episodes`` gives each episode's
``videos/<key>/from_timestamp`` and a row's frame sits at ``from_timestamp + timestamp``
(LeRobot's ``_query_videos``), so a file with a missing or extra frame is caught, not
silently shifted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

# LeRobot's reader accepts a decoded frame this close to the asked timestamp (tolerance_s).
TIMESTAMP_TOLERANCE_S = 1e-4


@dataclass(frozen=True)
class VideoCodec:
    """PyAV encoder settings for one ``codec=`` choice of the exporter."""

    encoder: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


CODECS = {
    # H.264 in RGB (libx264rgb, crf 0): bit-exact frames, so the HDF5 -> LeRobot round trip
    # gives back identical pixels; any ffmpeg-based reader (torchcodec, PyAV) decodes it.
    "lossless": VideoCodec("libx264rgb", "rgb24", {"crf": "0", "g": "2"}),
    # LeRobot's recording default (libsvtav1, yuv420p, crf 30, g 2): ~10x smaller, lossy.
    "av1": VideoCodec("libsvtav1", "yuv420p", {"crf": "30", "g": "2", "preset": "12"}),
}


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or does not hold the frames its metadata names."""


class VideoFileWriter:
    """One MP4 file of one camera; `append` adds an episode and returns its timestamp span."""

    def __init__(self, path: Path, fps: int, height: int, width: int, codec: str) -> None:
        import av

        if codec not in CODECS:
            raise ValueError(f"codec={codec!r}: expected one of {sorted(CODECS)}")
        spec = CODECS[codec]
        self.path, self.fps, self.frames = path, fps, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), "w")
        self._stream = self._container.add_stream(spec.encoder, rate=fps, options=spec.options)
        self._stream.pix_fmt = spec.pix_fmt
        self._stream.width, self._stream.height = width, height

    def append(self, frames: np.ndarray) -> tuple[float, float]:
        """Encode `(N, H, W, 3)` uint8 frames; -> (from_timestamp, to_timestamp) in seconds."""
        import av

        start = self.frames
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts, picture.time_base = self.frames, Fraction(1, self.fps)  # continuous
            for packet in self._stream.encode(picture):
                self._container.mux(packet)
            self.frames += 1
        return start / self.fps, self.frames / self.fps

    def size_mb(self) -> float:
        return os.path.getsize(self.path) / 1e6 if self.path.exists() else 0.0

    def close(self) -> None:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()


def decode_span(path: Path, from_ts: float, timestamps: np.ndarray, where: str) -> np.ndarray:
    """Frames of one episode -> `(N, H, W, 3)` uint8, one per row timestamp (episode-relative,
    seconds); raises `VideoDecodeError` naming `where` when a frame is missing or extra."""
    import av

    if not path.is_file():
        raise VideoDecodeError(f"{where}: video file {path} is missing")
    targets = from_ts + np.asarray(timestamps, np.float64)  # (N,) seconds in the file
    tol = TIMESTAMP_TOLERANCE_S
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # nearest keyframe at or before the first frame, then decode forward (LeRobot's
            # PyAV path does the same: PyAV has no accurate seek)
            container.seek(max(int(targets[0] / stream.time_base) - 1, 0), stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t > targets[-1] + tol:
                    break
                if t >= targets[0] - tol:
                    frames.append(_rgb(frame))  # (H, W, 3)
                    times.append(t)
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{where}: cannot decode {path} ({err}); corrupt video") from err
    if len(frames) != len(targets):
        raise VideoDecodeError(
            f"{where}: {path} holds {len(frames)} frames in [{targets[0]:.4f}, "
            f"{targets[-1]:.4f}] s, the parquet rows want {len(targets)}: video and data disagree"
        )
    off = np.abs(np.asarray(times) - targets)
    if off.max() > tol:
        worst = int(off.argmax())
        raise VideoDecodeError(
            f"{where}: {path} frame {worst} is at {times[worst]:.4f} s, its row at "
            f"{targets[worst]:.4f} s (tolerance {tol} s): timestamps out of sync"
        )
    return np.stack(frames)


def _rgb(frame: Any) -> np.ndarray:
    """A decoded frame as `(H, W, 3)` uint8 RGB. The lossless codec's planar RGB (gbrp) is
    stacked as RGB by PyAV itself, 3x faster than a swscale conversion to rgb24 (measured
    0.15 vs 0.44 ms per 64 px frame, decode included)."""
    if frame.format.name == "gbrp":
        return frame.to_ndarray()
    return frame.to_ndarray(format="rgb24")
