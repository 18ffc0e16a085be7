"""`wm-eval`: closed-loop evaluation of the learned agent or a baseline (configs/eval.yaml)."""

from __future__ import annotations

import os

# The simulator, renderer and planner share few cores: OpenMP busy-waiting between torch ops
# made a 1 s plan take 7 s on 2 shared cores (bench/results/planning.md). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import agent.config  # noqa: F401  (registers eval_schema)
import planners  # noqa: F401  (registers the planner schemas)
from agent.config import validate
from agent.evaluate import evaluate


@hydra.main(config_path="pkg://configs", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float:
    validate(cfg)
    out_dir = Path(cfg.out_dir or HydraConfig.get().runtime.output_dir)
    summary = evaluate(cfg, out_dir)
    print(
        f"{cfg.agent.kind} on {cfg.env.id}: success {summary['success_rate']:.0%} over "
        f"{summary['episodes']} episodes, final distance {summary['mean_final_distance']:.3f} m, "
        f"plan p50 {summary['plan_ms_p50']:.0f} ms / p95 {summary['plan_ms_p95']:.0f} ms\n"
        f"results: {out_dir / 'results.json'}"
    )
    return summary["success_rate"]


if __name__ == "__main__":
    main()
