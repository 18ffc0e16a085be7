"""Docs quote the results store: their tables are rendered from it, and a success rate quoted
with its interval outside a table must be one a stored row holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import tables

ROOT = Path(__file__).resolve().parent.parent


def test_every_doc_table_is_the_stored_rows() -> None:
    """`python -m bench tables --check`: each table block in README.md and docs/ is what the
    store renders now (re-render with `python -m bench tables` after a run)."""
    for path in tables.DOCS:
        text = path.read_text()
        assert tables.rewrite(text) == text, f"{path}: run python -m bench tables"
    blocks = {m["name"] for p in tables.DOCS for m in tables.BLOCK.finditer(p.read_text())}
    assert {"headline", "headline-commands", *tables.VIEWS} == blocks  # no view goes unused


def test_no_doc_quotes_a_success_rate_the_store_does_not_hold() -> None:
    """Outside the generated tables (and docs/experiments.md, the record of deleted ideas), a
    quoted `rate [lo, hi]` must match a stored row; a hand copy that went stale fails here."""
    assert tables.unheld_quotes() == []
    checked = {p.relative_to(ROOT).as_posix() for p in tables.quoting_docs()}
    assert {"README.md", "docs/results.md", "envs/README.md"} <= checked
    assert "docs/experiments.md" not in checked
    assert not any(p.startswith("bench/results/") for p in checked)


@pytest.mark.parametrize(
    ("text", "rate", "lo", "hi"),
    [
        ("push 0.66 [0.52, 0.78] at the end", 0.66, 0.52, 0.78),
        ("**0.66** [0.52, 0.78]", 0.66, 0.52, 0.78),
        ("reaches 66 % [52, 78]", 0.66, 0.52, 0.78),
        ("| **66 [52, 78]** |", 0.66, 0.52, 0.78),
        ("64 % [50 %, 76 %]", 0.64, 0.50, 0.76),
        ("0 % [0, 7]", 0.0, 0.0, 0.07),
        ("ends within 5 cm on 3 [95 %: 0.08, 0.50]", 3, 0.08, 0.50),  # a count of successes
    ],
)
def test_quotes_read_rates_as_fractions_or_percent(text, rate, lo, hi) -> None:
    (q,) = tables.quotes(text)
    assert (q.rate, q.lo, q.hi) == pytest.approx((rate, lo, hi))
    assert q.count == isinstance(rate, int)


@pytest.mark.parametrize(
    "text", ["x [0.25, 0.7] m", "an action in [-1, 1]^2", "lookat:[0.0,0.0,0.0]", "v0.2 [0.1, 0.3]"]
)
def test_brackets_that_are_not_success_rates_are_no_quotes(text) -> None:
    assert list(tables.quotes(text)) == []


def test_a_quote_is_held_only_by_a_row_with_that_rate_and_interval(tmp_path: Path) -> None:
    """33 of 50 is 0.66 [0.52, 0.78]: the rate, the interval (at the quote's precision, in
    % or as fractions) and a count must all come from one stored (rate, episodes)."""
    row = {"episodes": 50, "success_rate": 0.66, "moving_episodes": 13, "moving_rate": 3 / 13}
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "x.json").write_text(json.dumps({"rows": {"k": row}}))
    stored = tables.stored_rates(tmp_path)
    assert (0.66, 50) in stored and (3 / 13, 13) in stored  # archive rows count
    for good in ("0.66 [0.52, 0.78]", "66 % [52, 78]", "3 [95 %: 0.08, 0.50]"):
        assert tables.held(next(tables.quotes(good)), stored), good
    for stale in ("0.66 [0.50, 0.80]", "0.64 [0.52, 0.78]", "0.42 [0.29, 0.56]", "4 [0.08, 0.50]"):
        assert not tables.held(next(tables.quotes(stale)), stored), stale


def test_unheld_quotes_name_the_file_and_line(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "s.json").write_text(json.dumps({"rows": {"k": {"episodes": 50, "r": 0.66}}}))
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("shipped: 0.66 [0.52, 0.78]\n")
    (tmp_path / "docs" / "a.md").write_text("intro\n\nstays at 0.42 [0.29, 0.56]\n")
    (tmp_path / "docs" / "experiments.md").write_text("deleted: 0.42 [0.29, 0.56]\n")
    block = "<!-- table: x (python -m bench tables) -->\n| 0.1 [0.0, 0.9] |\n<!-- end table -->\n"
    (tmp_path / "docs" / "b.md").write_text(block)
    assert tables.unheld_quotes(tmp_path, results) == ["docs/a.md:3: 0.42 [0.29, 0.56]"]
