"""File-system faults every writer here handles the same way: a full disk, a read-only
location, and temporaries left by killed processes.

Writers name their temporaries ``...tmp.<pid>`` / ``...tmp-<pid>`` so a later run can tell
a dead writer's leftovers from a live one's. The world model's checkpoint writers use this
module too (the lowest layer, so every layer may import it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

_PID = re.compile(r"\.(?:tmp|old)[.-](\d+)$")


class DiskFullError(OSError):
    """errno 28 while writing a named path (pickles across processes like any OSError)."""


def is_disk_full(err: BaseException) -> bool:
    """errno 28 whatever the library: h5py and C++ writers put it only in the message."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    text = str(err)
    return "No space left on device" in text or "errno = 28" in text


@contextlib.contextmanager
def disk_full_guard(path: str | os.PathLike, cleanup: str | os.PathLike | None = None) -> Iterator:
    """Turn errno 28 inside the block into ``DiskFullError("no space left on device while
    writing <path>")``; on any failure remove ``cleanup`` (the half-written temporary), so a
    full disk does not stay full because of our own leftovers."""
    try:
        yield
    except BaseException as err:
        if cleanup is not None:
            remove_path(Path(cleanup))
        if isinstance(err, DiskFullError):
            raise  # already names what was written
        if isinstance(err, Exception) and is_disk_full(err):
            raise DiskFullError(
                errno.ENOSPC, f"no space left on device while writing {path}"
            ) from err
        raise


def check_free_space(path: Path, needed: int) -> None:
    """Raise `DiskFullError` naming ``path`` unless its folder's file system has ``needed``
    bytes free. For writers that cannot fail cleanly on a full disk: HDF5's ``Group.copy``
    hitting errno 28 aborts the whole process (``free(): double free``), leaving its temporary.
    """
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise DiskFullError(
            errno.ENOSPC,
            f"no space left on device while writing {path}: it needs about {needed // 1024} KiB "
            f"and {free // 1024} KiB are free; free some space and run the same command again",
        )


def write_file(path: Path, data: bytes) -> None:
    """Write bytes, reporting a full disk as `DiskFullError` naming ``path``.

    Serialise in memory first (``torch.save`` to a buffer, ``safetensors.torch.save``): their
    C++ writers report a full disk as ``basic_ios::clear`` or ``unexpected pos``. A failed
    write removes the partial file."""
    with disk_full_guard(path, cleanup=path), open(path, "wb") as f:
        f.write(data)


def atomic_write(
    path: str | os.PathLike, write: bytes | Callable[[Path], None], mode: int | None = None
) -> Path:
    """Write `path` through the temporary `.<name>.tmp-<pid>` renamed over it: a kill leaves
    the old file, never half a new one, and the next run's `remove_stale_temporaries` deletes
    the dead writer's temporary. `write` is the bytes, or a callable that writes the file it
    is given (h5py, safetensors). A full disk raises `DiskFullError` naming `path` and removes
    the temporary. `mode`: permissions of the new file (safetensors writes 0600)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with disk_full_guard(path, cleanup=tmp):
        if isinstance(write, bytes):
            with open(tmp, "wb") as f:
                f.write(write)
        else:
            write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def atomic_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_dir)` then move tmp_dir onto `target`; a kill leaves the old one intact.

    A full disk raises `DiskFullError` naming `target` and removes the temporary folder (it
    would otherwise keep the disk full); folders of killed writers are removed at the next
    run's start (`envs.data.storage.remove_stale_temporaries`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with disk_full_guard(target, cleanup=tmp):
        tmp.mkdir()
        write(tmp)
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree; missing is fine (also on a read-only mount, where
    unlinking a missing file fails with EROFS rather than ENOENT)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path, pattern: str = "*tmp*") -> list[Path]:
    """Delete ``pattern`` matches in ``folder`` whose writer pid is dead; return them.

    Temporaries of live processes (another writer on the same folder) are left alone; names
    without a pid (``<output>.tmp``) belong to whoever holds the output, so the caller decides.
    """
    stale = []
    for path in sorted(Path(folder).glob(pattern)) if Path(folder).is_dir() else []:
        match = _PID.search(path.name)
        if match and not pid_alive(int(match.group(1))):
            remove_path(path)
            stale.append(path)
    return stale


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, so a read-only or full location is
    reported before any work is done (``os.access`` says yes to root on a read-only mount)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe.tmp.{os.getpid()}"
        with disk_full_guard(folder, cleanup=probe):
            probe.write_bytes(b"probe")
        probe.unlink()
    except DiskFullError:
        raise
    except OSError as err:
        raise PermissionError(
            errno.EACCES, f"output location {folder} is not writable ({err.strerror or err})"
        ) from err
