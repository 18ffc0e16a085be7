"""Contract messages (deserialised by `rosbags`) as numpy arrays: camera frames, 7-D vectors,
the camera's field of view."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

CHANNELS = {
    "rgb8": [0, 1, 2],
    "bgr8": [2, 1, 0],
    "rgba8": [0, 1, 2],
    "bgra8": [2, 1, 0],
    "mono8": [0, 0, 0],
}
"""Encodings read, as the channel each RGB output channel comes from; ``8UC3`` and friends,
16-bit and Bayer frames are refused rather than guessed at."""
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
VECTOR_TYPES = ("std_msgs/msg/Float64MultiArray", "std_msgs/msg/Float32MultiArray")


class MessageError(ValueError):
    """One message that cannot be used; the importer adds the topic and message index."""


def decode_image(msg: Any, msgtype: str) -> np.ndarray:
    """A ``sensor_msgs/Image`` (encodings in `CHANNELS`, row padding allowed) or
    ``CompressedImage`` (JPEG, PNG) as ``uint8 (H, W, 3)`` RGB."""
    if msgtype.endswith("CompressedImage"):
        from PIL import Image, UnidentifiedImageError

        try:
            return np.asarray(Image.open(io.BytesIO(msg.data.tobytes())).convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise MessageError(f"compressed image ({msg.format!r}) does not decode: {err}") from err
    if msg.encoding not in CHANNELS:
        raise MessageError(
            f"image encoding {msg.encoding!r} cannot be read; supported: {', '.join(CHANNELS)}"
        )
    channels = 1 if msg.encoding == "mono8" else len(msg.encoding) - 1  # rgb8 -> 3, rgba8 -> 4
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0 or step < width * channels:
        raise MessageError(f"image {height}x{width} with step {step} < width * {channels}")
    if msg.data.size != step * height:
        raise MessageError(
            f"image data holds {msg.data.size} bytes, step * height = {step * height}"
        )
    rows = msg.data.reshape(height, step)[:, : width * channels]  # [H, step] -> [H, W*C]
    pixels = rows.reshape(height, width, channels)  # [H, W, C]
    return np.ascontiguousarray(pixels[..., CHANNELS[msg.encoding]])  # [H, W, 3] RGB


def vector(msg: Any, dim: int) -> np.ndarray:
    """The ``data`` of a ``Float64MultiArray`` as ``float64 (dim,)``; wrong length refused."""
    values = np.asarray(msg.data, np.float64)
    if values.shape != (dim,):
        raise MessageError(f"holds {values.size} values, expected {dim}")
    return values


def vertical_fov_deg(camera_info: Any) -> float | None:
    """Vertical field of view (degrees) of the centre square the importer crops, from the
    intrinsics ``K`` (fy = K[4], pixels): ``2 atan(side / 2 / fy)``; None without them."""
    fy, side = float(camera_info.k[4]), min(int(camera_info.height), int(camera_info.width))
    if fy <= 0 or side <= 0:
        return None
    return math.degrees(2 * math.atan(side / 2 / fy))
