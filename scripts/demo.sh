#!/usr/bin/env bash
# The README's main command: installs what it needs, then runs closed-loop control of
# wm/PandaReach-v0 with the checkpoint shipped in checkpoints/. Extra args go to wm-demo (Hydra).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/wm-demo "$@"
