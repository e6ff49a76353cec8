#!/usr/bin/env bash
# Install PyTorch into the given Python without pulling a multi-GB CUDA build onto a machine with no GPU.
# With an NVIDIA GPU: the default (CUDA) wheel. Without: the CPU wheel from PyTorch's CPU index (a local wheel
# in pip's find-links wins when present, so this also works offline with only a package mirror).
set -euo pipefail
PY=${1:-python3}
VERSION=${TORCH_VERSION:-2.13.0}
if "$PY" -c "import torch" 2>/dev/null; then
  echo "torch already installed: $("$PY" -c 'import torch; print(torch.__version__)')"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$PY" -m pip install "torch==$VERSION"
else
  "$PY" -m pip install "torch==$VERSION" --index-url https://download.pytorch.org/whl/cpu --timeout 15 --retries 1 \
    || "$PY" -m pip install "torch==$VERSION"
fi
