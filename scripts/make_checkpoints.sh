#!/usr/bin/env bash
# Rebuilds checkpoints/{reach,push,pickplace}_lewm from scratch with the project's own commands:
# ONE end-to-end (LeWM-style) world model trained on all three Panda tasks at once (same robot,
# camera and 5 Hz control; 1100 mixed expert/noisy/random episodes), then one copy per task
# with that task's env contract stamped into config.json (the agent drives an env with it).
# Training: 1800 steps, ~18 CPU-minutes single-threaded (68 min wall on 2 cores shared with
# ~18 other runnable processes). Then the probe benchmark on held-out probe episodes
# (collection seed 1000, never trained on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
collect() { .venv/bin/wm-collect policy.name=mixed policy.expert_fraction=0.7 num_workers=2 "$@"; }
collect env=panda_push policy.noise=0.1 policy.noise_max=0.5 num_episodes=400 seed=0 output=data/push_mixed.h5
collect env=panda_pick_place policy.noise=0.05 policy.noise_max=0.3 num_episodes=400 seed=0 output=data/pick_mixed.h5
collect env=panda_reach policy.noise=0.1 policy.noise_max=0.6 num_episodes=300 seed=0 output=data/reach_mixed.h5
collect env=panda_push policy.noise=0.1 policy.noise_max=0.5 num_episodes=80 seed=1000 output=data/probe_push.h5
collect env=panda_pick_place policy.noise=0.05 policy.noise_max=0.3 num_episodes=80 seed=1000 output=data/probe_pick.h5

.venv/bin/wm-train --config-name train_lewm \
  "data=[data/push_mixed.h5,data/pick_mixed.h5,data/reach_mixed.h5]" \
  steps=1800 optim.decay_steps=600 sigreg_proj=128 out_dir=runs/lewm_all

for pair in reach:reach_mixed push:push_mixed pickplace:pick_mixed; do
  task=${pair%%:*} data=${pair##*:}
  .venv/bin/python scripts/export_task_checkpoint.py runs/lewm_all/world_model \
    data/$data.h5 checkpoints/${task}_lewm
  cp scripts/lewm_checkpoint_README.md checkpoints/${task}_lewm/README.md
done

.venv/bin/python -m bench.probe --data data/probe_push.h5 data/probe_pick.h5 \
  --model lewm=checkpoints/push_lewm random-init=random-init push_tiny=checkpoints/push_tiny
