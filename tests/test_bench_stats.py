"""Wilson intervals against textbook values."""

import pytest

from bench.stats import wilson_interval


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
