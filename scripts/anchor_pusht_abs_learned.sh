#!/usr/bin/env bash
# The pusht_abs:learned row of bench/results/anchors.md (issue 25; gym-pusht's absolute
# actions, gym_pusht/PushT-v0), from scratch with the project's own commands: 1000 episodes
# of the scripted Push-T pusher (80 % expert with noise 0.02-0.1 of the 512 px range, 20 %
# random; 200 steps at most; ~195k steps: ~22 min on one worker at the measured 150 steps/s,
# about half with 2 workers on free cores), the lewm recipe's stage 1 as on reacher
# (within-clip SIGReg, blocks of 5 steps, 1800 steps: ~7 min on 2 shared cores for reacher),
# the held-out eval set (55 s here), then 50 episodes of the anchors' protocol. Not run yet:
# the figures come with the row.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # .[dev] includes gym-pusht
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
ID=gym_pusht:gym_pusht/PushT-v0
.venv/bin/wm-collect env.id=$ID policy.name=mixed policy.expert_fraction=0.8 policy.noise=0.02 \
  policy.noise_max=0.1 env.max_episode_steps=200 num_episodes=1000 seed=20000 num_workers=2 \
  output=data/pusht_mixed.h5
.venv/bin/wm-collect env.id=$ID policy.name=expert policy.noise=0.02 policy.noise_max=0.1 \
  num_episodes=30 seed=100000 num_workers=1 output=data/pusht_eval.h5
.venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
  "data=[data/pusht_mixed.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
  sigreg_within=1.0 world_model.action_block=5 out_dir=runs/pusht_k5
# The anchors' planner: CEM 300 samples x 5 iterations, top 30, over 5 blocks of k = 5 steps,
# all 25 executed before replanning (the protocol's default execute_steps).
PLANNER=(--override planner.horizon=5 --override planner.num_samples=300
  --override planner.num_elites=30 --override planner.iterations=5
  --override agent.energy_reduce=sum --override planner.select=best)
PYTHONPATH=$PWD .venv/bin/python -m bench anchors --task pusht_abs --agent learned \
  --dataset data/pusht_eval.h5 --checkpoint runs/pusht_k5/world_model \
  --train-data data/pusht_mixed.h5 \
  --train-time "lewm recipe stage 1 + within-clip SIGReg (sigreg_within=1), blocks of k = 5 steps, 1800 steps" \
  "${PLANNER[@]}"
