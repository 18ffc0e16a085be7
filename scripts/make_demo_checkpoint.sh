#!/usr/bin/env bash
# Rebuilds checkpoints/reach_tiny from scratch with the project's own commands (~12 min on 2 CPU cores):
# 400 mixed expert/noisy/random PandaReach episodes -> wm-train with the default tiny config
# (random-init frozen tiny V-JEPA 2 encoder, 3 x 128 AC predictor) -> copy the final weights.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/wm-collect env=panda_reach policy.name=mixed policy.expert_fraction=0.7 \
  policy.noise=0.1 policy.noise_max=0.6 num_episodes=400 seed=0 output=data/reach_mixed.h5
.venv/bin/wm-train "data=[data/reach_mixed.h5]" out_dir=runs/reach_ship
rm -rf checkpoints/reach_tiny.new
cp -r runs/reach_ship/world_model checkpoints/reach_tiny.new
cp checkpoints/reach_tiny/README.md checkpoints/reach_tiny.new/ 2>/dev/null || true
rm -rf checkpoints/reach_tiny && mv checkpoints/reach_tiny.new checkpoints/reach_tiny
echo "checkpoints/reach_tiny rebuilt; check it with: .venv/bin/wm-eval episodes=20"
