#!/usr/bin/env bash
# The reacher:learned row of bench/results/anchors.md (issue 11), from scratch with the
# project's own commands: 1000 episodes of a noisy scripted reacher (half expert, half random,
# ~2.5 min), the lewm recipe's stage 1 with the within-clip SIGReg (train.sigreg_within=1;
# without it the latent is episode-constant on reacher) and blocks of 5 steps, 1800 steps
# (~7 min on 2 shared cores), the held-out eval set (the random and oracle rows' starts), then
# 50 episodes of the anchors' protocol (~2 min). The model stays in runs/ (not shipped).
# TASK=reacher1 runs it on the 3x-thicker-arm rendering (wm/DMCReacherEasy-v1, an ablation).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
TASK=${TASK:-reacher}
case $TASK in
  reacher1) ENV=dmc_reacher_easy_v1 ;;
  reacher) ENV=dmc_reacher_easy ;;
  *) echo "TASK must be reacher1 or reacher, got $TASK" >&2; exit 2 ;;
esac
reacher() { .venv/bin/wm-collect env=$ENV policy.name=mixed policy.expert_fraction=0.5 \
  policy.noise=0.3 policy.noise_max=1.0 num_workers=1 "$@"; }
reacher num_episodes=1000 seed=20000 output=data/${TASK}_mixed.h5
.venv/bin/python -m bench heldout --task "$TASK"  # data/${TASK}_eval.h5 (bench/heldout.py)
.venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
  "data=[data/${TASK}_mixed.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
  sigreg_within=1.0 world_model.action_block=5 out_dir=runs/${TASK}_k5
# The anchors' planner: CEM 300 samples x 5 iterations, top 30, over 5 blocks of k = 5 steps,
# all 25 executed before replanning (the protocol's default execute_steps).
.venv/bin/python -m bench anchors --task "$TASK" --agent learned \
  --dataset data/${TASK}_eval.h5 --checkpoint runs/${TASK}_k5/world_model \
  --train-data data/${TASK}_mixed.h5 \
  --train-time "lewm recipe stage 1 + within-clip SIGReg (sigreg_within=1), blocks of k = 5 steps (the anchors' planner: 5 blocks of 5, all 25 executed, then replan), conv encoder + 3 x 128 predictor end to end, 1800 steps, ~7 min on 2 shared CPU cores" \
  --override planner.horizon=5 --override planner.num_samples=300 --override planner.num_elites=30 \
  --override planner.iterations=5 --override agent.energy_reduce=sum --override planner.select=best \
  --override agent.stay_if_better=false
