"""`wm-demo`: closed-loop control of wm/PandaReach-v0 with the checkpoint shipped in the repo."""

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

REPO = Path(__file__).resolve().parent.parent


@hydra.main(config_path="pkg://configs", config_name="demo", version_base="1.3")
def main(cfg: DictConfig) -> float:
    validate(cfg)
    checkpoint = Path(cfg.agent.checkpoint)
    if not checkpoint.is_absolute() and not checkpoint.exists():
        cfg.agent.checkpoint = str(REPO / checkpoint)  # run from anywhere
    out_dir = Path(cfg.out_dir or HydraConfig.get().runtime.output_dir).resolve()
    print(f"wm-demo: {cfg.episodes} episodes of {cfg.env.id} with {cfg.agent.checkpoint}")
    summary = evaluate(cfg, out_dir)
    print(
        f"\nsuccess rate {summary['success_rate']:.0%} ({summary['episodes']} episodes, "
        f"{cfg.env.max_steps} steps each); mean final distance "
        f"{summary['mean_final_distance'] * 100:.1f} cm; planning p50 "
        f"{summary['plan_ms_p50']:.0f} ms per action\n"
        f"videos (camera | goal | energy): {out_dir / 'videos'}\n"
        f"energy landscape: {summary.get('energy_plot', '-')}\n"
        f"results: {out_dir / 'results.json'}"
    )
    return summary["success_rate"]


if __name__ == "__main__":
    main()
