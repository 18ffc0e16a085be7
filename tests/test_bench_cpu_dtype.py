"""bench cpu_dtype: both dtypes timed, and bf16 keeps the ranking of the shipped cube model."""

from bench.cpu_dtype import interleaved, planner_cost


def test_interleaved_times_both_dtypes_in_alternating_order():
    calls: list[bool] = []
    out = interleaved(calls.append, reps=3)
    assert set(out) == {"fp32", "bf16"} and all(v >= 0 for v in out.values())
    assert calls == [False, True, False, True, True, False, False, True]


def test_bf16_keeps_the_cube_models_energy_ranking():
    row = planner_cost("checkpoints/cube_lewm", reps=1, samples=32, blocks=2)
    assert row["fp32_ms"] > 0 and row["bf16_ms"] > 0
    assert row["energy_spearman"] > 0.95, row
