#!/usr/bin/env bash
# The joint variant of scripts/make_cube_checkpoint.sh (issue 35 item 1): the same data and the
# same lewm recipe (stage 1 + within-clip SIGReg, blocks of k = 5, 1800 steps), with INTACT's
# action head trained *with* encoder and predictor (train.actor_weight=0.1 on the physical
# intent, actor_goal_weight=0.05 on the goal intent, goals 1..5 blocks = up to 25 control steps
# ahead inside each 8-frame clip), then its Direct row on the held-out set, stored as
# `cube:learned:direct_joint` beside the frozen-latent head's `direct_shipped`.
# Writes runs/cube_k5_joint only; checkpoints/cube_lewm is left alone. Times on 2 shared CPU
# cores: collection 4-10 min (skipped when the data exists), training ~8-18 min, the
# 50-episode Direct row ~30 s on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
RUN=runs/cube_k5_joint
OUT=$RUN/world_model
.venv/bin/wm-collect env=ogbench_cube policy.name=ogbench_plan policy.noise=0.1 \
  env.max_episode_steps=100 num_workers=1 num_episodes=400 seed=0 \
  output=data/ogbench_cube_train.h5  # a complete file is kept as it is
.venv/bin/python -m bench heldout --task cube  # data/ogbench_cube_eval.h5, seeds never trained on
# A killed run resumes from $RUN/checkpoints (head included) when the same command runs again.
[ -f "$OUT/model.safetensors" ] ||
  .venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
    "data=[data/ogbench_cube_train.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
    sigreg_within=1.0 world_model.action_block=5 out_dir="$RUN" \
    actor_weight=0.1 actor_goal_weight=0.05 actor_goal_window=25
# Direct: the head's mean block, replanned every block, as the shipped checkpoint recommends.
.venv/bin/python -m agent.recommend "$OUT" planner.proposal=centre planner.num_samples=1 \
  planner.num_elites=1 planner.iterations=1 planner.horizon=1 agent.execute_steps=5 \
  agent.energy_reduce=sum planner.select=best agent.stay_if_better=false

T="scripts/make_cube_joint.sh: lewm stage 1 + within-clip SIGReg, k = 5, 1800 steps, action head trained jointly (actor_weight 0.1, actor_goal_weight 0.05, goals up to 25 steps ahead in the clip)"
.venv/bin/python -m bench anchors --task cube --agent learned \
  --dataset data/ogbench_cube_eval.h5 --checkpoint "$OUT" \
  --train-data data/ogbench_cube_train.h5 --label direct_joint --train-time "$T; Direct" \
  --override agent.energy_reduce=sum --override planner.select=best \
  --override agent.stay_if_better=false \
  --override planner.proposal=centre --override planner.num_samples=1 \
  --override planner.num_elites=1 --override planner.iterations=1 --override planner.horizon=1 \
  --override agent.execute_steps=5
