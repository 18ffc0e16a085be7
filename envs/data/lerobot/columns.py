"""Parquet columns and image cells of a LeRobot dataset as numpy arrays, refusing what does
not fit (ragged lists, nulls, unreadable files or image bytes) with the path and column."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.episode import DatasetError


def column(table: Any, name: str, rows: int, where: str) -> np.ndarray:
    """A parquet column as `(rows, D)` (list / fixed-size-list features) or `(rows,)`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name).combine_chunks()
    listed = pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
    value_type = col.type.value_type if listed else col.type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
        raise DatasetError(f"{where}: column {name!r} holds {col.type} values; expected numbers")
    if listed:
        sizes = np.asarray(pc.list_value_length(col).fill_null(-1))  # (rows,), -1 for nulls
        if rows > 0 and ((sizes != sizes[0]).any() or sizes[0] < 0):
            raise DatasetError(f"{where}: column {name!r} has rows of different lengths or nulls")
        return np.asarray(col.flatten()).reshape(rows, -1)
    if col.null_count:
        raise DatasetError(f"{where}: column {name!r} holds {col.null_count} nulls")
    return col.to_numpy(zero_copy_only=False)


def read_parquet(path: Path, columns: list[str] | None, where: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DatasetError(f"{where}: {path} is missing")
    try:
        table = pq.read_table(path, columns=None)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(
            f"{path}: not a readable parquet file ({err}); corrupt or truncated"
        ) from err
    missing = [c for c in columns or () if c not in table.column_names]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}")
    return table


def png_image(image: dict, where: str) -> np.ndarray:
    """An ``image`` feature cell ({bytes, path}) -> `(H, W, 3)` uint8."""
    from PIL import Image

    if not image or not image.get("bytes"):
        raise DatasetError(
            f"{where}: image cell holds no bytes (images kept beside the parquet are not supported)"
        )
    try:
        return np.asarray(Image.open(io.BytesIO(image["bytes"])).convert("RGB"))
    except OSError as err:
        raise DatasetError(f"{where}: corrupt image bytes ({err})") from err


def square(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop `(N, H, W, 3)` frames to a square and resize to `size` (no-op when already)."""
    n, height, width, _ = frames.shape
    if height == width == size:
        return frames
    from PIL import Image

    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = frames[:, top : top + side, left : left + side]  # (N, side, side, 3)
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in crop]
    )
