"""Confidence intervals for success rates, for every layer that reports one.

The agent layer cannot import bench/, yet `wm-eval` prints success rates that need their
interval as much as the bench tables do: a rate of 8/10 is [49 %, 94 %] at 95 %.
"""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (z = 1.96) Wilson score interval for ``successes`` out of ``trials``.

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes, which small robot evaluations hit often (0/10 is not "exactly 0 %").
    """
    if trials < 1:
        raise ValueError(f"trials={trials}: need at least one")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} outside [0, trials={trials}]")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_or_unit(successes: int, trials: int) -> tuple[float, float]:
    """`wilson_interval`, but (0, 1) for zero trials: a row with no episodes yet (a partial
    run's table) says nothing, instead of raising."""
    return (0.0, 1.0) if trials == 0 else wilson_interval(successes, trials)
