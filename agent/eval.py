"""`wm-eval` and `wm-demo`: closed-loop evaluation of the learned agent or a baseline.

`wm-eval` (configs/eval.yaml) evaluates any agent kind; `wm-demo` (configs/demo.yaml, the
README's main command) is the same run on PandaReach with the shipped checkpoint, from any
working directory, with a friendlier summary.

A checkpoint may change the composed config (its recommended planner settings, and the
horizon fitted to the budget: agent/settings.py), so Hydra's `--cfg job` would print settings
that do not run. Here `--cfg job` prints the settings that run, each marked with the layer
that set it, and exits; every run prints its plan and those layers at start-up.

Env settings are spelled as in wm-collect (`env.free_camera.fit=true`, `env.control_hz=10`);
they become the `gym.make` keywords in `env.kwargs` (agent/config.py `env_overrides`).
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from agent.checkpoint import run_checkpoint
from agent.config import EvalConfig, env_overrides, eval_config, override_keys, register_configs
from agent.evaluate import evaluate
from agent.settings import Settings, describe, resolve, startup_lines
from configs.cli import one_line_errors, one_line_hydra_errors
from configs.schema import check_known_keys

REPO = Path(__file__).resolve().parent.parent
register_configs()


def _settings(cfg: DictConfig, overrides: list[str]) -> Settings:
    """The composed config with its checkpoint's layer and the budget's rule applied."""
    typed = eval_config(cfg)
    named = "agent.checkpoint" in override_keys(overrides)
    return resolve(typed, overrides, run_checkpoint(typed, named))  # config.json, read once


def _run(cfg: DictConfig, command: str) -> tuple[EvalConfig, Path, dict]:
    settings = _settings(cfg, list(HydraConfig.get().overrides.task))
    typed = settings.cfg
    for line in startup_lines(settings, command):
        print(line)
    if settings.checkpoint.world_model is None and typed.agent.kind == "oracle":
        print(
            f"oracle on {typed.env.id}: blocks of 1 control step and eval.yaml's planner, no "
            "checkpoint's settings (agent.checkpoint=<dir> plans like that model)"
        )
    out_dir = Path(typed.out_dir or HydraConfig.get().runtime.output_dir).resolve()
    return typed, out_dir, evaluate(typed, out_dir, settings.checkpoint)


def _demo_checkpoint(cfg: DictConfig) -> None:
    """wm-demo runs from any working directory: a relative checkpoint is the repository's."""
    checkpoint = Path(cfg.agent.checkpoint)
    if not checkpoint.is_absolute() and not checkpoint.exists():
        cfg.agent.checkpoint = str(REPO / checkpoint)


def cfg_job_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a `--cfg job [--resolve] <overrides>` command line, or None for any
    other (Hydra then handles it, `--cfg hydra` and `--cfg all` included)."""
    args, asked = [], False
    i = 0
    while i < len(argv):
        if argv[i] in ("--cfg", "-c") and argv[i + 1 : i + 2] == ["job"]:
            asked, i = True, i + 2
            continue
        if argv[i] == "--cfg=job":
            asked = True
        elif argv[i] != "--resolve":  # the settings are printed resolved anyway
            args.append(argv[i])
        i += 1
    if not asked or any(a.startswith("-") for a in args):
        return None
    return args


def show_settings(config_name: str, command: str, argv: list[str]) -> bool:
    """`<command> --cfg job <overrides>`: print the settings the run would use (agent/settings.py
    `describe`) and return True, without running; False for any other command line."""
    overrides = cfg_job_overrides(argv)
    if overrides is None:
        return False
    from hydra import compose, initialize_config_module

    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(config_name, overrides=overrides)
    check_known_keys(cfg)
    if config_name == "demo":
        _demo_checkpoint(cfg)
    print(describe(_settings(cfg, overrides), command))
    return True


def _entry(config_name: str, command: str, app: Callable[[], float]) -> float | None:
    """A command line as wm-collect spells env settings (`env_overrides`): `--cfg job` prints
    the settings that would run, anything else runs `app` (Hydra reads `sys.argv`)."""
    argv = env_overrides(sys.argv[1:])
    if show_settings(config_name, command, argv):
        return None
    sys.argv[1:] = argv
    return app()


@hydra.main(config_path="pkg://configs", config_name="eval", version_base="1.3")
@one_line_errors("wm-eval")
def _eval_app(cfg: DictConfig) -> float:
    typed, out_dir, summary = _run(cfg, "wm-eval")
    dist = summary["distance"]  # the measure, its unit and the success threshold
    lo, hi = summary["success_rate_ci95"]
    print(
        f"{typed.agent.kind} on {typed.env.id}: success {summary['success_rate']:.0%} "
        f"[95% CI {lo:.0%}, {hi:.0%}] over {summary['episodes']} episodes, final distance "
        f"{summary['mean_final_distance']:.3f} "
        f"{dist['unit']} (success below {dist['threshold']}; {dist['distance']}), "
        f"plan p50 {summary['plan_ms_p50']:.0f} ms / p95 {summary['plan_ms_p95']:.0f} ms\n"
        f"results: {out_dir / 'results.json'}"
    )
    return summary["success_rate"]


@hydra.main(config_path="pkg://configs", config_name="demo", version_base="1.3")
@one_line_errors("wm-demo")
def _demo_app(cfg: DictConfig) -> float:
    _demo_checkpoint(cfg)
    print(f"wm-demo: {cfg.episodes} episodes of {cfg.env.id} with {cfg.agent.checkpoint}")
    typed, out_dir, summary = _run(cfg, "wm-demo")
    lo, hi = summary["success_rate_ci95"]
    print(
        f"\nsuccess rate {summary['success_rate']:.0%} [95% CI {lo:.0%}, {hi:.0%}] "
        f"({summary['episodes']} episodes, "
        f"{typed.env.max_steps} steps each); mean final distance "
        f"{summary['mean_final_distance'] * 100:.1f} cm; planning p50 "
        f"{summary['plan_ms_p50']:.0f} ms per action\n"
        f"videos (camera | goal | energy): {out_dir / 'videos'}\n"
        f"energy landscape, candidates and the first plan: {summary.get('energy_plot', '-')}\n"
        f"results: {out_dir / 'results.json'}"
    )
    return summary["success_rate"]


@one_line_hydra_errors("wm-eval")
def main() -> float | None:
    """`wm-eval`: `--cfg job` prints the settings that would run; anything else runs."""
    return _entry("eval", "wm-eval", _eval_app)


@one_line_hydra_errors("wm-demo")
def demo() -> float | None:
    """`wm-demo`: `--cfg job` prints the settings that would run; anything else runs."""
    return _entry("demo", "wm-demo", _demo_app)


if __name__ == "__main__":
    main()
