"""The one results store: bench/results/<name>.{json,md}, read-merge-written under a lock.

Every bench module writes through here, so every result file is:

* **merged, not overwritten**: rows are merged by key into what is on disk, re-read under an
  exclusive `fcntl.flock` on `results/.<name>.lock`, so parallel runs (anchors' chunks, two
  success cells) lose nothing (measured before the lock: one of 50 episodes lost to two chunks
  writing at once);
* **written atomically**: temp file + `os.replace`, so a kill leaves the old file, never half;
* **traceable**: `provenance()` gives each row the command that made it, the git commit, the
  machine (with the device it actually ran on) and, where the caller knows them, the recipe of
  its data (dataset attrs) and model (checkpoint config hash);
* **archived, never lost**: a row replaced under its key, or moved by `archive()`, goes to
  `results/archive/<name>.{json,md}` with the date and the reason. Both files are read and
  checked before either is written, and the archive is written first, so a failure at any
  point leaves every row in at least one file; rows `merge()` or `save()` could not store
  are kept in a recovery file the error names (`keep_unstored`). `check()` refuses, before a
  long run, a store these writes would fail on. Rows superseded by a newer model are moved by
  hand with `python -m bench archive` (`main_archive`).

The JSON layout is `{"rows": {key: row}, ...}`; single-document results (planning, envs, ...)
use `update()` on the whole document.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import importlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from envs.data.storage import DiskFullError, atomic_write, check_writable

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
Render = Callable[[dict[str, Any]], str]


@contextmanager
def locked(name: str, out: Path = RESULTS) -> Iterator[Path]:
    """Hold the exclusive lock of result `name` (blocks until other writers are done)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield out / f"{name}.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load(name: str, out: Path = RESULTS) -> dict[str, Any]:
    """The stored document of result `name` (`{"rows": {}}` when there is none yet); a file
    that is not a JSON object with a `rows` mapping is refused with its path."""
    path = out / f"{name}.json"
    if not path.exists():
        return {"rows": {}}
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); restore it (git checkout -- {path}) or move it "
            "aside"
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("rows", {}), dict):
        raise ValueError(f'{path}: expected a JSON object with a "rows" mapping')
    return data


def check(name: str, out: Path = RESULTS) -> None:
    """Refuse, before a long run, a store `merge` would fail on at its end: result `name` or
    its archive unreadable or not a results file, or their folders not writable."""
    for folder in (out, out / "archive"):
        if folder == out or folder.exists():
            with locked(name, folder):
                load(name, folder)
            check_writable(folder)


def _texts(data: dict[str, Any], render: Render | None) -> tuple[bytes, bytes | None]:
    """The JSON and markdown of a document, both made before anything is written: a renderer
    that fails leaves every file as it was."""
    text = json.dumps(data, indent=2, default=float) + "\n"
    return text.encode(), render(data).encode() if render is not None else None


def _put(name: str, texts: tuple[bytes, bytes | None], out: Path) -> None:
    for suffix, text in zip(("json", "md"), texts, strict=True):
        if text is None:
            continue
        path = out / f"{name}.{suffix}"
        try:
            atomic_write(path, text)
        except DiskFullError:
            raise  # already names the file
        except OSError as err:
            raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err


def update(
    name: str,
    change: Callable[[dict[str, Any]], Any],
    render: Render | None = None,
    out: Path = RESULTS,
) -> dict[str, Any]:
    """Read result `name`, apply `change(data)` in place, write JSON (and `render(data)` as
    markdown), all under the lock. Returns the document as written."""
    with locked(name, out):
        data = load(name, out)
        change(data)
        _put(name, _texts(data, render), out)
    return data


class UnstoredRowsError(OSError):
    """A store write failed; the message names the file and the recovery file that holds the
    measured rows (`keep_unstored`)."""


@contextmanager
def keep_unstored(name: str, document: dict[str, Any], out: Path = RESULTS) -> Iterator[None]:
    """If the block fails, write `document` (what was measured and not stored, in the results
    layout) to a recovery file and say where: a named error (OSError, ValueError) becomes an
    `UnstoredRowsError` naming both files; a bug keeps its traceback, the path goes to stderr."""
    try:
        yield
    except Exception as err:
        kept = _recovery_file(name, document, out)
        where = (
            f"the measured result is kept in {kept} (add its rows to {out / name}.json once "
            "that is fixed)"
            if kept
            else "no folder took a recovery file, so the measured result is lost"
        )
        if isinstance(err, (OSError, ValueError)):
            raise UnstoredRowsError(f"{err}; {where}") from err
        print(f"bench.store: {name}: {where}", file=sys.stderr)
        raise


def _recovery_file(name: str, document: dict[str, Any], out: Path) -> Path | None:
    """`document` as `<name>.unstored-<time>-<pid>.json` in `out`, else in the temp folder."""
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    text = json.dumps(document, indent=2, default=float).encode()
    for folder in (out, Path(tempfile.gettempdir())):
        try:
            return atomic_write(folder / f"{name}.unstored-{stamp}-{os.getpid()}.json", text)
        except OSError:
            continue
    return None


def save(
    name: str, document: dict[str, Any], render: Render | None = None, out: Path = RESULTS
) -> dict[str, Any]:
    """Replace result `name` by `document` (single-document results: planning, envs, ...),
    under the lock and atomically like every other write."""

    def change(data: dict[str, Any]) -> None:
        data.clear()
        data.update(document)

    with keep_unstored(name, document, out):
        return update(name, change, render, out)


def merge(
    name: str,
    rows: dict[str, dict[str, Any]],
    render: Render | None = None,
    out: Path = RESULTS,
    archive_render: Render | None = None,
) -> dict[str, Any]:
    """Merge `rows` by key into result `name`; a row that replaces a different one under the
    same key sends the old one to the archive (reason "replaced by a newer run")."""

    def change(stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        replaced = {k: stored[k] for k, row in rows.items() if k in stored and stored[k] != row}
        stored.update(rows)
        return replaced

    reason = "replaced by a newer run under the same key"
    with keep_unstored(name, {"rows": rows}, out):
        return _with_archive(name, change, reason, render, archive_render, out)


def archive(
    name: str,
    keys: list[str],
    reason: str,
    render: Render | None = None,
    out: Path = RESULTS,
    archive_render: Render | None = None,
) -> list[str]:
    """Move rows `keys` of result `name` to its archive with `reason`; returns the keys moved."""

    moved: dict[str, dict[str, Any]] = {}

    def change(stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        moved.update((key, stored.pop(key)) for key in keys if key in stored)
        return moved

    _with_archive(name, change, reason, render, archive_render or render, out)
    return list(moved)


def _with_archive(
    name: str,
    change: Callable[[dict[str, dict[str, Any]]], dict[str, dict[str, Any]]],
    reason: str,
    render: Render | None,
    archive_render: Render | None,
    out: Path,
) -> dict[str, Any]:
    """Apply `change(rows)`, which returns the rows it displaced, to result `name`, and append
    those to archive/<name> with `reason`. Both files are read, checked and rendered before
    either is written, and the archive is written first (both under their locks, always taken
    in this order): a failure anywhere leaves every row in at least one of the two files."""
    with locked(name, out):
        data = load(name, out)
        displaced = change(data.setdefault("rows", {}))
        texts = _texts(data, render)
        if displaced:
            with locked(name, out / "archive"):
                archived = load(name, out / "archive")
                _add_archived(archived.setdefault("rows", {}), displaced, reason)
                _put(name, _texts(archived, archive_render), out / "archive")
        _put(name, texts, out)
    return data


def archive_notes(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Markdown lines saying when and why archived rows were moved, one per date and reason
    (empty for rows that were never archived): the tail of a table under results/archive/."""
    moves = Counter(
        (row["archived"]["date"], row["archived"]["reason"]) for row in rows if "archived" in row
    )
    lines = [f"* {date}, {n} row{'s' * (n > 1)}: {why}" for (date, why), n in sorted(moves.items())]
    return ["", "Archived:", "", *lines] if lines else []


def _add_archived(
    stored: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]], reason: str
) -> None:
    """Add `rows` to an archive's rows; keys that are already there get a date suffix."""
    today = datetime.date.today().isoformat()
    for key, row in rows.items():
        entry = {**row, "archived": {"date": today, "reason": reason}}
        slot, i = key, 1
        while slot in stored and stored[slot] != entry:
            slot, i = f"{key} (archived {today} #{i})", i + 1
        stored[slot] = entry


# --- provenance ------------------------------------------------------------------------------


def command() -> str:
    """The command line that is running, as a user would type it again."""
    prog = sys.argv[0]  # the door (bench/__main__.py) sets it to `python -m bench <name>`
    return " ".join([prog, shlex.join(sys.argv[1:])]).strip()


def git_commit(root: Path = ROOT) -> str:
    """`git rev-parse HEAD` of the checkout (with `+dirty` if tracked files changed), or
    "unknown" outside a git checkout. Result files do not count as changes: a command that
    measures several cells writes bench/results/ between them, and its code is still HEAD."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)bench/results",
            ],  # fmt: skip
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device() -> str:
    """What torch computes on here: the CUDA device's name, else "cpu"."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def machine() -> dict[str, Any]:
    """Platform, CPU count, torch version and the device actually used."""
    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "device": device(),
    }


def machines(data: dict[str, Any]) -> str:
    """The machines the rows ran on (rows from before provenance: the file's old line)."""
    seen = {machine_line(r["provenance"]["machine"]) for r in data["rows"].values()
            if "provenance" in r}  # fmt: skip
    if "machine" in data:
        seen.add(data["machine"])
    return "; ".join(sorted(seen)) or "not recorded"


def machine_line(m: dict[str, Any] | str) -> str:
    """One readable line for a markdown header (old results stored a plain string)."""
    if isinstance(m, str):
        return m
    return f"{m['platform']}, {m['cpus']} CPUs, torch {m['torch']}, device {m['device']}"


def dataset_recipe(path: str | Path | None) -> dict[str, Any] | None:
    """How a recorded HDF5 dataset was made, from its attrs: env id, policy, episode count and
    the first episode's seed (wm-collect seeds episodes `seed, seed + 1, ...`)."""
    if not path:
        return None
    path = Path(path)
    recipe: dict[str, Any] = {"path": str(path)}
    if not path.is_file():
        return recipe | {"missing": True}
    import h5py

    with h5py.File(path, "r") as f:
        data = f["data"]
        recipe["env_id"] = _text(data.attrs.get("env_id"))
        policy = _text(data.attrs.get("policy"))
        recipe["policy"] = json.loads(policy) if policy else None
        demos = sorted((k for k in data if k.startswith("demo_")), key=lambda k: int(k[5:]))
        recipe["episodes"] = len(demos)
        if demos and "seed" in data[demos[0]].attrs:
            recipe["first_seed"] = int(data[demos[0]].attrs["seed"])
    return recipe


def checkpoint_recipe(path: str | Path | None) -> dict[str, Any] | None:
    """A checkpoint's path and the sha256 (first 16 hex digits) of its config.json, which
    holds the model and training configs: two rows with one hash planned with one model."""
    if not path:
        return None
    path = Path(str(path).split(" ")[0])  # labels like "ckpt (stage 1 only)" name a path first
    config = path / "config.json"
    if not config.is_file():
        return {"path": str(path), "missing": True}
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:16]
    return {"path": str(path), "config_sha256": digest}


def provenance(
    dataset: str | Path | None = None, checkpoint: str | Path | None = None
) -> dict[str, Any]:
    """What a stored row needs to be made again: command, commit, machine, date, and the
    recipes of its data and model where the caller knows them."""
    out: dict[str, Any] = {
        "command": command(),
        "commit": git_commit(),
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if dataset:
        out["dataset"] = dataset_recipe(dataset)
    if checkpoint:
        out["checkpoint"] = checkpoint_recipe(checkpoint)
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


# --- archiving superseded rows by hand (`python -m bench archive`) ---------------------------

# result name -> "module:function" rendering its markdown from the stored document
RENDERERS = {
    "success": "bench.success:render",
    "anchors": "bench.anchors:to_markdown",
    "plan_diagnosis": "bench.plan_diagnosis:render",
    "energy_ablation": "bench.energy:render_ablation",
    "energy_configs": "bench.energy:render_configs",
}
SUPERSEDED = re.compile(r"\b(previous|replaced)\b", re.IGNORECASE)


def renderer(name: str) -> Render:
    module, _, function = RENDERERS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def superseded_keys(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Rows whose key, label or checkpoint label names their model as previous or replaced."""
    return [
        key
        for key, row in rows.items()
        if any(
            SUPERSEDED.search(str(text or ""))
            for text in (key, row.get("label"), row.get("checkpoint"))
        )
    ]


def main_archive(argv: list[str] | None = None) -> None:
    """Move superseded rows of a result to bench/results/archive/<name>.{json,md}.

        python -m bench archive success --superseded     # rows labelled previous / replaced
        python -m bench archive success --key "push:learned:..." --reason "retrained"

    A results table keeps the rows a reader should quote: the current headline per task, agent
    and protocol, and the variants measured beside it. A row is superseded when a newer run
    replaced it under the same key (`merge` archives those by itself) or when its label says
    its model was "previous" or "replaced". Archived rows keep everything they had, plus the
    date and the reason they were moved; nothing is deleted.
    """
    parser = argparse.ArgumentParser(description="Move superseded rows of a result to archive/.")
    parser.add_argument("name", choices=sorted(RENDERERS), help="the result (bench/results/NAME)")
    parser.add_argument("--superseded", action="store_true", help="rows labelled previous/replaced")
    parser.add_argument("--key", action="append", default=[], help="a row key to archive")
    parser.add_argument("--reason", default="", help="why (stored with each archived row)")
    parser.add_argument("--dry-run", action="store_true", help="list the rows, move nothing")
    args = parser.parse_args(argv)
    rows = load(args.name)["rows"]
    keys = list(args.key)
    unknown = [k for k in keys if k not in rows]
    if unknown:
        parser.error(f"no such rows in {args.name}.json: {unknown}")
    if args.superseded:
        keys += [k for k in superseded_keys(rows) if k not in keys]
    reason = args.reason or "its label names a previous / replaced model"
    for key in keys:
        print(f"{'would archive' if args.dry_run else 'archive'}: {key}")
    if keys and not args.dry_run:
        render = renderer(args.name)
        archive(args.name, keys, reason, render, archive_render=render)
        print(f"{len(keys)} rows -> bench/results/archive/{args.name}.{{json,md}}")
