"""The settings a `wm-eval` / `wm-demo` run uses, and the layer each one came from.

Three layers set them, the later winning: the config files (configs/eval.yaml or demo.yaml,
the task and planner presets, over the dataclass defaults of agent/config.py and
planners/config.py), the checkpoint's `extra.recommended_eval` (agent/config.py
`with_recommended`), and the command line. One rule then fits the plan to the task: a
horizon the command line did not give is cut so that it plans no further than the episode's
step budget (`fit_horizon`). `resolve` applies all of it once; every run prints the result's
plan at start-up (`startup_lines`), and `wm-eval --cfg job` prints every setting with its
layer (`describe`) instead of the composed config, which a checkpoint may still change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from agent.checkpoint import CheckpointInfo
from agent.config import EvalConfig, override_keys, with_recommended

CONFIG_FILES = "config files"
COMMAND_LINE = "command line"
PLANNING_KINDS = ("learned", "oracle", "true_dynamics")
"""Agent kinds that plan; the others (random, expert) take from the planner settings only the
goal offset of protocol=dataset / replay."""


@dataclass(frozen=True)
class Settings:
    """A run's effective config and where its values came from."""

    cfg: EvalConfig
    """What runs: the config files, then the checkpoint's recommended settings, then the
    command line, the horizon fitted to the budget."""
    checkpoint: CheckpointInfo
    """The run's checkpoint as read once (agent/checkpoint.py `run_checkpoint`)."""
    sources: dict[str, str]
    """Dotted key -> the layer that set it, for each key not taken from the config files."""
    notes: dict[str, str]
    """Dotted key -> a line on a rule that changed its value or would have (the horizon cut
    to the budget)."""


def resolve(cfg: EvalConfig, overrides: list[str], checkpoint: CheckpointInfo) -> Settings:
    """`cfg` (the composed config files plus `overrides`, Hydra's command-line overrides) with
    the checkpoint's recommended settings the command line leaves alone, the horizon fitted to
    the budget."""
    given = override_keys(overrides)
    agent, planner, applied = with_recommended(
        cfg.agent, cfg.planner, checkpoint.recommended, given
    )
    cfg = dataclasses.replace(cfg, agent=agent, planner=planner)
    recommended = f"{checkpoint.path} recommended_eval"
    sources = {key: recommended for key in applied}
    chosen = {"planner.name" if key == "planner" else key for key in given}  # planner=mppi
    sources |= {key: COMMAND_LINE for key in sorted(chosen) if _is_setting(cfg, key)}
    cfg, note = fit_horizon(cfg, checkpoint.action_block, sources)
    return Settings(cfg, checkpoint, sources, {"planner.horizon": note} if note else {})


def fit_horizon(
    cfg: EvalConfig, action_block: int, sources: dict[str, str]
) -> tuple[EvalConfig, str | None]:
    """Cut `planner.horizon` (in blocks of `action_block` control steps) so it plans no
    further than `env.max_steps`, unless the command line gave it (`sources`). Why: a
    checkpoint once recommended 5 blocks of 5 steps for a 10-step budget, scoring every plan
    at a step the episode never reaches. Returns the config and a line saying what was cut or
    kept past the budget (None when the horizon fits)."""
    horizon, budget = cfg.planner.horizon, cfg.env.max_steps
    if horizon * action_block <= budget or horizon == 1:
        return cfg, None
    source = sources.get("planner.horizon", CONFIG_FILES)
    if source == COMMAND_LINE:  # the user's choice, e.g. a study of longer plans
        return cfg, (
            f"planner.horizon={horizon} (command line) plans {horizon * action_block} control "
            f"steps, past env.max_steps={budget}: kept as given"
        )
    fitted = max(1, budget // action_block)
    note = (
        f"planner.horizon={horizon} ({source}) plans {horizon * action_block} control steps "
        f"(blocks of {action_block}), past env.max_steps={budget}: cut to {fitted} "
        f"(planner.horizon={horizon} on the command line keeps it)"
    )
    return dataclasses.replace(cfg, planner=dataclasses.replace(cfg.planner, horizon=fitted)), note


def _is_setting(cfg: EvalConfig, key: str) -> bool:
    """Does the dotted `key` name a value of `cfg` (not a section, nor a group choice such as
    `task`)?"""
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, dict):
            if part not in node:
                return False
            node = node[part]
        elif dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
            node = getattr(node, part)
        else:
            return False
    return not dataclasses.is_dataclass(node)


def startup_lines(settings: Settings, command: str) -> list[str]:
    """What a run prints before its first episode: the plan that runs, the values the
    checkpoint or the command line set, and any rule that changed one."""
    cfg, k = settings.cfg, settings.checkpoint.action_block
    p = cfg.planner
    lines = []
    if cfg.agent.kind in PLANNING_KINDS:
        blocks = f"{p.horizon} blocks of {k} control steps" if k > 1 else f"{p.horizon} steps"
        lines.append(
            f"{command}: {cfg.agent.kind} on {cfg.env.id} plans with {p.name} over {blocks} "
            f"({p.horizon * k} of the {cfg.env.max_steps}-step budget), {p.num_samples} samples "
            f"x {p.iterations} iterations, energy_reduce={cfg.agent.energy_reduce}, "
            f"execute_steps={cfg.agent.execute_steps}"
        )
    by_layer: dict[str, list[str]] = {}
    for key, source in settings.sources.items():
        by_layer.setdefault(source, []).append(f"{key}={_value(cfg, key)}")
    for source, values in by_layer.items():
        lines.append(f"{command}: from {source}: {' '.join(values)}")
    lines += [f"{command}: {note}" for note in settings.notes.values()]
    lines.append(f"{command}: every setting and its source: {command} --cfg job <overrides>")
    return lines


def describe(settings: Settings, command: str) -> str:
    """Every setting as YAML, each value a layer other than the config files set marked with
    it: what `wm-eval --cfg job` prints."""
    lines = [
        f"# {command}: the settings this run uses. Later layers win: the config files (unmarked),",
        f"# {settings.checkpoint.path}'s recommended_eval, the command line.",
        *[f"# {note}" for note in settings.notes.values()],
    ]
    marks = dict(settings.sources)
    for key in settings.notes:
        marks[key] = f"{marks.get(key, CONFIG_FILES)}; see the note above"
    lines += _yaml_lines(dataclasses.asdict(settings.cfg), marks, "")
    return "\n".join(lines)


def _yaml_lines(node: dict[str, Any], sources: dict[str, str], prefix: str) -> list[str]:
    lines = []
    indent = "  " * prefix.count(".")
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            lines += [f"{indent}{name}:", *_yaml_lines(value, sources, f"{key}.")]
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
        mark = next((f"  # {sources[k]}" for k in _prefixes(key) if k in sources), "")
        lines.append(f"{indent}{name}: {text}{mark}")
    return lines


def _prefixes(key: str) -> list[str]:
    """`a.b.c` -> [a.b.c, a.b, a]: a value set as part of a mapping (`env.kwargs={...}`)."""
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _value(cfg: EvalConfig, key: str) -> Any:
    node: Any = dataclasses.asdict(cfg)
    for part in key.split("."):
        node = node[part]
    return node
