#!/usr/bin/env bash
# The reacher1:learned row of bench/results/anchors.md (issue 11), from scratch with the
# project's own commands: 1000 episodes of a noisy scripted reacher (half expert, half random,
# ~2.5 min), the lewm recipe's stage 1 with the within-clip SIGReg (train.sigreg_within=1;
# without it the latent is episode-constant on reacher), 1800 steps (~7 min on 2 shared cores),
# the held-out eval set (its states are data/reacher_eval.h5's), then 50 episodes of the
# anchors' protocol (~14 min in one process; chunks may run in parallel with --first).
# TASK=reacher runs the same recipe on the suite's thin-arm rendering (wm/DMCReacherEasy-v0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
TASK=${TASK:-reacher1}
case $TASK in
  reacher1) ENV=dmc_reacher_easy_v1 ;;
  reacher) ENV=dmc_reacher_easy ;;
  *) echo "TASK must be reacher1 or reacher, got $TASK" >&2; exit 2 ;;
esac
reacher() { .venv/bin/wm-collect env=$ENV policy.name=mixed policy.expert_fraction=0.5 \
  policy.noise=0.3 policy.noise_max=1.0 num_workers=1 "$@"; }
reacher num_episodes=1000 seed=20000 output=data/${TASK}_mixed.h5
reacher num_episodes=30 seed=100000 output=data/${TASK}_eval.h5
.venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
  "data=[data/${TASK}_mixed.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
  sigreg_within=1.0 out_dir=runs/${TASK}_within
# CEM at the anchors' budget (300 samples, top 30, 5 iterations) over 5 blocks of k = 2 steps,
# replanning every block, as for the cube row.
PYTHONPATH=$PWD .venv/bin/python -m bench.anchors --task "$TASK" --agent learned \
  --dataset data/${TASK}_eval.h5 --checkpoint runs/${TASK}_within/world_model \
  --train-data data/${TASK}_mixed.h5 \
  --train-time "lewm recipe stage 1 + within-clip SIGReg (sigreg_within=1), conv encoder + 3 x 128 predictor end to end, 1800 steps, ~7 min on 2 shared CPU cores" \
  --override planner.horizon=5 --override planner.num_samples=300 --override planner.num_elites=30 \
  --override planner.iterations=5 --override agent.execute_steps=2 \
  --override agent.energy_reduce=sum --override planner.select=best
