"""Evaluation / demo configs: one dataclass per component, mirrored by configs/*.yaml.

`configs/eval.yaml` extends the `eval_schema` node `register_configs()` stores, so every
command-line override (`episodes=5`, `agent.kind=oracle`) is type-checked by Hydra at compose
time; `eval_config` then turns the composed config into these dataclasses once.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from envs.common.distance import DistanceConfig
from planners.config import CEMConfig, PlannerConfig
from world_model.config import RECOMMENDED_KEY

AGENT_KINDS = ("learned", "random", "expert", "oracle", "true_dynamics")
PROTOCOLS = ("task", "dataset", "replay")


@dataclass
class EnvSection:
    """Which environment to control and how long an episode may last."""

    id: str = "wm/PandaReach-v0"
    """Gymnasium id; `wm/*` ids, or any id rendering rgb_array with protocol=replay."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed to `gymnasium.make` (e.g. image_size, control_hz). Must match training data. The
    command line spells the env's settings as wm-collect does (`env.control_hz=10`,
    `env.free_camera.fit=true`); `env_overrides` puts them here."""
    max_steps: int = 20
    """Fixed control-step budget per episode (ANCHORS lesson 4: no replanning until success)."""
    distance: DistanceConfig = field(default_factory=DistanceConfig)
    """How state goals (replay, dataset) are scored: positions, unit, threshold
    (envs/common/distance.py; defaults per env in envs/README.md)."""
    protocol: str = "task"
    """task: the env's own goal image and success | dataset (DINO-WM, LeWM): start = a state
    of a held-out recorded trajectory (`dataset`), goal = its frame `goal_offset` control steps
    later (envs/goals/dataset_goal.py) | replay: goal = the frame a behaviour policy reaches
    `goal_offset` control steps after the same seed's start (envs/goals/replay_goal.py; any env
    whose state envs/common/sim_state.py can save: MuJoCo, dm_control, classic control). dataset
    and replay goals are scored by task-position distance."""
    dataset: str = ""
    """Held-out HDF5 with simulator states (wm-collect), for protocol=dataset."""
    goal_offset: int = 0
    """protocol=dataset / replay: control steps from start to goal; 0 = the planning horizon in
    control steps (planner.horizon x the checkpoint's action block). Budget: set max_steps (2x)."""


@dataclass
class AgentConfig:
    """What picks the actions and how plans become commands (`wm-eval`'s `agent.*` group).

    V-JEPA 2-AC executes the first action and replans (`execute_steps=1`); executing a few
    actions per plan trades a little success for much speed (ANCHORS, lesson 3).
    """

    kind: str = "learned"
    """learned (world model + planner) | random | expert (scripted, privileged) | oracle (the
    same planner on the true simulator dynamics: the ceiling for any learned model) |
    true_dynamics (the learned energy on rendered simulator frames: is the energy or the
    predictor what fails? agent/true_dynamics.py)."""
    checkpoint: str = "checkpoints/reach_lewm"
    """World-model checkpoint directory (model.safetensors + config.json), for `learned`; its
    `extra.recommended_eval` planner settings apply unless given (`with_recommended`)."""
    execute_steps: int = 1
    """Actions executed from each plan before replanning."""
    energy_reduce: str = "last"
    """"last": distance at the horizon only (V-JEPA 2-AC); "sum": summed over the horizon."""
    subgoal_capture_steps: list[int] = field(default_factory=list)
    """Sub-goals (learned agent, wm/Panda* envs): frames a scripted demonstration of the same
    task instance reaches after these many steps, followed by the task's goal image."""
    subgoal_hold_steps: list[int] = field(default_factory=list)
    """Control steps each sub-goal image is held before the next (V-JEPA 2-AC pick-and-place:
    4, 10, 4); one per captured sub-goal."""
    distance_weight: float = 1.0
    """Weight of the latent distance in the energy (0 with a head: head only)."""
    reachability_weight: float = 0.0
    """Weight of the learned reachability head at the plan's end, in budget fractions (steps /
    budget, world_model/heads/reachability.py); > 0 needs a checkpoint that ships the head."""
    stay_if_better: bool = True
    """Hold still when the current observation's energy, kept for the whole horizon, is no
    higher than the best plan's predicted energy (agent/mpc.py `stay_energy`). Why: near the
    goal a model that drifts under zero action scores every plan worse than standing still, so
    the agent reaches goals it then fails to hold. Assumes a zero action holds the robot where
    it is (position-delta control, as the Panda tasks); set false for torque control."""
    bf16: bool = False
    """Imagine rollouts under bf16 autocast (weights stay float32, energies are ranked in
    float32). With native bf16 (AVX-512 BF16) a CEM cost call is 1.5-1.6x faster and ranks
    candidates as float32 does (`python -m bench cpu_dtype`); cube CEM success unchanged.
    Off by default: every stored row and golden test was measured in float32, and bf16
    rounding differs by CPU; the shipped cube planner (Direct) spends ~1 ms a step anyway."""
    allow_contract_change: bool = False
    """Drive an env whose camera (pose, fov) or physics step differs from the checkpoint's
    env contract (envs/common/contract.py), e.g. a robustness study; the differences are recorded in
    results.json (`contract_changes`). Rate, bounds, dims and image size are never waived."""

    def __post_init__(self) -> None:
        if self.distance_weight < 0 or self.reachability_weight < 0:
            raise ValueError(
                f"agent.distance_weight={self.distance_weight}, agent.reachability_weight="
                f"{self.reachability_weight}: energy weights must be >= 0"
            )
        if self.distance_weight == 0 and self.reachability_weight == 0:
            raise ValueError("agent.distance_weight and agent.reachability_weight are both 0")
        if self.kind not in AGENT_KINDS:
            raise ValueError(f"agent.kind={self.kind!r}: expected one of {AGENT_KINDS}")
        if self.execute_steps < 1:
            raise ValueError(f"agent.execute_steps={self.execute_steps}: must be >= 1")
        if self.energy_reduce not in ("last", "sum"):
            raise ValueError(f"agent.energy_reduce={self.energy_reduce!r}: expected last or sum")
        if any(h < 1 for h in self.subgoal_hold_steps):
            raise ValueError(f"agent.subgoal_hold_steps={self.subgoal_hold_steps}: must be >= 1")
        if self.subgoal_capture_steps and len(self.subgoal_hold_steps) != len(
            self.subgoal_capture_steps
        ):
            raise ValueError(
                f"agent.subgoal_hold_steps={list(self.subgoal_hold_steps)} needs one entry per "
                f"agent.subgoal_capture_steps={list(self.subgoal_capture_steps)}"
            )


@dataclass
class EvalConfig:
    """`wm-eval`: N episodes, fixed budgets, results.json + videos + TensorBoard in the run dir."""

    env: EnvSection = field(default_factory=EnvSection)
    agent: AgentConfig = field(default_factory=AgentConfig)
    planner: PlannerConfig = MISSING
    """Planner group (configs/planner/{cem,mppi}.yaml): a `CEMConfig` or `MPPIConfig`."""
    episodes: int = 10
    """Episodes to run; seeds are seed, seed+1, ..."""
    seed: int = 1000
    """First episode seed; keep it away from the training data's seeds."""
    device: str = "cpu"
    """Torch device of the world model and planner ("cuda", "cuda:1", "cpu")."""
    videos: int = 3
    """Episodes to record as mp4 (camera | goal | energy); 0 = none. With videos, a learned
    agent on a wm/Panda* env also draws energy.png for the first episode's start: the V-JEPA
    2-style energy landscape, the planner's candidates and the chosen plan, imagined against
    the simulator (agent/energy.py)."""
    out_dir: str = ""
    """Where results go; empty = Hydra's run directory."""

    def __post_init__(self) -> None:
        if self.planner is not MISSING:  # a dict or DictConfig from a test or script
            from planners import planner_config

            self.planner = planner_config(self.planner)
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}: must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be >= 0 (Gymnasium seeds are unsigned)")
        if self.env.max_steps < 1:
            raise ValueError(f"env.max_steps={self.env.max_steps}: must be >= 1")
        if self.env.protocol not in PROTOCOLS:
            raise ValueError(f"env.protocol={self.env.protocol!r}: expected one of {PROTOCOLS}")
        if self.env.protocol == "dataset" and not self.env.dataset:
            raise ValueError("env.protocol=dataset needs env.dataset=<held-out recorded .h5>")
        if self.env.goal_offset < 0:
            raise ValueError(f"env.goal_offset={self.env.goal_offset}: must be >= 0")
        if self.videos < 0:
            raise ValueError(f"videos={self.videos}: must be >= 0")


def eval_config(cfg: DictConfig) -> EvalConfig:
    """The composed Hydra config as typed, validated objects (once, with `OmegaConf.to_object`):
    `EvalConfig` with its `AgentConfig` and the planner's own config dataclass."""
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, EvalConfig):
        raise TypeError(f"expected an eval config composed on eval_schema, got {type(typed)}")
    return typed


def register_configs() -> None:
    """Store the schema configs/eval.yaml and configs/demo.yaml extend (idempotent)."""
    from planners import register_configs as register_planner_configs

    register_planner_configs()
    node = OmegaConf.structured(EvalConfig)
    # The planner dataclasses are frozen, which OmegaConf turns into a read-only node; the
    # planner group (cem / mppi) must merge into it, as planners.register_configs allows.
    node._get_node("planner")._set_flag("readonly", False)
    ConfigStore.instance().store(name="eval_schema", node=node)


def check_recommended(entry: Any, source: str | Path) -> dict[str, Any]:
    """`entry` as recommended settings, or a ValueError naming `source` and the bad key: each
    must name a field of `AgentConfig` or (planner.*, a CEM budget) `CEMConfig`, with a value
    of the field's type that the config's own checks accept."""
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: extra.{RECOMMENDED_KEY} must be a mapping, got {entry!r}")
    updates: dict[type, dict[str, Any]] = {AgentConfig: {}, CEMConfig: {}}
    for key, value in entry.items():
        if not key.startswith(("agent.", "planner.")) or key == "agent.checkpoint":
            raise ValueError(
                f"{source}: extra.{RECOMMENDED_KEY} key {key!r}: only agent.* and planner.* "
                "settings (not agent.checkpoint) can travel with a checkpoint"
            )
        section, name = key.split(".", 1)
        cls = AgentConfig if section == "agent" else CEMConfig
        hint = typing.get_type_hints(cls).get(name)
        if hint is None or not _fits(value, hint):
            want = hint.__name__ if hint else f"a field of {cls.__name__}"
            raise ValueError(f"{source}: extra.{RECOMMENDED_KEY} {key}={value!r}: expected {want}")
        updates[cls][name] = value
    for cls, fields in updates.items():
        try:
            dataclasses.replace(cls(), **fields)  # the config's own range checks
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: extra.{RECOMMENDED_KEY}: {err}") from err
    return dict(entry)


def _fits(value: Any, hint: Any) -> bool:
    """Is `value` of the plain type `hint` (int, float, bool, str)? Other hints pass."""
    if hint in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, {float: (int, float)}.get(hint, hint)) if hint in _PLAIN else True


_PLAIN = (int, float, bool, str)


def with_recommended(
    agent: AgentConfig, planner: PlannerConfig, recommended: dict[str, Any], given: set[str]
) -> tuple[AgentConfig, PlannerConfig, dict[str, Any]]:
    """The one place a checkpoint's recommended settings (`extra.recommended_eval`) apply, for
    `wm-eval`, `wm-demo` and `load_agent` (scripts, the ROS 2 node) alike.

    Every recommended key applies except those in `given` (dotted keys the caller set
    explicitly) and, when `planner` is not CEM, the CEM-only `planner.*` keys: MPPI takes the
    ones every planner shares (`PlannerConfig`: horizon, samples, iterations, proposal, ...),
    so `planner=mppi` plans over the blocks and horizon the checkpoint was measured with.
    Returns (agent config, planner config, the settings applied); a key naming no field is
    refused with the field's section.
    """
    shared = {f"planner.{f.name}" for f in dataclasses.fields(PlannerConfig)} - {"planner.name"}

    def applies(key: str) -> bool:
        if key in given:
            return False
        return not key.startswith("planner.") or planner.name == "cem" or key in shared

    applied = {key: value for key, value in recommended.items() if applies(key)}
    updates: dict[str, dict[str, Any]] = {"agent": {}, "planner": {}}
    for key, value in applied.items():
        section, name = key.split(".", 1)
        target = agent if section == "agent" else planner
        if name not in {f.name for f in dataclasses.fields(target)}:
            raise ValueError(
                f"recommended setting {key!r} names no field of {type(target).__name__} "
                f"(python -m agent.recommend <checkpoint> to rewrite the entry)"
            )
        updates[section][name] = value
    agent = dataclasses.replace(agent, **updates["agent"])
    planner = dataclasses.replace(planner, **updates["planner"])
    return agent, planner, applied


PLANNER_PRESETS = Path(__file__).resolve().parent.parent / "configs" / "planner"


def override_keys(overrides: list[str]) -> set[str]:
    """Dotted keys of Hydra command-line overrides (`planner.horizon=3` -> planner.horizon).

    Choosing a planner preset (`planner=direct`) gives every key that preset's yaml sets, so
    a checkpoint's recommended budget cannot turn Direct back into a broad CEM; the keys it
    leaves alone (the horizon) still follow the checkpoint."""
    keys = set()
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        keys.add(key)
        preset = PLANNER_PRESETS / f"{value}.yaml"
        if key == "planner" and preset.is_file():
            values = OmegaConf.to_container(OmegaConf.load(preset))
            keys |= {f"planner.{name}" for name in values if name != "defaults"}
    return keys


def env_overrides(overrides: list[str]) -> list[str]:
    """wm-collect's spelling of an env's settings in wm-eval: `env.<name>...=<value>`, where
    <name> is a setting of one of wm-collect's env entries (`env.free_camera.fit=true`,
    `env.simple_geoms=true`, `env.control_hz=10`) and no field of `EnvSection`, becomes
    `++env.kwargs.<name>...=<value>`: the `gym.make` keywords wm-eval builds the env with.

    Other overrides pass through. An `env.<name>` that is neither is refused by name, with
    where a plain `gym.make` keyword goes (Hydra's own hint, `+env.<name>`, adds a key nothing
    reads)."""
    settings = env_setting_names()
    section = {f.name for f in dataclasses.fields(EnvSection)}
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        path = key.lstrip("+")
        name = path.split(".")[1] if path.startswith("env.") and "." in path else None
        if not sep or name is None or name in section or key.startswith("~"):
            out.append(override)
        elif name in settings:
            rest = path.removeprefix("env.")
            out.append(f"++env.kwargs.{rest}={value}")
        else:
            raise ValueError(
                f"{override}: {name!r} is no env setting (wm-collect's env entries) and no "
                f"field of wm-eval's env section {sorted(section)}; another gym.make keyword "
                f"goes in env.kwargs: '+env.kwargs.{path.removeprefix('env.')}={value}'"
            )
    return out


def env_setting_names() -> set[str]:
    """Settings an env takes as `gym.make` keywords, as wm-collect's env group names them."""
    from envs.collect.config import DMCEnvEntry, OGBenchCubeEntry, PandaEnvEntry
    from envs.foreign.make import GymEnvEntry

    entries = (PandaEnvEntry, DMCEnvEntry, OGBenchCubeEntry, GymEnvEntry)
    names = {f.name for entry in entries for f in dataclasses.fields(entry)}
    # what the entry, not the env, uses: wm-eval says env.id, env.max_steps, env.kwargs
    return names - {"id", "task", "max_episode_steps", "kwargs"}


def apply_recommended(
    cfg: EvalConfig, overrides: list[str], recommended: dict[str, Any]
) -> tuple[EvalConfig, dict[str, Any]]:
    """`cfg` with its checkpoint's `recommended` settings (`with_recommended`), except those
    the user gave in `overrides` (Hydra's command-line overrides): a lewm checkpoint then plans
    as it was trained to without a user copying its budget, and any setting stays
    overridable. Returns the new config and what was applied."""
    agent, planner, applied = with_recommended(
        cfg.agent, cfg.planner, recommended, override_keys(overrides)
    )
    return dataclasses.replace(cfg, agent=agent, planner=planner), applied
