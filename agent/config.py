"""Evaluation / demo configs: one dataclass per component, mirrored by configs/*.yaml.

`configs/eval.yaml` extends the `eval_schema` node stored here, so every command-line override
(`episodes=5`, `agent.kind=oracle`) is type-checked by Hydra at compose time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

AGENT_KINDS = ("learned", "random", "expert", "oracle")


@dataclass
class EnvSection:
    """Which environment to control and how long an episode may last."""

    id: str = "wm/PandaReach-v0"
    """Gymnasium id; `wm/*` ids, or any id rendering rgb_array with `replay_goal_steps > 0`."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed to `gymnasium.make` (e.g. image_size, control_hz). Must match training data."""
    max_steps: int = 20
    """Fixed control-step budget per episode (ANCHORS lesson 4: no replanning until success)."""
    replay_goal_steps: int = 0
    """> 0: goal = the frame after this many behaviour-policy steps from the same seed
    (agent/replay.py), scored by simulator-state distance. Works for any seeded pixel env."""


@dataclass
class AgentSection:
    """What picks the actions."""

    kind: str = "learned"
    """learned (world model + planner) | random | expert (scripted, privileged) | oracle (the
    same planner on the true simulator dynamics: the ceiling for any learned model)."""
    checkpoint: str = "checkpoints/reach_tiny"
    """World-model checkpoint directory (model.safetensors + config.json), for `learned`."""
    execute_steps: int = 1
    """Actions executed per plan before replanning."""
    context_frames: int = 1
    """Observed frames given to the predictor as context."""
    energy_metric: str = "l1"
    """Latent distance for the energy: l1 (V-JEPA 2-AC) | l2."""
    energy_reduce: str = "last"
    """last: distance at the horizon | sum: summed over the horizon."""
    expert_noise: float = 0.0
    """Gaussian action noise of the expert baseline, fraction of the bounds."""
    subgoal_capture_steps: list[int] = field(default_factory=list)
    """Sub-goals (learned agent, wm/Panda* envs): frames a scripted demonstration of the same
    task instance reaches after these many steps, followed by the task's goal image."""
    subgoal_hold_steps: list[int] = field(default_factory=list)
    """Control steps each sub-goal is held before the next (one per captured sub-goal)."""


@dataclass
class EvalConfig:
    """`wm-eval`: N episodes, fixed budgets, results.json + videos + TensorBoard in the run dir."""

    env: EnvSection = field(default_factory=EnvSection)
    agent: AgentSection = field(default_factory=AgentSection)
    planner: Any = MISSING
    """Planner group (configs/planner/{cem,mppi}.yaml)."""
    episodes: int = 10
    """Episodes to run; seeds are seed, seed+1, ..."""
    seed: int = 1000
    """First episode seed; keep it away from the training data's seeds."""
    device: str = "cpu"
    """Torch device of the world model and planner ("cuda", "cuda:1", "cpu")."""
    threads: int = 0
    """torch intra-op threads; 0 = torch's default."""
    videos: int = 3
    """Episodes to record as mp4 (camera | goal | energy); 0 = none."""
    stop_on_success: bool = False
    """End an episode at the first success (faster, optimistic); default runs the budget."""
    energy_plot: bool = True
    """Save the V-JEPA 2-style energy landscape PNG of the first episode (learned agent)."""
    out_dir: str = ""
    """Where results go; empty = Hydra's run directory."""

    def __post_init__(self) -> None:
        validate(self)


def validate(cfg: Any) -> None:
    """Named errors for bad values (also used on the composed DictConfig)."""
    if cfg.agent.kind not in AGENT_KINDS:
        raise ValueError(f"agent.kind={cfg.agent.kind!r}: expected one of {AGENT_KINDS}")
    if cfg.episodes < 1:
        raise ValueError(f"episodes={cfg.episodes}: must be >= 1")
    if cfg.env.max_steps < 1:
        raise ValueError(f"env.max_steps={cfg.env.max_steps}: must be >= 1")
    if cfg.videos < 0:
        raise ValueError(f"videos={cfg.videos}: must be >= 0")
    if len(cfg.agent.subgoal_hold_steps) != len(cfg.agent.subgoal_capture_steps):
        raise ValueError(
            f"agent.subgoal_hold_steps={list(cfg.agent.subgoal_hold_steps)} needs one entry per "
            f"agent.subgoal_capture_steps={list(cfg.agent.subgoal_capture_steps)}"
        )
    if cfg.env.replay_goal_steps < 0:
        raise ValueError(f"env.replay_goal_steps={cfg.env.replay_goal_steps}: must be >= 0")


_node = OmegaConf.structured(EvalConfig)
ConfigStore.instance().store(name="eval_schema", node=_node)
