"""Confidence intervals for success rates (STYLE: every figure with a 95 % Wilson interval).

The one Wilson implementation lives in agent/stats.py (wm-eval prints intervals too, and the
agent layer cannot import bench/); every bench module imports it from here.
"""

from __future__ import annotations

from agent.stats import wilson_interval

__all__ = ["wilson_interval", "wilson_or_unit"]


def wilson_or_unit(successes: int, trials: int) -> tuple[float, float]:
    """`wilson_interval`, but (0, 1) for zero trials: a row with no episodes yet (a partial
    run's table) says nothing, instead of raising."""
    return (0.0, 1.0) if trials == 0 else wilson_interval(successes, trials)
