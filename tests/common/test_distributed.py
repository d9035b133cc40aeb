"""Two processes on localhost as one run (jax.distributed over CPU): the same training as one
process with the same global batch, the phantom generated in shares, a stop on one host stopping
both, and a predict run's scans shared out and gathered into one set of tables."""
import csv
import json
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import pytest

import numpy as np
import jax

from conftest import ROOT, TINY_RUN, subprocess_env
from uresnet_jax.inference import predictor
from uresnet_jax.model import checkpoints


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _main(workdir, data, *extra, log=None) -> subprocess.Popen:
  """The tiny main job for 1 epoch; output to pipes, or to files `log`.out/.err (a process whose
  pipe nobody reads blocks, and with it the other process at the next collective)."""
  args = [sys.executable, "-m", "uresnet_jax.main", "--config=configs/tiny.py",
          f"--workdir={workdir}", f"--config.data.cohort={data / 'cohort'}",
          f"--config.data.records_dir={data / 'tfds'}", "--config.train.epochs=1",
          "--config.train.decay_epoch=1", *TINY_RUN, *extra]
  env = subprocess_env(XLA_FLAGS="")  # one CPU device per process
  out = open(f"{log}.out", "w") if log else subprocess.PIPE
  err = open(f"{log}.err", "w") if log else subprocess.PIPE
  return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)


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
  # One process: the tiny run, the same command with a second epoch whose learning rate differs
  # only after the first (decay_epoch=1): its first epoch's checkpoint is the same step.
  single = tiny_run[1]
  config = predictor.read_run_config(tmp_path / "two")
  step_two, two = checkpoints.restore_variables(tmp_path / "two", config)
  step_one, one = checkpoints.restore_variables(single, config, str(step_two))
  assert step_one == step_two > 0
  diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), one, two)
  # the same batches, flips and global batch-norm statistics; only the reduction order differs
  assert max(jax.tree.leaves(diffs)) < 1e-4, diffs
  assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
      p.name for p in single.iterdir())  # one set of files, written once
  # A damaged checkpoint: both processes find it so, process 0 alone sets it aside, and with no
  # other checkpoint left both stop with the same one-line error instead of one of them waiting.
  (checkpoint,) = [d for d in (tmp_path / "two" / "checkpoints").iterdir() if d.name.isdigit()]
  for f in checkpoint.rglob("d/*"):
    f.write_bytes(f.read_bytes()[:10])
  port = _free_port()
  pair = [_main(tmp_path / "two", data, f"--coordinator_address=localhost:{port}",
                "--num_processes=2", f"--process_id={i}") for i in (0, 1)]
  for p, (_, err) in zip(pair, [p.communicate(timeout=600) for p in pair]):
    assert p.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert f"checkpoint step {checkpoint.name}" in err and "none of the 1 checkpoint(s)" in err
  damaged = tmp_path / "two" / "damaged_checkpoints"
  assert [d.name for d in damaged.iterdir()] == [checkpoint.name]  # moved once, by process 0


def test_a_sigterm_on_one_host_stops_both_at_the_same_step_with_a_checkpoint(tiny_run, tmp_path):
  """On a fresh data folder: the two processes also generate the phantom cohort together."""
  data = tmp_path / "data"
  port = _free_port()
  logs = [tmp_path / f"process{i}" for i in (0, 1)]
  pair = [_main(tmp_path / "run", data, f"--coordinator_address=localhost:{port}",
                "--num_processes=2", f"--process_id={i}", "--config.train.epochs=200",
                "--config.train.eval_every=1000", log=logs[i]) for i in (0, 1)]
  deadline = time.monotonic() + 300
  while "first step" not in pathlib.Path(f"{logs[1]}.out").read_text():  # past its first step
    assert time.monotonic() < deadline and pair[1].poll() is None
    time.sleep(0.5)
  time.sleep(2)
  pair[1].send_signal(signal.SIGTERM)  # process 1 alone
  for p in pair:
    p.wait(timeout=300)
  outputs = [(None, pathlib.Path(f"{log}.err").read_text()) for log in logs]
  stops = []
  for p, (_, err) in zip(pair, outputs):
    assert p.returncode == 1, err[-3000:]
    stops.append(int(re.search(r"interrupted at step (\d+)", err).group(1)))
  assert stops[0] == stops[1] > 0
  config = predictor.read_run_config(tmp_path / "run")
  assert checkpoints.restore_variables(tmp_path / "run", config)[0] == stops[0]
  for i, log in enumerate(logs):  # each generated its share of the subjects ...
    assert f"(process {i} of 2)" in pathlib.Path(f"{log}.out").read_text()
  cohort, reference = data / "cohort", tiny_run[0] / "cohort"
  files = sorted(p.relative_to(cohort) for p in cohort.rglob("*") if p.is_file())
  assert files == sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
  for name in files:  # ... and the cohort is the one a single process generates, byte for byte
    assert (cohort / name).read_bytes() == (reference / name).read_bytes(), name


def test_two_processes_share_the_scans_of_a_predict_run_into_one_set_of_tables(tiny_run, tmp_path):
  data, workdir = tiny_run[0], tiny_run[1]
  scans = tmp_path / "scans"
  scans.mkdir()
  for flair in sorted((data / "cohort").glob("sub-*/flair.nii.gz")):
    shutil.copy(flair, scans / f"{flair.parent.name}.nii.gz")

  def predict(output, *extra, log=None):
    args = [sys.executable, "-m", "uresnet_jax.predict", f"--model={workdir}", f"--input={scans}",
            f"--output={output}", *extra]
    env = subprocess_env(XLA_FLAGS="")
    with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
      return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)

  port = _free_port()
  pair = [predict(tmp_path / "two", f"--coordinator_address=localhost:{port}", "--num_processes=2",
                  f"--process_id={i}", log=tmp_path / f"p{i}") for i in (0, 1)]
  single = predict(tmp_path / "one", log=tmp_path / "single")
  for i, p in enumerate([*pair, single]):
    assert p.wait(timeout=600) == 0, (tmp_path / ["p0", "p1", "single"][i]).with_suffix(".err")
  shares = [(tmp_path / f"p{i}.out").read_text().count(" mL, stroke ") for i in (0, 1)]
  assert shares == [2, 2]  # each process segmented half of the 4 scans

  def table(folder):
    with open(folder / "volumes.csv") as f:
      return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]

  assert table(tmp_path / "two") == table(tmp_path / "one")
  files = lambda folder: sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
  assert files(tmp_path / "two") == files(tmp_path / "one")
  assert not list(tmp_path.glob(".parts-*"))  # the staging folder is gone


def test_on_chief_and_everywhere_return_the_result_or_raise_the_error_in_one_process():
  from uresnet_jax.common import distributed
  from uresnet_jax.common.errors import InputError
  assert distributed.on_chief("making it", lambda: 3) == 3
  assert distributed.everywhere("reading it", lambda: 4) == 4

  def fail():
    raise InputError("the lock is held")

  with pytest.raises(InputError, match="the lock is held"):
    distributed.on_chief("locking", fail)
  with pytest.raises(InputError, match="the lock is held"):
    distributed.everywhere("locking", fail)
