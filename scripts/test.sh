#!/usr/bin/env bash
# The README's test command: installs what it needs, then runs the whole suite (slow and ROS tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest -q -rs "$@"
