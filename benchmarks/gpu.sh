#!/usr/bin/env bash
# The training benchmark on a CUDA GPU, as one prepared script (well under 8 minutes).
#   bash benchmarks/gpu.sh [MNIST_DIR] [OUT_DIR]
# Sets up a venv with the CUDA build of torch if needed, then runs time-to-99% for the
# small CNN (baseline vs jiasu auto, 3 seeds) and the per-technique throughput table.
# GPU anchor to beat: MNIST to 99% in 0.76 s on a laptop GTX 1660 Ti.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/mnist}
OUT=${2:-${OUT:-runs}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu.sh: no CUDA device visible to $PY (torch missing or CPU build); nothing to run"
  exit 0
fi
"$PY" -m pip install -q -e . >/dev/null 2>&1 || "$PY" -m pip install -q --no-deps -e .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
export PYTHONUNBUFFERED=1
timeout 420 "$PY" benchmarks/train_mnist.py --device cuda --data-dir "$DATA" \
  --sections tta,techniques --seeds 3 --baseline-epochs 4 --fast-epochs 2 \
  --json "$OUT/gpu_train.json" 2>&1 | tee "$OUT/gpu_train.log"
