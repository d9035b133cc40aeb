"""Two processes on localhost as one run (jax.distributed over CPU): the same training as one
process with the same global batch; the data prepared once."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import jax

from conftest import ROOT
from uresnet_jax import predictor


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _main(workdir, data, *extra) -> subprocess.Popen:
  args = [sys.executable, "-m", "uresnet_jax.main", "--config=configs/tiny.py",
          f"--workdir={workdir}", f"--config.data.cohort={data / 'cohort'}",
          f"--config.data.records_dir={data / 'tfds'}", "--config.train.epochs=1",
          "--config.train.decay_epoch=1", *extra]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")  # one CPU device per process
  return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def test_two_processes_take_the_same_steps_as_one(tiny_run, tmp_path):
  data = tiny_run[0]
  port = _free_port()
  pair = [_main(tmp_path / "two", data, f"--coordinator_address=localhost:{port}",
                "--num_processes=2", f"--process_id={i}") for i in (0, 1)]
  outputs = [p.communicate(timeout=600) for p in pair]
  for p, (out, err) in zip(pair, outputs):
    assert p.returncode == 0, err[-3000:]
  assert "2 cpu device(s)" in outputs[0][0]  # one global mesh over both processes
  assert json.loads(outputs[0][0][outputs[0][0].index("{"):])["wmh"]["n_subjects"] > 0
  single = _main(tmp_path / "one", data)
  out, err = single.communicate(timeout=600)
  assert single.returncode == 0, err[-3000:]
  config = predictor.read_run_config(tmp_path / "one")
  step_one, one = predictor.restore_variables(tmp_path / "one", config)
  step_two, two = predictor.restore_variables(tmp_path / "two", config)
  assert step_one == step_two > 0
  diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), one, two)
  # the same batches, flips and global batch-norm statistics; only the reduction order differs
  assert max(jax.tree.leaves(diffs)) < 1e-4, diffs
  assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
      p.name for p in (tmp_path / "one").iterdir())  # one set of files, written once
