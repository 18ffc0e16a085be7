"""Reading rosbag2 files (MCAP or sqlite3) with `rosbags`, no ROS install needed, including
bags a killed recorder left behind: whatever was written whole is read, and what was cut is
said (`Cut`).

A bag is a directory with ``metadata.yaml`` and its storage files, as ``ros2 bag record``
writes it, or one ``.mcap`` / ``.db3`` file. The recorder writes ``metadata.yaml`` when it
closes, so a killed one leaves a directory without it and a storage file that ends mid-record
(MCAP: no footer; sqlite3: missing pages). Such a file is copied into a temporary directory up
to its last whole record and read from there; the bag itself is never written to.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys import Stores, get_typestore

STORAGE_SUFFIXES = (".mcap", ".db3")
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
"""Message definitions of the ROS 2 release our [ros] extra installs (Kilted); the contract's
types (sensor_msgs, std_msgs) are the same in every release since Humble."""

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_MCAP_HEADER, _MCAP_FOOTER, _MCAP_DATA_END = 0x01, 0x02, 0x0F


class RosbagError(ValueError):
    """A bag that cannot be imported as asked; the message names the bag and the problem."""


@dataclass(frozen=True)
class Topics:
    """The topic contract of docs/ros.md (``agent/ros``'s default names), each overridable."""

    image: str = "/camera/image_raw"
    """``sensor_msgs/Image`` (or ``CompressedImage``): the frames the policy sees."""
    state: str = "/wm/state"
    """``std_msgs/Float64MultiArray``, 7 floats: ee xyz (m), Euler xyz (rad), gripper [0, 1]."""
    command: str = "/wm/action"
    """``std_msgs/Float64MultiArray``, 7 floats: the per-step end-effector delta."""
    camera_info: str = "/camera/camera_info"
    """``sensor_msgs/CameraInfo`` (optional): intrinsics for the env contract."""
    episode: str = "/wm/sim/steps"
    """Episode marker (optional): a counter (``std_msgs/UInt32``...) starts an episode where it
    goes down; a message of any other type starts one where it arrives."""
    goal_image: str = "/wm/goal_image"
    """``sensor_msgs/Image`` (optional): the goal each episode was commanded towards."""
    success: str = "/wm/success"
    """``std_msgs/Bool`` (optional, the sim's): whether the episode ended at its goal."""
    distance: str = "/wm/distance"
    """``std_msgs/Float64`` (optional, the sim's): distance to the goal (m)."""

    def under(self, namespace: str) -> Topics:
        """The same names below ``namespace`` (``-r __ns:=/arm1`` on the nodes)."""
        ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
        return replace(self, **{k: ns + v for k, v in vars(self).items()})


@dataclass
class Cut:
    """What of a storage file could not be read: the part after its last whole record."""

    file: Path
    reason: str
    kept: str = ""
    """What was read of it: ``12 of 40 MiB``, ``410 messages``."""

    def __str__(self) -> str:
        return f"{self.file.name}: cut{f' (read {self.kept})' if self.kept else ''}: {self.reason}"


@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int


@dataclass
class Bag:
    """An opened bag: its topics, and its messages in receive-time order via `messages`."""

    path: Path
    readers: list[Reader]
    cuts: list[Cut] = field(default_factory=list)
    storage: str = ""
    scanned: set[int] = field(default_factory=set)
    """ids of the readers of repaired MCAP copies (no index; read in file order)."""

    @property
    def topics(self) -> dict[str, TopicInfo]:
        out: dict[str, TopicInfo] = {}
        for reader in self.readers:
            for conn in reader.connections:
                info = out.setdefault(conn.topic, TopicInfo(conn.topic, conn.msgtype, 0))
                info.count += conn.msgcount
        return out

    def describe_topics(self) -> str:
        """``/a (std_msgs/msg/Bool, 3), /b (...)`` for error messages."""
        items = sorted(self.topics.values(), key=lambda t: t.name)
        return ", ".join(f"{t.name} ({t.msgtype}, {t.count})" for t in items) or "no topics"

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, receive time ns, raw CDR)`` of ``topics`` until the first record
        that cannot be read; that stop is appended to `cuts` (once per pass)."""
        for reader in self.readers:
            conns = [c for c in reader.connections if c.topic in topics]
            if not conns:
                continue
            if id(reader) in self.scanned:
                # A repaired MCAP copy has no index: read it in file order. rosbags' own
                # unindexed read refuses messages out of timestamp order, which a recorder that
                # stamps send times writes (its callbacks run in arrival order); each topic's
                # own order is checked by the importer.
                source = reader.storage.messages_scan(conns)
            else:
                source = reader.messages(connections=conns)
            try:
                for conn, stamp, raw in source:
                    yield conn.topic, conn.msgtype, stamp, raw
            except (ReaderError, sqlite3.Error, OSError, struct.error) as err:
                cut = Cut(Path(str(getattr(reader, "path", self.path))), f"read error ({err})")
                if all(str(c) != str(cut) for c in self.cuts):
                    self.cuts.append(cut)
                return

    @property
    def start_ns(self) -> int:
        return min((r.start_time for r in self.readers if r.message_count), default=0)

    @property
    def end_ns(self) -> int:
        return max((r.end_time for r in self.readers if r.message_count), default=0)


def deserialize(raw: bytes, msgtype: str) -> Any:
    return TYPESTORE.deserialize_cdr(raw, msgtype)


def header_stamp_ns(raw: bytes) -> int:
    """``header.stamp`` of a CDR message whose first field is a ``std_msgs/Header`` (Image,
    CompressedImage, CameraInfo), without deserialising its pixels: after the 4-byte
    encapsulation come ``int32 sec`` and ``uint32 nanosec``."""
    endian = "<" if raw[1] == 1 else ">"  # encapsulation kind 0x0001 = CDR little-endian
    sec, nanosec = struct.unpack_from(f"{endian}iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[Bag]:
    """Open a bag directory or storage file; a file a killed recorder left is read up to its
    last whole record, and the `Bag` lists what was cut. Raises `RosbagError` naming the path
    when nothing in it is a readable bag."""
    path = Path(path)
    if not path.exists():
        raise RosbagError(f"{path}: no such bag (a rosbag2 directory, .mcap or .db3 file)")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rosbag-")))
        bag = _open(path, scratch, stack)
        yield bag


def _open(path: Path, scratch: Path, stack: contextlib.ExitStack) -> Bag:
    if path.is_dir() and (path / "metadata.yaml").is_file():
        try:
            reader = Reader(path)
            reader.open()
            stack.callback(reader.close)
            return Bag(path, [reader], storage=_storage_name(reader.storage))
        except (ReaderError, sqlite3.Error, OSError) as err:
            first_error = f"metadata.yaml names files that cannot be read ({err})"
    else:
        first_error = "no metadata.yaml (the recorder did not close the bag)"
    files = (
        sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    if not files or any(p.suffix not in STORAGE_SUFFIXES for p in files):
        raise RosbagError(
            f"{path}: not a rosbag2 bag: want a directory with metadata.yaml or .mcap / .db3 "
            "files, or one such file"
        )
    bag = Bag(path, [], storage=files[0].suffix.lstrip(".").replace("db3", "sqlite3"))
    if path.is_dir():
        bag.cuts.append(Cut(path / "metadata.yaml", first_error))
    for file in files:
        reader = _open_file(file, scratch, bag.cuts)
        if reader is not None:
            stack.callback(reader.close)
            bag.readers.append(reader)
            if file.suffix == ".mcap" and reader.path != file:
                bag.scanned.add(id(reader))
    if not bag.readers:
        raise RosbagError(f"{path}: no readable storage file ({'; '.join(map(str, bag.cuts))})")
    return bag


def _storage_name(storage: Any) -> str:
    files = getattr(storage, "storages", [])
    return type(files[0]).__name__.removesuffix("Reader").lower() if files else ""


def _open_file(file: Path, scratch: Path, cuts: list[Cut]) -> Reader | None:
    """A reader of one storage file; a damaged one is repaired into ``scratch`` first."""
    try:
        reader = Reader(file)
        reader.open()
        return reader
    except (ReaderError, sqlite3.Error, OSError) as err:
        reason = str(err)
    repair = _repair_mcap if file.suffix == ".mcap" else _repair_sqlite
    repaired = scratch / file.name
    try:
        kept = repair(file, repaired)
    except (sqlite3.Error, OSError) as err:  # a damaged small table, a full scratch disk
        kept, reason = None, f"{reason}; repair failed: {err}"
    if kept is None:
        cuts.append(Cut(file, f"unreadable ({reason}); nothing whole in it"))
        return None
    cuts.append(Cut(file, reason, kept))
    try:
        reader = Reader(repaired)
        reader.open()
    except (ReaderError, sqlite3.Error, OSError) as err:
        cuts[-1] = Cut(file, f"unreadable ({reason}; repaired copy: {err})")
        return None
    return reader


def _repair_mcap(src: Path, dst: Path) -> str | None:
    """Copy the whole records of an MCAP file that has no footer (or a cut one) and close it
    with DataEnd and a footer without summary; rosbags then scans it. Returns what was kept.
    Messages live in chunks (``ros2 bag record``: 768 KiB each), so a cut loses the last one."""
    data = src.read_bytes()
    if not data.startswith(_MCAP_MAGIC):
        return None
    offset = len(_MCAP_MAGIC)
    while offset + 9 <= len(data):
        op, length = data[offset], struct.unpack_from("<Q", data, offset + 1)[0]
        end = offset + 9 + length
        if end > len(data) or op in (_MCAP_DATA_END, _MCAP_FOOTER):
            break
        if op == 0 or (offset == len(_MCAP_MAGIC) and op != _MCAP_HEADER):
            return None
        offset = end
    if offset == len(_MCAP_MAGIC):
        return None
    data_end = struct.pack("<BQI", _MCAP_DATA_END, 4, 0)
    footer = struct.pack("<BQQQI", _MCAP_FOOTER, 20, 0, 0, 0)
    dst.write_bytes(data[:offset] + data_end + footer + _MCAP_MAGIC)
    return f"{offset / 2**20:.1f} of {len(data) / 2**20:.1f} MiB"


def _repair_sqlite(src: Path, dst: Path) -> str | None:
    """Copy the readable rows of a damaged rosbag2 sqlite3 file into a fresh one: the small
    tables whole, messages in insertion (= receive) order until the first missing page.

    A cut file is first padded with zeros to the page count its header states: SQLite refuses
    a schema whose index root page (written last) lies past the end of the file."""
    data = src.read_bytes()
    if not data.startswith(b"SQLite format 3\x00") or len(data) < 100:
        return None
    page_size = struct.unpack_from(">H", data, 16)[0] or 1
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack_from(">I", data, 28)[0]
    padded = dst.with_name(dst.name + ".padded")
    padded.write_bytes(data + bytes(max(0, pages * page_size - len(data))))
    try:
        return _copy_rows(padded, dst)
    finally:
        padded.unlink()


def _copy_rows(src: Path, dst: Path) -> str | None:
    try:
        old = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
        tables = old.execute("SELECT name, sql FROM sqlite_master WHERE type='table'").fetchall()
    except sqlite3.Error:
        return None
    if not {"messages", "topics"} <= {name for name, _ in tables}:
        old.close()
        return None
    new = sqlite3.connect(dst)
    kept = 0
    try:
        for name, sql in tables:
            new.execute(sql)
            if name != "messages":  # schema, metadata, topics, message definitions: small
                _copy_table(old, new, f"SELECT * FROM {name}", name)  # noqa: S608 (own names)
        cursor = old.execute("SELECT * FROM messages ORDER BY id")
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.DatabaseError:
                break  # the first page the cut removed
            if row is None:
                break
            new.execute(f"INSERT INTO messages VALUES ({','.join('?' * len(row))})", row)  # noqa: S608
            kept += 1
        new.commit()
    finally:
        new.close()
        old.close()
    return f"{kept} messages"


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, query: str, name: str) -> None:
    rows = old.execute(query).fetchall()
    if rows:
        marks = ",".join("?" * len(rows[0]))
        new.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)  # noqa: S608 (own names)
