#!/usr/bin/env bash
# The cube:learned row of bench/results/anchors.md (issue 11), from scratch with the project's
# own commands: OGBench's plan oracle as play data (400 episodes x 100 steps, ~4 min), the lewm
# recipe's stage 1 end to end on it with the within-clip SIGReg (train.sigreg_within=1) and
# blocks of 5 steps (1800 steps, ~8 min on 2 shared cores; without the within-clip term, or
# with blocks of 2 replanned every block, the row is the same 42 %), the held-out eval set (its
# starts reproduce the random and oracle rows' exactly), then 50 episodes of the anchors'
# protocol (~1 min). The model stays in runs/ (not shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
cube() { .venv/bin/wm-collect env=ogbench_cube policy.name=ogbench_plan policy.noise=0.1 \
  env.max_episode_steps=100 num_workers=1 "$@"; }
cube num_episodes=400 seed=0 output=data/ogbench_cube_train.h5
.venv/bin/python -m bench heldout --task cube  # data/ogbench_cube_eval.h5 (bench/heldout.py)
.venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
  "data=[data/ogbench_cube_train.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
  sigreg_within=1.0 world_model.action_block=5 out_dir=runs/cube_k5
# The anchors' planner: CEM 300 samples x 5 iterations, top 30, over 5 blocks of k = 5 steps,
# all 25 executed before replanning (the protocol's default execute_steps).
.venv/bin/python -m bench anchors --task cube --agent learned \
  --dataset data/ogbench_cube_eval.h5 --checkpoint runs/cube_k5/world_model \
  --train-data data/ogbench_cube_train.h5 \
  --train-time "lewm recipe stage 1 + within-clip SIGReg (sigreg_within=1), blocks of k = 5 steps (the anchors' planner: 5 blocks of 5, all 25 executed, then replan), conv encoder + 3 x 128 predictor end to end, 1800 steps, ~8 min on 2 shared CPU cores" \
  --override planner.horizon=5 --override planner.num_samples=300 --override planner.num_elites=30 \
  --override planner.iterations=5 --override agent.energy_reduce=sum --override planner.select=best \
  --override agent.stay_if_better=false
