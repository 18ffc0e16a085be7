"""OGBench's own scripted cube oracles as data-collection policies for ``wm/OGBenchCube-v0``.

OGBench records its datasets with two oracles shipped in ``ogbench.manipspace.oracles``:

* ``plan`` (`CubePlanOracle`, its "play" data): interpolates pick / lift / place keyframes
  with random heights, timings and a random clearance point, plus temporally correlated
  noise on the plan itself (``segment_dt`` 0.4 s, plan noise 0.1, smoothing 0.5: its defaults);
* ``markov`` (`CubeMarkovOracle`, its "noisy" data): a phase machine that reacts to the
  current state (``min_norm`` 0.4 as in OGBench's data script).

As in OGBench's collection loop (``chain_tasks``), when an oracle finishes its pick-and-place the env draws a
new target and the oracle starts over, so a long episode holds several tasks. Our ``noise``
adds Gaussian noise of that standard deviation to each of the 5 normalised action dims.

The oracles draw from NumPy's global random state; each policy here keeps its own seeded
state and swaps it in around oracle calls, so episodes are reproducible and the global
stream is left untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle

from envs.ogbench.cube import OGBENCH_ACTION_DIM, OGBenchCubeEnv

ORACLES = ("plan", "markov")
PLAN_NOISE = 0.1  # CubePlanOracle defaults (OGBench's play data)
MARKOV_MIN_NORM = 0.4  # OGBench's data script for its noisy datasets


@contextlib.contextmanager
def _own_global_rng(state: np.random.RandomState) -> Iterator[None]:
    """Run with ``state`` as NumPy's global random state; keep its progress, restore the rest."""
    saved = np.random.get_state()
    np.random.set_state(state.get_state())
    try:
        yield
    finally:
        state.set_state(np.random.get_state())
        np.random.set_state(saved)


def make_oracle_policy(
    env: gym.Env,
    kind: str = "plan",
    noise: float = 0.0,
    seed: int | None = None,
    chain_tasks: bool = True,
) -> Any:
    """``(obs, info) -> action (A,)`` driving ``env`` (wm/OGBenchCube-v0) with an OGBench oracle.

    ``chain_tasks``: after each finished pick-and-place draw a new target and go on (OGBench's
    play data); False solves the episode's own task once and then idles as the oracle does.
    """
    if kind not in ORACLES:
        raise ValueError(f"OGBench oracle {kind!r}: expected one of {ORACLES}")
    if noise < 0:
        raise ValueError(f"noise={noise}: must be >= 0")
    base = env.unwrapped
    if not isinstance(base, OGBenchCubeEnv):
        raise ValueError(f"OGBench oracles drive wm/OGBenchCube-v0 only, not {type(base).__name__}")
    inner = base.ogbench_env
    if kind == "plan":
        oracle = CubePlanOracle(env=inner, noise=PLAN_NOISE)
    else:
        oracle = CubeMarkovOracle(env=inner, min_norm=MARKOV_MIN_NORM)
    rng = np.random.default_rng(seed)
    oracle_rng = np.random.RandomState(rng.integers(2**31))
    width = env.action_space.shape[0]
    started = [False]

    def policy(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        with _own_global_rng(oracle_rng):
            if started[0] and oracle.done and chain_tasks:
                base.new_target()  # OGBench's collection loop: next task in the same episode
            if not started[0] or (oracle.done and chain_tasks):
                oracle.reset(None, base.ogbench_info())
                started[0] = True
            action = np.asarray(oracle.select_action(None, base.ogbench_info()), np.float64)
        action = action + rng.normal(size=OGBENCH_ACTION_DIM) * noise
        padded = np.zeros(width, np.float32)
        padded[:OGBENCH_ACTION_DIM] = np.clip(action, -1.0, 1.0)
        return padded

    return policy
