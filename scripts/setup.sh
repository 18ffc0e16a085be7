#!/usr/bin/env bash
# Idempotent setup: system packages for offscreen MuJoCo rendering, a venv with pinned deps.
# Sourced or run by scripts/test.sh and scripts/demo.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Debian packages for offscreen rendering (EGL and OSMesa), only when missing.
need=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6 libglib2.0-0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "[setup] missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  fi
fi

# 2. The venv.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
stamp=.venv/.setup-stamp
want="$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  $VPIP install -q --upgrade pip >/dev/null
  # CPU torch unless a GPU is present: a bare `torch` pulls a multi-GB CUDA build.
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      $VPIP install -q torch
    else
      $VPIP install -q "torch==2.13.0" || $VPIP install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
    fi
  fi
  # Build-backend chatter (setuptools' editable-install notice) goes to a log that is shown
  # only when the install fails, so a newcomer sees no warnings to wonder about.
  $VPIP install -q -e ".[dev,ros]" >.venv/setup-pip.log 2>&1 || { cat .venv/setup-pip.log >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "[setup] ok: $(.venv/bin/python -c 'import torch, mujoco; print("torch", torch.__version__, "mujoco", mujoco.__version__)')"
