#!/usr/bin/env bash
# The whole GPU check in one call: bench (with the PyTorch peer when torch is importable) and the
# wall time of the paper's protocol (configs/default.py: 2 folds x 30 epochs, 40-subject phantom).
#   bash scripts/gpu_check.sh [OUTDIR]        (default: gpu_check/)
# (The input pipeline and the record build run on the CPU: bench them here, not on GPU time.)
# Needs the package and a CUDA jax in $PYTHON's environment, e.g. on a fresh GPU machine:
#   python -m venv .venv && .venv/bin/pip install -e . 'jax[cuda12]' && PYTHON=.venv/bin/python bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${1:-${OUT:-gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
"$python" -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/devices.txt"
torch=()
if "$python" -c "import torch" 2>/dev/null; then torch=(--torch); fi
for dtype in float32 bfloat16; do
  "$python" -m uresnet_jax.bench --config=configs/default.py --config.model.dtype=$dtype \
      --parts=train,infer,predict --json="$out/bench_$dtype.json" "${torch[@]}" \
      --torch_args="--channels-last" \
      2>&1 | tail -40 > "$out/bench_$dtype.log"
done
start=$(date +%s)
"$python" -m uresnet_jax.crossval --config=configs/default.py --workdir="$out/paper_cv" \
    --config.train.eval_every=30 2>&1 | tail -60 > "$out/paper_cv.log"
echo "paper protocol (2 folds x 30 epochs, pooled): $(( $(date +%s) - start )) s" | tee "$out/paper_cv_time.txt"
