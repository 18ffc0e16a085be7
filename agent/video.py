"""Episode videos: camera | goal | energy over time, side by side, one mp4 per episode."""

from __future__ import annotations

import errno
import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from envs.data.storage import DiskFullError, atomic_write


def _upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of (H, W, 3) uint8 to (size, size, 3): crisp pixels, no deps."""
    h, w = image.shape[:2]
    rows = np.arange(size) * h // size
    cols = np.arange(size) * w // size
    return image[rows][:, cols]


def _polyline(panel: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour: tuple) -> None:
    for i in range(len(xs)):
        x0, y0 = (xs[i - 1], ys[i - 1]) if i else (xs[i], ys[i])
        n = 2 + int(np.hypot(xs[i] - x0, ys[i] - y0))  # one dot per pixel: a solid line
        for t in np.linspace(0.0, 1.0, n):
            x = int(round(x0 + t * (xs[i] - x0)))
            y = int(round(y0 + t * (ys[i] - y0)))
            panel[max(y - 1, 0) : y + 1, max(x - 1, 0) : x + 1] = colour


def energy_panel(
    energies: list[float],
    size: int,
    total_steps: int,
    imagined: list[float] | None = None,
    block: int = 1,
) -> np.ndarray:
    """A minimal line plot of the planner's energy so far (red) and, from the current step,
    the latest plan's imagined energy after each block of `block` steps (blue)."""
    panel = np.full((size, size, 3), 255, np.uint8)
    panel[[0, -1], :] = panel[:, [0, -1]] = 200  # frame
    values = np.asarray(energies, dtype=np.float64)
    ahead = np.asarray(imagined if imagined is not None else [], dtype=np.float64)
    finite = np.concatenate([values, ahead])
    finite = finite[np.isfinite(finite)]
    if finite.size < 1:
        return panel
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo if hi > lo else 1.0
    margin = size // 10
    scale = (size - 2 * margin) / max(total_steps - 1, 1)  # pixels per control step

    def ys(v: np.ndarray) -> np.ndarray:
        return size - margin - (np.nan_to_num(v, nan=hi) - lo) / span * (size - 2 * margin)

    if values.size:
        _polyline(panel, margin + np.arange(len(values)) * scale, ys(values), (200, 40, 40))
    if ahead.size:
        now = max(len(values) - 1, 0)
        steps = now + block * np.arange(1, len(ahead) + 1)  # control step after each block
        keep = steps < total_steps
        _polyline(panel, margin + steps[keep] * scale, ys(ahead[keep]), (40, 80, 200))
    return panel


def compose_frame(
    pixels: np.ndarray,
    goal: np.ndarray,
    energies: list[float],
    total_steps: int,
    size: int = 192,
    imagined: list[float] | None = None,
    block: int = 1,
) -> np.ndarray:
    """One video frame (size, 3*size, 3): the camera, the goal, the energy curve (so far in
    red, the current plan's imagined energy over its horizon in blue)."""
    panel = energy_panel(energies, size, total_steps, imagined, block)
    return np.concatenate([_upscale(pixels, size), _upscale(goal, size), panel], axis=1)


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write an mp4 (H.264, crf 25: imageio's default quality) with the ffmpeg binary that
    imageio-ffmpeg ships, through a temporary name and a rename.

    ffmpeg is run here rather than through imageio, which ignores ffmpeg's exit status: on a
    full disk it left an unplayable mp4 and only ffmpeg's own ``Error writing trailer`` on the
    terminal. A failure now removes the partial file and raises `DiskFullError` (errno 28) or
    an OSError quoting ffmpeg.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator()  # 12.5 Hz stays 25/2, not 12
    raw = b"".join(np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in frames)

    def encode(tmp: Path) -> None:
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
            "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}", "-pix_fmt", "rgb24",
            "-r", str(rate), "-i", "-", "-an",
            "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", "25", "-f", "mp4", str(tmp),
        ]  # fmt: skip
        done = subprocess.run(cmd, input=raw, capture_output=True)
        if done.returncode != 0:
            said = " / ".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
            if "No space left on device" in said:
                raise DiskFullError(
                    errno.ENOSPC, f"no space left on device while writing {path} (ffmpeg: {said})"
                )
            raise OSError(errno.EIO, f"ffmpeg could not write {path} ({said})")

    return atomic_write(path, encode)
