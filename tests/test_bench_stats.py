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
