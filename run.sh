#!/usr/bin/env bash
# Set-up on first use (a venv with the package installed editable), then the main job or the tests.
#   bash run.sh            train + evaluate on the built-in phantom cohort (configs/demo.py, runs/demo)
#   bash run.sh test       the test suite
#   bash run.sh setup      the set-up alone (e.g. to predict with the bundled model, no training)
# Extra arguments are passed on, e.g. `bash run.sh --config.train.epochs=2` or `bash run.sh test -k model`.
set -euo pipefail
cd "$(dirname "$0")"
venv=${VENV:-.venv}
python=${PYTHON:-python3}
stamp="$venv/.installed-$(sha1sum setup.py | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "Setting up $venv (first run only)..."
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e '.[test]'
  touch "$stamp"
fi
if [[ ${1:-} == setup ]]; then
  exit 0
fi
if [[ ${1:-} == test ]]; then
  shift
  exec "$venv/bin/python" -m pytest -q tests "$@"
fi
exec "$venv/bin/python" -m uresnet_jax.main --config=configs/demo.py --workdir="${WORKDIR:-runs/demo}" "$@"
