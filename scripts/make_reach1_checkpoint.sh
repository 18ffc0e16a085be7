#!/usr/bin/env bash
# Rebuilds checkpoints/reach1_tiny (wm/PandaReach-v1, targets anywhere in the workspace) from
# scratch with the project's own commands: ~21 min on 2 CPU cores (checkpoints/reach1_tiny/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
collect() {
  .venv/bin/wm-collect env=panda_reach env.id=wm/PandaReach-v1 policy.name=mixed \
    policy.expert_fraction=0.7 policy.noise=0.1 policy.noise_max=0.6 num_episodes=600 "$@"
}
collect seed=0 output=data/reach1_mixed.h5
collect seed=1000 output=data/reach1_more.h5
.venv/bin/wm-train "data=[data/reach1_mixed.h5,data/reach1_more.h5]" steps=6000 \
  optim.decay_steps=2000 num_threads=1 out_dir=runs/reach1_long
rm -rf checkpoints/reach1_tiny.new
cp -r runs/reach1_long/world_model checkpoints/reach1_tiny.new
cp checkpoints/reach1_tiny/README.md checkpoints/reach1_tiny.new/ 2>/dev/null || true
rm -rf checkpoints/reach1_tiny && mv checkpoints/reach1_tiny.new checkpoints/reach1_tiny
echo "checkpoints/reach1_tiny rebuilt; measure it with:"
echo "  .venv/bin/python -m bench success --cell reach1:learned:checkpoints/reach1_tiny"
