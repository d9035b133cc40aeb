#!/usr/bin/env bash
# Trains, scores and exports the bundled release model on a GPU machine, and scores the model
# bundled now on the same held-out domains (the before/after table of the model card).
#   bash scripts/release_gpu.sh [OUTDIR] [LIMIT_S]   (default: $OUT or release_gpu/, 470 s)
# Training stops cleanly (checkpoint saved) at LIMIT_S; run the script again on the same machine
# to resume and finish: a finished run is only scored and exported again. Needs the package's
# dependencies and a CUDA jax in $PYTHON's environment. CONFIG (default configs/release.py) and
# WORKERS (phantom generation processes, default: all cores) may be set.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${1:-${OUT:-release_gpu}}
limit=${2:-470}
config=${CONFIG:-configs/release.py}
run=${RUN:-runs/release_gpu}
workers=${WORKERS:-$(nproc)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
stamp() { echo "$(( $(date +%s) - start )) s: $*" | tee -a "$out/times.txt"; }
"$python" -c "import jax; print(jax.__version__, jax.devices())" 2>&1
stamp start
timeout -s TERM "$limit" "$python" -m uresnet_jax.main --config="$config" --workdir="$run" \
    --config.phantom.num_workers="$workers" > "$out/train.log" 2>&1
stamp "main: trained and scored (exit $?)"
"$python" -m uresnet_jax.export --workdir="$run" --output="$run/export" --overwrite \
    >> "$out/train.log" 2>&1
stamp "exported (exit $?)"
tar czf "$out/release_run.tgz" --exclude=checkpoints -C "$run" .
latest=$(ls "$run/checkpoints" | grep -E '^[0-9]+$' | sort -n | tail -1)
tar czf "$out/checkpoint.tgz" -C "$run" "checkpoints/$latest"  # the latest alone: to resume
stamp packed
if [[ -f $run/domains.json && $(( $(date +%s) - start )) -lt $limit ]]; then
  timeout -s TERM 120 "$python" scripts/score_domains.py --config="$config" \
      --config.phantom.num_workers="$workers" --output="$out/previous_model" \
      > "$out/previous_model.log" 2>&1
  stamp "previous bundled model scored (exit $?)"
fi
