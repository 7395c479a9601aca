#!/usr/bin/env bash
# Create or reuse .venv with pip and install linernotes into it (editable).
# torch is pinned to 2.13.0, which this machine serves as a local CPU wheel;
# pip (not uv/poetry) is required to find it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)

# pip, quietly, minus one known-harmless warning; a failing pip stops the bootstrap
# (its output shown) and the install is NOT marked done.
pip_quiet() {
  local log status
  log=$(mktemp)
  status=0
  .venv/bin/python -m pip "$@" >"$log" 2>&1 || status=$?
  grep -v "is ignored" "$log" || true
  rm -f "$log"
  if [ "$status" -ne 0 ]; then
    echo "[bootstrap] FAILED (exit $status): pip $*" >&2
    exit "$status"
  fi
}
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing linernotes and pinned dependencies (pip)"
  start=$(date +%s)
  pip_quiet install --quiet --upgrade pip
  pip_quiet install --quiet torch==2.13.0
  pip_quiet install --quiet -e .
  # torchvision/torchaudio/torchcodec wheels built for another torch break transformers imports.
  .venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  .venv/bin/python -c "import linernotes, torch, distilabel, xllamacpp; print('[bootstrap] torch', torch.__version__)"
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "[bootstrap] installed in $(( $(date +%s) - start ))s"
fi
