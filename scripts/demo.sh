#!/usr/bin/env bash
# The README's main command: installs what it needs, then runs closed-loop control of
# whole-workspace wm/PandaReach-v1 with the shipped checkpoints/reach1_tiny. Extra args go to
# wm-demo (Hydra).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/wm-demo "$@"
