"""Wilson intervals against textbook values."""

import pytest

from agent.stats import wilson_interval


def test_wilson_matches_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(46, 50)
    assert lo == pytest.approx(0.8117, abs=1e-3) and hi == pytest.approx(0.9685, abs=1e-3)
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(0, 0)


def test_success_table_names_the_checkpoint_and_its_distinguishing_overrides():
    """Two rows of one checkpoint that differ only by an agent setting must both show it."""
    from bench.success import extra_overrides, to_markdown

    base = dict(task="push", agent="learned", checkpoint="ck", protocol="dataset", episodes=50,
                success_rate=0.22, success_any_rate=0.64, mean_final_distance=0.094,
                plan_ms_p50=452.0, plan_ms_p95=658.0)  # fmt: skip
    shared = ["agent.checkpoint=ck", "planner.horizon=5", "planner.num_samples=128"]
    row = base | {"overrides": [*shared, "agent.energy_reduce=sum"]}
    assert extra_overrides(row) == ["agent.energy_reduce=sum"]
    md = to_markdown({"a": base | {"overrides": shared}, "b": row}, "test machine")
    assert "| ck | 50 | 0.22 | [0.13, 0.35] | 0.64 | [0.50, 0.76] |" in md
    assert "| ck agent.energy_reduce=sum | 50 |" in md


def test_wilson_edges_and_the_partial_table_form():
    from agent.stats import wilson_or_unit

    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0
    lo, hi = wilson_interval(43, 50)
    assert lo < 43 / 50 < hi and hi - lo == pytest.approx(0.19, abs=0.02)
    assert wilson_or_unit(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="outside"):
        wilson_interval(11, 10)


def test_one_wilson_implementation():
    """Every bench module takes its interval from agent.stats (there were three copies)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [*(root / "bench").rglob("*.py"), *(root / "agent").rglob("*.py")]:
        if path != root / "agent" / "stats.py":
            assert not re.search(r"def wilson_interval", path.read_text()), path


def test_success_dataset_flag_takes_a_path_or_task_paths():
    from bench.success import dataset_for

    assert dataset_for("push", []) == ""  # the task's own held-out set (bench heldout)
    assert dataset_for("push", ["x.h5"]) == "x.h5"
    specs = ["push=p.h5", "pickplace=q.h5"]
    assert dataset_for("push", specs) == "p.h5" and dataset_for("pickplace", specs) == "q.h5"
    assert dataset_for("reach", specs) == ""
    with pytest.raises(ValueError, match="not a task"):
        dataset_for("push", ["pusher=p.h5"])


def test_archived_tables_say_when_and_why_rows_were_moved(tmp_path):
    """The success table under archive/ ends with one line per date and reason; the live
    table, whose rows were never archived, has none."""
    from bench import store
    from bench.success import render

    row = {"task": "reach", "agent": "learned", "checkpoint": "checkpoints/old", "episodes": 2,
           "success_rate": 0.5, "success_any_rate": 0.5, "mean_final_distance": 0.1,
           "plan_ms_p50": 1.0, "plan_ms_p95": 2.0, "protocol": "task"}  # fmt: skip
    store.merge("success", {"a": row, "b": row, "c": row}, render, tmp_path)
    store.archive("success", ["a", "b"], "retired with checkpoints/old", render, tmp_path)
    store.archive("success", ["c"], "replaced", render, tmp_path)
    archived = (tmp_path / "archive" / "success.md").read_text()
    assert archived.count("| task | reach | learned | checkpoints/old |") == 3
    date = store.load("success", tmp_path / "archive")["rows"]["a"]["archived"]["date"]
    assert archived.endswith(
        f"Archived:\n\n* {date}, 1 row: replaced\n* {date}, 2 rows: retired with checkpoints/old\n"
    )
    assert "Archived" not in (tmp_path / "success.md").read_text()


def test_success_cell_writes_a_row_with_its_provenance(tmp_path, monkeypatch):
    """`python -m bench success` smoke run (random agent, one episode) into a scratch store."""
    import json

    from bench import success

    monkeypatch.setattr(success, "OUT", tmp_path)  # never touch bench/results from a test
    monkeypatch.setattr("sys.argv", ["python -m bench success", "--cell", "reach:random"])
    success.main(["--cell", "reach:random", "--episodes", "1"])
    row = json.loads((tmp_path / "success.json").read_text())["rows"]["reach:random"]
    assert row["episodes"] == 1 and len(row["wilson95"]) == 2
    prov = row["provenance"]
    assert prov["command"] == "python -m bench success --cell reach:random"
    assert prov["machine"]["device"] and "checkpoint" not in prov
    md = (tmp_path / "success.md").read_text()
    assert "| task | reach | random | - | 1 |" in md and "no GPU" not in md
