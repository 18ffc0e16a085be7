"""bench.store (the one results store) and `python -m bench` (the one entry point)."""

from __future__ import annotations

import json
import multiprocessing
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench import store

ROOT = Path(__file__).resolve().parent.parent


def _render(data: dict) -> str:
    return "".join(f"| {key} | {row['value']} |\n" for key, row in sorted(data["rows"].items()))


def _merge_rows(out: str, keys: list[str]) -> None:
    for key in keys:
        store.merge("demo", {key: {"value": key}}, _render, Path(out))


def test_two_processes_merging_at_once_lose_no_row(tmp_path: Path) -> None:
    """Each merge re-reads the file under the lock: rows written by the other process in the
    meantime are kept, and no temp file is left behind."""
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_merge_rows, args=(str(tmp_path), [f"{i}:{n}" for n in range(40)]))
        for i in ("a", "b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = json.loads((tmp_path / "demo.json").read_text())["rows"]
    assert len(rows) == 80
    assert (tmp_path / "demo.md").read_text().count("\n") == 80  # markdown from the same data
    assert not list(tmp_path.glob(".demo.*.tmp-*"))


def test_a_replaced_row_goes_to_the_archive(tmp_path: Path) -> None:
    store.merge("demo", {"k": {"value": 1}}, _render, tmp_path, archive_render=_render)
    store.merge("demo", {"k": {"value": 1}}, _render, tmp_path)  # same row: nothing archived
    assert not (tmp_path / "archive").exists()
    store.merge("demo", {"k": {"value": 2}}, _render, tmp_path, archive_render=_render)
    assert store.load("demo", tmp_path)["rows"]["k"]["value"] == 2
    old = store.load("demo", tmp_path / "archive")["rows"]["k"]
    assert old["value"] == 1 and "replaced" in old["archived"]["reason"]
    assert "| k | 1 |" in (tmp_path / "archive" / "demo.md").read_text()
    # moved by hand: gone from the table, kept in the archive under a fresh key
    assert store.archive("demo", ["k", "absent"], "test", _render, tmp_path, _render) == ["k"]
    assert store.load("demo", tmp_path)["rows"] == {}
    assert len(store.load("demo", tmp_path / "archive")["rows"]) == 2


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    store.merge("demo", {"k": {"value": 1}}, _render, tmp_path)

    def broken(data: dict) -> str:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        store.merge("demo", {"j": {"value": 2}}, broken, tmp_path)
    assert store.load("demo", tmp_path)["rows"].keys() == {"k"}  # neither file was touched
    assert (tmp_path / "demo.md").read_text() == "| k | 1 |\n"


def test_provenance_names_command_commit_machine_and_model(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"world_model": {}}')
    p = store.provenance(checkpoint=ckpt, dataset=tmp_path / "absent.h5")
    assert p["command"] and p["commit"] and p["date"]
    assert set(p["machine"]) == {"platform", "cpus", "torch", "device"}
    assert p["machine"]["device"] != "no GPU"
    assert len(p["checkpoint"]["config_sha256"]) == 16
    assert p["dataset"] == {"path": str(tmp_path / "absent.h5"), "missing": True}


def test_git_commit_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    assert store.git_commit(tmp_path) == "unknown"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_bench_help_lists_every_benchmark() -> None:
    from bench.__main__ import BENCHES, entry

    res = _bench("--help")
    assert res.returncode == 0
    for name in BENCHES:
        assert f"  {name} " in res.stdout
        assert callable(entry(name))


def test_the_door_is_the_only_way_in() -> None:
    """`python -m bench NAME` runs every benchmark: no bench module has a `__main__` of its
    own, and no script or doc runs one as `python -m bench.NAME`."""
    import re

    for path in (ROOT / "bench").glob("*.py"):
        if path.name != "__main__.py":
            assert '__name__ == "__main__"' not in path.read_text(), path
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "scripts").glob("*")]
    docs += [*ROOT.glob("*/README.md"), *(ROOT / "checkpoints").glob("*/README.md")]
    for path in docs:
        text = path.read_text() if path.is_file() else ""
        for line in text.splitlines():
            if re.search(r"-m bench\.\w", line):
                assert re.search(r"\(at [0-9a-f]{7,}\)", line), (path, line)  # older commits


def test_unknown_benchmark_is_one_clear_line() -> None:
    res = _bench("sucess")
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown benchmark 'sucess'" in lines[0] and "success" in lines[0]


def test_bench_heldout_prints_its_fixed_recipe() -> None:
    res = _bench("heldout", "--task", "push", "--print-only")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == (
        ".venv/bin/wm-collect env=panda_push policy.name=mixed policy.expert_fraction=0.7 "
        "policy.noise=0.1 policy.noise_max=0.5 num_episodes=50 seed=500000 "
        "output=data/push_heldout.h5"
    )


def test_readme_headline_is_the_stored_rows() -> None:
    """The README's table is `python -m bench headline`'s: its figures come from the store."""
    from bench.headline import table

    assert table() in (ROOT / "README.md").read_text()
    assert table() in (ROOT / "docs" / "results.md").read_text()


def test_headline_commands_carry_the_stored_settings() -> None:
    """Each headline row's commands re-run its stored rows with their own overrides, episode
    counts and held-out set: the figure beside the command is what the command measures."""
    from bench.headline import HEADLINES, commands

    for h in HEADLINES:
        rows = store.load(h.result)["rows"]
        cmds = commands(h)
        for agent, key in h.keys.items():
            row = rows[key]
            if h.result == "anchors" and agent == "learned" and h.train:
                assert h.train in cmds and (ROOT / h.train.split()[-1]).is_file()
                continue
            cmd = next(c for c in cmds if f":{agent}" in c or f"--agent {agent}" in c)
            assert f"--episodes {row['episodes']}" in cmd
            if row.get("label"):  # the run rewrites the row the table shows
                assert f"--label {row['label']}" in cmd
            for o in row.get("overrides", []):
                assert f"--override {o}" in cmd or o.startswith("agent.checkpoint="), (h.name, o)
        if h.result == "anchors" or rows[h.keys["random"]].get("protocol") == "dataset":
            assert any(c.startswith("python -m bench heldout --task") for c in cmds)


def _written_key(cmd: str) -> str:
    """The stored row key a `bench success` / `bench anchors` command line writes."""
    from bench.success import row_key

    args = shlex.split(cmd)[3:]  # after `python -m bench`
    name, flags = args[0], {}
    overrides = [v for k, v in zip(args[1:], args[2:], strict=False) if k == "--override"]
    for k, v in zip(args[1:], args[2:], strict=False):
        flags.setdefault(k, v)
    if name == "anchors":
        return f"{flags['--task']}:{flags['--agent']}" + (
            f":{flags['--label']}" if "--label" in flags else ""
        )
    task, agent, *checkpoint = flags["--cell"].split(":")
    row = dict(task=task, agent=agent, checkpoint=checkpoint[0] if checkpoint else None)
    return row_key(row | dict(overrides=overrides, protocol=flags.get("--protocol", "task")))


def test_headline_run_rewrites_the_cells_it_shows() -> None:
    """`bench headline --run NAME` writes the very keys the table reads (a learned cell once
    read an old run's key, so a re-run refreshed a row the table did not show)."""
    from bench.headline import HEADLINES, commands

    for h in HEADLINES:
        runs = [c for c in commands(h) if c.split()[:4][-1] in ("success", "anchors")]
        written = {_written_key(c) for c in runs}
        for agent, key in h.keys.items():
            if h.result == "anchors" and agent == "learned" and h.train:
                script = (ROOT / h.train.split()[-1]).read_text()
                task = store.load(h.result)["rows"][key]["task"]
                labels = re.findall(r"--label (\S+)", script)
                assert "bench anchors" in script, h.name
                assert key in {f"{task}:learned", *(f"{task}:learned:{x}" for x in labels)}, key
                continue
            assert key in written, (h.name, agent, key, written)


def test_every_headline_cell_has_provenance_or_says_so() -> None:
    """Every cell: each stored row names its command and commit, or its cell says it has none."""
    from bench.headline import HEADLINES, NO_PROVENANCE, has_provenance, table

    lines = table().splitlines()[2:]
    assert len(lines) == len(HEADLINES)
    for h, line in zip(HEADLINES, lines, strict=True):
        rows = store.load(h.result)["rows"]
        cells = line.split(" | ")[2:5]  # learned, oracle, random
        for agent, cell in zip(("learned", "oracle", "random"), cells, strict=True):
            row = rows[h.keys[agent]]
            assert has_provenance(row) or cell.endswith(NO_PROVENANCE), (h.name, agent)
            assert not (has_provenance(row) and NO_PROVENANCE in cell), (h.name, agent)


def test_archive_moves_rows_labelled_previous_or_replaced(tmp_path: Path) -> None:
    from bench.store import superseded_keys

    rows = {
        "push:learned:ck (replaced):x": {"checkpoint": "ck (replaced)"},
        "push:learned:old": {"checkpoint": "push_lewm@1 (state-fed, replaced)"},
        "push:learned:prev": {"label": "previous model"},
        "push:learned:ck (not shipped)": {"checkpoint": "ck (not shipped)"},
        "push:oracle": {},
    }
    assert superseded_keys(rows) == [
        "push:learned:ck (replaced):x", "push:learned:old", "push:learned:prev"
    ]  # fmt: skip


def test_git_commit_is_dirty_for_code_changes_not_for_results(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "x.md").write_text("a\n")
    (tmp_path / "code.py").write_text("a = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = store.git_commit(tmp_path)
    assert len(clean) == 40 and not clean.endswith("+dirty")
    (tmp_path / "bench" / "results" / "x.md").write_text("b\n")  # an earlier cell's row
    assert store.git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("a = 2\n")
    assert store.git_commit(tmp_path) == clean + "+dirty"


# ------------------------------------------------------------- faults (issue 32: 1, 9, 12)
def _unwritable(monkeypatch, folder: Path) -> None:
    """Fail every store write into `folder` as a read-only location would (root ignores
    chmod, so the fault is injected at the one writer)."""
    real = store.atomic_write

    def write(path, data, *args):
        if Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, data, *args)

    monkeypatch.setattr(store, "atomic_write", write)


def test_a_failed_archive_write_loses_no_row(tmp_path: Path, monkeypatch) -> None:
    """The issue's repro: a truncated archive, or a read-only archive/, once left the row in
    neither file. Both files are read before either is written, the archive first."""
    store.merge("demo", {"k": {"value": 1}}, _render, tmp_path)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "demo.json").write_text('{"rows": {"x": ')
    with pytest.raises(ValueError, match=r"archive/demo\.json is not valid JSON"):
        store.archive("demo", ["k"], "test", _render, tmp_path)
    assert store.load("demo", tmp_path)["rows"] == {"k": {"value": 1}}

    (tmp_path / "archive" / "demo.json").unlink()
    _unwritable(monkeypatch, tmp_path / "archive")
    with pytest.raises(OSError, match=r"cannot write .*archive/demo\.json"):
        store.archive("demo", ["k"], "test", _render, tmp_path)
    assert store.load("demo", tmp_path)["rows"] == {"k": {"value": 1}}
    monkeypatch.undo()
    _unwritable(monkeypatch, tmp_path)  # the archive is written, the table is not: in both
    with pytest.raises(OSError, match=r"cannot write .*/demo\.json"):
        store.archive("demo", ["k"], "test", _render, tmp_path)
    assert "k" in store.load("demo", tmp_path)["rows"]
    assert "k" in store.load("demo", tmp_path / "archive")["rows"]


def test_a_row_that_cannot_be_stored_is_kept_in_a_named_file(tmp_path: Path) -> None:
    store.merge("demo", {"k": {"value": 1}}, _render, tmp_path)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "demo.json").write_text("[]")
    with pytest.raises(store.UnstoredRowsError, match=r"archive/demo\.json") as err:
        store.merge("demo", {"k": {"value": 2}}, _render, tmp_path)  # replaces: needs archive
    kept = Path(str(err.value).split("kept in ")[1].split(" ")[0])
    assert json.loads(kept.read_text()) == {"rows": {"k": {"value": 2}}}
    assert store.load("demo", tmp_path)["rows"] == {"k": {"value": 1}}  # the old row stays


def test_bench_success_checks_the_store_before_any_episode(tmp_path: Path, monkeypatch) -> None:
    """A truncated success.json once crashed the merge after every episode had run."""
    from bench import success

    ran: list[str] = []
    monkeypatch.setattr(success, "OUT", tmp_path)
    monkeypatch.setattr(success, "run_cell", lambda cell, *a: ran.append(cell))
    (tmp_path / "success.json").write_text('{"rows": {"x": ')
    with pytest.raises(ValueError, match=r"success\.json is not valid JSON"):
        success.main(["--episodes", "1", "--cell", "reach:random"])
    assert ran == []


def test_bench_success_keeps_a_measured_row_the_store_refuses(tmp_path: Path, monkeypatch):
    from bench import success

    row = {"task": "reach", "agent": "random", "protocol": "task", "episodes": 2}
    row |= dict(success_rate=0.5, success_any_rate=0.5, mean_final_distance=0.1)
    row |= dict(plan_ms_p50=0.0, plan_ms_p95=0.0)
    monkeypatch.setattr(success, "OUT", tmp_path)
    monkeypatch.setattr(success, "run_cell", lambda *a: row)
    monkeypatch.setattr(store, "check", lambda *a: None)  # the store breaks during the run
    _unwritable(monkeypatch, tmp_path)
    with pytest.raises(store.UnstoredRowsError, match="cannot write") as err:
        success.main(["--episodes", "1", "--cell", "reach:random"])
    kept = Path(str(err.value).split("kept in ")[1].split(" ")[0])
    assert kept.parent != tmp_path and json.loads(kept.read_text())["rows"] == {"reach:random": row}
    kept.unlink()


def test_bad_bench_flags_are_one_line_before_any_episode() -> None:
    from bench.success import check_cells

    with pytest.raises(ValueError, match="bogus:random: expected task:agent"):
        check_cells(["reach:random", "bogus:random"], 1)
    with pytest.raises(ValueError, match="reach:bogus"):
        check_cells(["reach:bogus"], 1)
    res = _bench("success", "--episodes", "0", "--cell", "reach:random")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip() == "python -m bench success: error: --episodes 0: must be >= 1"
