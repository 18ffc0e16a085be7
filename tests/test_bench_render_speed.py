"""bench.render_speed: the one place render speed is measured, written through the store."""

from __future__ import annotations

import json

from bench import render_speed, store


def test_image_size_part_times_three_ways_of_drawing_a_frame() -> None:
    """Smoke run of the cheap part (Reacher-v5, a few steps each)."""
    part = render_speed.image_size(steps=3)
    assert set(part["steps_per_s"]) == {"64px", "64px_no_fast_render", "480px_resized"}
    assert all(rate > 0 for rate in part["steps_per_s"].values())


def test_stored_parts_render_with_their_origin(tmp_path, monkeypatch) -> None:
    """A part measured now carries its provenance; a migrated one says it has none; measuring
    one part keeps the other as stored."""
    monkeypatch.setattr(render_speed, "OUT", tmp_path)
    old = {"env": "e", "steps": 40, "steps_per_s": {"as_modelled": 3.9}, "command": "c",
           "machine": "m"}  # fmt: skip
    (tmp_path / "render_speed.json").write_text(json.dumps({"meshes": old}))
    monkeypatch.setattr(
        render_speed, "PARTS", {"image_size": lambda steps: {"env": "r", "steps": steps,
                                                              "steps_per_s": {"64px": 200.0}}}
    )  # fmt: skip
    render_speed.main(["--only", "image_size", "--size-steps", "5"])
    data = store.load("render_speed", tmp_path)
    assert data["meshes"] == old and data["image_size"]["provenance"]["commit"]
    md = (tmp_path / "render_speed.md").read_text()
    assert "| as modelled (shadows, multisampling) | 3.9 |" in md and "(no provenance)" in md
    assert "| rendered at 64 px, `fast_render` | 200.0 |" in md
