"""The one interface every agent offers: what evaluation and the ROS 2 node call.

`agent.mpc.BaseAgent` and its subclasses (the learned `MPCAgent`, the oracle, the random and
scripted baselines) satisfy `Policy`; `run_episode` (agent/rollout.py) codes against it, and
the ROS 2 policy node against `DeployedPolicy`, which adds what a real robot needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from envs.common.contract import EnvContract


class Policy(Protocol):
    """Goal in, one action per control step out; `stats` says what the last step cost."""

    action_low: np.ndarray
    action_high: np.ndarray
    action_block: int
    """Control steps per planned block (1 for agents that do not plan in blocks)."""
    trace_imagined: bool
    """Also record each plan's imagined energies (videos); agents without a model ignore it."""
    stats: Any
    """`plan_ms`, `energy`, `replanned`, `error`, `imagined` (agent.mpc.AgentStats), as
    attributes or, for ROS stand-ins, dict keys."""

    def set_goal(self, goal: np.ndarray | Sequence[np.ndarray]) -> None:
        """A goal image `(H, W, 3)` uint8, or sub-goal images held in turn."""
        ...

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One control step: image `(H, W, 3)` uint8 and state `(7,)` -> action `(A,)`."""
        ...

    def reset(self) -> None:
        """Forget the episode (warm start, context, stats)."""
        ...

    def observe_privileged(self, info: dict[str, Any]) -> None:
        """The env's `info` after reset and every step; only the scripted expert reads it."""
        ...


class DeployedPolicy(Policy, Protocol):
    """What the ROS 2 node needs on top: the image size to resize to and the env contract
    (control rate, bounds, workspace) the model was trained on."""

    image_size: int
    contract: EnvContract | None
