"""Process settings every entry point applies before torch loads: import this module first.

The simulator, renderer and planner share few cores, and libgomp's default spin-wait between
torch ops is ruinous there: spinning threads made CEM plans and training steps several times
slower (bench/results/planning.md; docs/experiments.md). `OMP_WAIT_POLICY=ACTIVE` in the
environment still wins.
"""

from __future__ import annotations

import os
import sys

OMP_POLICY_APPLIES = "torch" not in sys.modules
"""False when torch (and its OpenMP) loaded before this module: the policy then came too late."""
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
