"""`wm-eval` and `wm-demo`: closed-loop evaluation of the learned agent or a baseline.

`wm-eval` (configs/eval.yaml) evaluates any agent kind; `wm-demo` (configs/demo.yaml, the
README's main command) is the same run on PandaReach with the shipped checkpoint, from any
working directory, with a friendlier summary.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from agent.checkpoint import run_checkpoint
from agent.config import (
    EvalConfig,
    apply_recommended,
    eval_config,
    override_keys,
    register_configs,
)
from agent.evaluate import evaluate
from configs.cli import one_line_errors, one_line_hydra_errors

REPO = Path(__file__).resolve().parent.parent
register_configs()


def _run(cfg: DictConfig) -> tuple[EvalConfig, Path, dict]:
    typed = eval_config(cfg)
    overrides = list(HydraConfig.get().overrides.task)
    named = "agent.checkpoint" in override_keys(overrides)
    checkpoint = run_checkpoint(typed, named)  # config.json, read once
    typed, applied = apply_recommended(typed, overrides, checkpoint.recommended)
    if applied:
        settings = " ".join(f"{k}={v}" for k, v in applied.items())
        print(
            f"{checkpoint.path}'s recommended settings (override any on the command line): "
            f"{settings}"
        )
    elif checkpoint.world_model is None and typed.agent.kind == "oracle":
        print(
            f"oracle on {typed.env.id}: blocks of 1 control step and eval.yaml's planner, no "
            "checkpoint's settings (agent.checkpoint=<dir> plans like that model)"
        )
    out_dir = Path(typed.out_dir or HydraConfig.get().runtime.output_dir).resolve()
    return typed, out_dir, evaluate(typed, out_dir, checkpoint=checkpoint)


@one_line_hydra_errors("wm-eval")
@hydra.main(config_path="pkg://configs", config_name="eval", version_base="1.3")
@one_line_errors("wm-eval")
def main(cfg: DictConfig) -> float:
    typed, out_dir, summary = _run(cfg)
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


@one_line_hydra_errors("wm-demo")
@hydra.main(config_path="pkg://configs", config_name="demo", version_base="1.3")
@one_line_errors("wm-demo")
def demo(cfg: DictConfig) -> float:
    checkpoint = Path(cfg.agent.checkpoint)
    if not checkpoint.is_absolute() and not checkpoint.exists():
        cfg.agent.checkpoint = str(REPO / checkpoint)  # run from anywhere
    print(f"wm-demo: {cfg.episodes} episodes of {cfg.env.id} with {cfg.agent.checkpoint}")
    typed, out_dir, summary = _run(cfg)
    lo, hi = summary["success_rate_ci95"]
    print(
        f"\nsuccess rate {summary['success_rate']:.0%} [95% CI {lo:.0%}, {hi:.0%}] "
        f"({summary['episodes']} episodes, "
        f"{typed.env.max_steps} steps each); mean final distance "
        f"{summary['mean_final_distance'] * 100:.1f} cm; planning p50 "
        f"{summary['plan_ms_p50']:.0f} ms per action\n"
        f"videos (camera | goal | energy): {out_dir / 'videos'}\n"
        f"energy landscape: {summary.get('energy_plot', '-')}\n"
        f"results: {out_dir / 'results.json'}"
    )
    return summary["success_rate"]


if __name__ == "__main__":
    main()
