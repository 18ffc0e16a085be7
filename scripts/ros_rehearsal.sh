#!/usr/bin/env bash
# The real-robot loop rehearsed in simulation over ROS 2 (docs/ros.md, "Rehearsing the robot
# loop in simulation"): wm-ros-sim + a scripted teleoperator + wm-ros-record -> bag ->
# python -m envs.data.rosbag import -> wm-train -> wm-ros-policy on wm-ros-sim.
#   bash scripts/ros_rehearsal.sh                 # small: 20 episodes, 200 steps; ~6 min
#   bash scripts/ros_rehearsal.sh --size full     # the HDF5 reach recipe's 300 episodes; ~1 h
# Arguments pass to python -m agent.ros.rehearsal (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
.venv/bin/python -m agent.ros.rehearsal "$@"
