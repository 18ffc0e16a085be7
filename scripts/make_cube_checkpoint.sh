#!/usr/bin/env bash
# Rebuilds checkpoints/cube_lewm (OGBench visual cube, wm/OGBenchCube-v0) from scratch and
# measures its anchors' rows (issues 35, 29): OGBench's plan oracle with noise as play data
# (400 episodes x 100 steps), the lewm recipe's stage 1 with the within-clip SIGReg, blocks of
# 5 steps, 1800 steps, with INTACT's action head trained *jointly* (train.actor_weight 0.1 on
# the observed latent change, actor_goal_weight 0.05 on goals up to 25 control steps ahead in
# each clip), shipped with `planner=direct` as its recommended planner. (A head trained on the
# frozen model's latents instead measured lower: docs/experiments.md.)
# Times on 2 CPU cores shared with other jobs: collection 4-10 min, training 8-23 min, each
# 50-episode Direct row ~30 s (the CEM row ~1.5-4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
OUT=${OUT:-checkpoints/cube_lewm}
cube() { .venv/bin/wm-collect env=ogbench_cube policy.name=ogbench_plan policy.noise=0.1 \
  env.max_episode_steps=100 num_workers=1 "$@"; }
cube num_episodes=400 seed=0 output=data/ogbench_cube_train.h5
.venv/bin/python -m bench heldout --task cube  # data/ogbench_cube_eval.h5, seeds never trained on
[ -f runs/cube_k5_joint/world_model/model.safetensors ] ||
  .venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
    "data=[data/ogbench_cube_train.h5]" steps=1800 optim.decay_steps=600 sigreg_proj=128 \
    sigreg_within=1.0 world_model.action_block=5 out_dir=runs/cube_k5_joint \
    actor_weight=0.1 actor_goal_weight=0.05 actor_goal_window=25
rm -rf "$OUT" && mkdir -p "$(dirname "$OUT")" && cp -r runs/cube_k5_joint/world_model "$OUT"
cp scripts/cube_checkpoint_README.md "$OUT/README.md"
# Direct: the head's mean block, replanned every block (docs/results.md, "Actor modes").
.venv/bin/python -m agent.recommend "$OUT" planner.proposal=centre planner.num_samples=1 \
  planner.num_elites=1 planner.iterations=1 planner.horizon=1 agent.execute_steps=5 \
  agent.energy_reduce=sum planner.select=best agent.stay_if_better=false

# The anchors' rows on the held-out set, side by side on this one checkpoint.
A=(--task cube --agent learned --dataset data/ogbench_cube_eval.h5 --checkpoint "$OUT"
   --train-data data/ogbench_cube_train.h5)
COMMON=(--override agent.energy_reduce=sum --override planner.select=best
        --override agent.stay_if_better=false)
T="scripts/make_cube_checkpoint.sh: lewm stage 1 + within-clip SIGReg, k = 5, 1800 steps, action head trained jointly (actor_weight 0.1, actor_goal_weight 0.05, goals up to 25 steps ahead in the clip)"
.venv/bin/python -m bench anchors "${A[@]}" "${COMMON[@]}" --label direct_shipped \
  --train-time "$T; Direct" \
  --override planner.proposal=centre --override planner.num_samples=1 \
  --override planner.num_elites=1 --override planner.iterations=1 --override planner.horizon=1 \
  --override agent.execute_steps=5
.venv/bin/python -m bench anchors "${A[@]}" "${COMMON[@]}" --label cem_same \
  --train-time "$T; plain CEM 300 x 5, top 30, 5 blocks, all 25 executed; agent.bf16" \
  --override planner.proposal=none --override planner.horizon=5 \
  --override planner.num_samples=300 --override planner.num_elites=30 --override planner.iterations=5 \
  --override agent.bf16=true
# Random on the same starts (the must-move and strict columns' floor).
.venv/bin/python -m bench anchors --task cube --agent random --dataset data/ogbench_cube_eval.h5
