#!/usr/bin/env bash
# Builds a bundled release model on a GPU machine: `python -m uresnet_jax.release` (train, calibrate
# the stroke threshold, export, gate beside the bundled model, model card) under a time limit.
#   bash scripts/release_gpu.sh [OUTDIR] [LIMIT_S]   (default: $OUT or release_gpu/, 470 s)
# Training stops cleanly (checkpoint saved) at LIMIT_S; run the script again on the same machine
# to resume and finish. Needs the package's dependencies and a CUDA jax in $PYTHON's environment.
# CONFIG (default configs/release.py), RUN (default runs/release_gpu), REAL (comma-separated real
# labelled manifests for the gate) and WORKERS (phantom generation processes, default: all cores)
# may be set.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${1:-${OUT:-release_gpu}}
limit=${2:-470}
config=${CONFIG:-configs/release.py}
run=${RUN:-runs/release_gpu}
workers=${WORKERS:-$(nproc)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "$(( $(date +%s) - start )) s: $*" | tee -a "$out/times.txt"; }
"$python" -c "import jax; print(jax.__version__, jax.devices())" 2>&1
stamp start
timeout -s TERM "$limit" "$python" -m uresnet_jax.release --config="$config" --workdir="$run" \
    --output="$run/export" --against=uresnet_jax/release_model ${REAL:+--real="$REAL"} \
    --config.phantom.num_workers="$workers" > "$out/release.log" 2>&1
stamp "release: trained, calibrated, exported, gated, card written (exit $?)"
tar czf "$out/release_run.tgz" --exclude=checkpoints -C "$run" .
latest=$(ls "$run/checkpoints" | grep -E '^[0-9]+$' | sort -n | tail -1)
tar czf "$out/checkpoint.tgz" -C "$run" "checkpoints/$latest"  # the latest alone: to resume
stamp packed
