"""Smoke run of the planning benchmark at tiny sizes (the real run: `python -m bench planning`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench import planning


def test_planning_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    result = planning.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "planning.json").read_text())
    assert saved["matmul_gflops"] > 0
    assert saved["predictor"].startswith("world_model.WorldModel")  # the project's own predictor
    assert {"cem", "mppi"} <= set(saved["defaults"])
    assert len(saved["grid"]) == len(result["samples"]) * len(result["horizons"])
    for row in saved["versus_pytorch_mppi"]:
        assert row["ours_transitions_per_s"] > 0 and row["pytorch_mppi_transitions_per_s"] > 0
    assert "pytorch_mppi" in (tmp_path / "planning.md").read_text()


def test_cost_functions_score_every_candidate() -> None:
    for dynamics in (planning.project_predictor(), planning.null_dynamics()):
        cost_fn = planning.make_cost_fn(dynamics, num_envs=2)
        costs = cost_fn(torch.zeros(2, 5, 3, 7))
        assert costs.shape == (2, 5) and torch.isfinite(costs).all()
