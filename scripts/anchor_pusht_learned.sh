#!/usr/bin/env bash
# The pusht:* learned rows of bench/results/anchors.md (issue 30): Push-T with the anchors'
# relative actions (pusht/PushTRelative-v0: the PD target moves by 100 px x action from the
# agent, 10 Hz), from scratch with the project's own commands.
#   1. 1000 episodes of the scripted pusher at the anchors' pace, noise 2-10 px (the held-out
#      recipe at other seeds); ~10 min on one core (1.7 episodes/s).
#   2. The lewm recipe's stage 1 (within-clip SIGReg, history 3, blocks of 5 steps), STEPS steps,
#      with INTACT's action head trained jointly (as scripts/make_cube_checkpoint.sh: goals up
#      to 25 control steps ahead, the protocol's offset); `planner=direct` recorded as
#      recommended.
#   4. The held-out set (`bench heldout --task pusht`, seeds never trained on), then 50 episodes
#      of the anchors' protocol (goal 25 steps ahead, budget 50) with Direct and with plain CEM
#      300 x 5, top 30, over 5 blocks on the same checkpoint.
# Measured times are printed with the rows (bench/results/anchors.md, "train time").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # .[dev] includes gym-pusht
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
STEPS=${STEPS:-3000}
OUT=${OUT:-runs/pusht_k5_joint}
ID=pusht/PushTRelative-v0
[ -f data/pusht_rel_train.h5 ] ||
  .venv/bin/wm-collect env.id=$ID policy.name=expert policy.noise=0.02 policy.noise_max=0.1 \
    num_episodes=1000 seed=20000 num_workers=1 output=data/pusht_rel_train.h5
.venv/bin/python -m bench heldout --task pusht  # data/pusht_rel_eval.h5
[ -f "$OUT/world_model/model.safetensors" ] ||
  .venv/bin/wm-train --config-name train_lewm world_model.predictor.use_state=false \
    "data=[data/pusht_rel_train.h5]" steps="$STEPS" optim.decay_steps=$((STEPS / 3)) \
    sigreg_proj=128 sigreg_within=1.0 world_model.action_block=5 out_dir="$OUT" \
    actor_weight=0.1 actor_goal_weight=0.05 actor_goal_window=25
.venv/bin/python -m agent.recommend "$OUT/world_model" planner.proposal=centre \
  planner.num_samples=1 planner.num_elites=1 planner.iterations=1 planner.horizon=1 \
  agent.execute_steps=5 agent.energy_reduce=sum planner.select=best agent.stay_if_better=false

A=(--task pusht --agent learned --dataset data/pusht_rel_eval.h5 --checkpoint "$OUT/world_model"
   --train-data data/pusht_rel_train.h5)
COMMON=(--override agent.energy_reduce=sum --override planner.select=best
        --override agent.stay_if_better=false)
T="scripts/anchor_pusht_learned.sh: 1000 pusher episodes; lewm stage 1 + within-clip SIGReg, k = 5, $STEPS steps, action head trained jointly (actor_weight 0.1, actor_goal_weight 0.05, goals up to 25 steps ahead)"
.venv/bin/python -m bench anchors "${A[@]}" "${COMMON[@]}" --label direct \
  --train-time "$T; Direct" \
  --override planner.proposal=centre --override planner.num_samples=1 \
  --override planner.num_elites=1 --override planner.iterations=1 --override planner.horizon=1 \
  --override agent.execute_steps=5
.venv/bin/python -m bench anchors "${A[@]}" "${COMMON[@]}" --label cem_same \
  --train-time "$T; plain CEM 300 x 5, top 30, 5 blocks, all 25 executed; agent.bf16" \
  --override planner.proposal=none --override planner.horizon=5 \
  --override planner.num_samples=300 --override planner.num_elites=30 --override planner.iterations=5 \
  --override agent.bf16=true
