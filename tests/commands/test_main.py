"""End-to-end: the main job on the tiny config — learns, checkpoints, evaluates, resumes exactly."""
import json
import pathlib
import signal
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import main_process as _main, run_main as _run


def _params(workdir: pathlib.Path):
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(steps[-1]) / "default")
  return steps[-1], restored["params"]


@pytest.fixture
def uninterrupted(tiny_run):
  return tiny_run


def test_tiny_run_learns_checkpoints_and_evaluates(uninterrupted):
  data, workdir, out, err = uninterrupted
  assert (data / "cohort" / "subjects.csv").exists()
  summary = json.loads((workdir / "eval" / "latest" / "summary.json").read_text())
  assert np.isfinite(summary["wmh"]["dice_mean"]) and summary["wmh"]["n_subjects"] >= 1
  assert 0.0 <= summary["wmh"]["dice_mean"] <= 1.0
  assert "held-out fold 1" in out
  step, params = _params(workdir)
  assert step > 0 and all(np.all(np.isfinite(v)) for v in __import__("jax").tree.leaves(params))
  config = json.loads((workdir / "config.json").read_text())
  assert config["model"]["base_width"] == 4
  events = list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert events


def test_loss_goes_down_and_dice_curves_are_logged(uninterrupted):
  from tensorboardX.proto import event_pb2  # the event files are plain TFRecord protos
  import struct
  _, workdir, _, _ = uninterrupted
  losses, tags = [], set()
  for path in (workdir / "tensorboard").glob("events.out.tfevents.*"):
    raw = path.read_bytes()
    pos = 0
    while pos < len(raw):
      (length,) = struct.unpack("<Q", raw[pos:pos + 8])
      event = event_pb2.Event.FromString(raw[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      losses += [v.simple_value for v in event.summary.value if v.tag == "train/loss"]
      tags |= {v.tag for v in event.summary.value}
  assert {"eval/wmh_dice", "train_eval/wmh_dice", "train/learning_rate"} <= tags
  assert len(losses) >= 4
  k = max(1, len(losses) // 4)
  assert np.mean(losses[-k:]) < np.mean(losses[:k])


def test_killed_run_resumes_to_the_same_parameters(uninterrupted, tmp_path):
  data, reference, _, _ = uninterrupted
  workdir = tmp_path / "killed"
  proc = _main(workdir, data)
  deadline = time.time() + 600
  first_epoch = None
  while time.time() < deadline and proc.poll() is None:
    ckpts = workdir / "checkpoints"
    done = [p for p in ckpts.iterdir() if p.name.isdigit()] if ckpts.exists() else []
    if done:
      first_epoch = done[0]
      break
    time.sleep(0.05)
  assert first_epoch is not None, proc.communicate()[1][-3000:]
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  # it was killed while training: by the signal, before its last checkpoint
  assert proc.returncode == -signal.SIGKILL
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  final_step, _ = _params(reference)
  assert saved and saved[-1] < final_step, saved
  code, _, err = _run(workdir, data)
  assert code == 0, err[-3000:]
  step_a, params_a = _params(reference)
  step_b, params_b = _params(workdir)
  assert step_a == step_b
  import jax
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6), params_a, params_b)


def test_incompatible_workdir_is_refused_without_touching_it(uninterrupted):
  data, workdir, _, _ = uninterrupted
  before = (workdir / "config.json").read_text()
  code, _, err = _run(workdir, data, "--config.model.base_width=8")
  assert code == 1
  assert "base_width" in err and "Traceback" not in err
  assert (workdir / "config.json").read_text() == before


def test_bad_batch_size_is_one_line(tmp_path):
  code, _, err = _run(tmp_path / "w", tmp_path, "--config.train.batch_size=0")
  assert code == 1 and "batch_size" in err and "Traceback" not in err


@pytest.mark.parametrize("flag, expected", [
    ("--config.train.epochz=3", "epochz"),
    ("--config=configs/nothere.py", "nothere.py"),
    ("--config.train.epochs=abc", "epochs"),
])
def test_bad_flags_are_one_line(tmp_path, flag, expected):
  code, _, err = _run(tmp_path / "w", tmp_path, flag)
  assert code == 1 and "Traceback" not in err
  line = [l for l in err.splitlines() if l.startswith("error:")]
  assert len(line) == 1 and expected in line[0]
  assert not (tmp_path / "w").exists()


def _copy_run(workdir: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
  import shutil
  copy = tmp_path / "copy"
  shutil.copytree(workdir, copy)
  return copy


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(uninterrupted, tmp_path):
  import re
  data, _, _, _ = uninterrupted
  workdir = tmp_path / "diverges"
  # a sane first epoch (checkpoint at step 17), then the learning rate x 1e30: NaN in epoch 2
  code, _, err = _run(workdir, data, "--config.train.decay_factor=1e30")
  assert code == 1 and "Traceback" not in err
  line = [l for l in err.splitlines() if l.startswith("error:")][-1]
  failed_at = int(re.search(r"training diverged at step (\d+)", line).group(1))
  assert "non-finite loss" in line and 17 < failed_at <= 34 and "step 17) is kept" in line
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["17"]
  step, params = _params(workdir)
  import jax
  assert step == 17 and all(np.all(np.isfinite(v)) for v in jax.tree.leaves(params))


def test_damaged_latest_checkpoint_is_skipped_for_the_previous_one(uninterrupted, tmp_path):
  data, reference, _, _ = uninterrupted
  workdir = _copy_run(reference, tmp_path)
  for f in (workdir / "checkpoints" / "34" / "default").rglob("d/*"):
    f.write_bytes(f.read_bytes()[:10])  # truncated array files
  code, _, err = _run(workdir, data)
  assert code == 0 and "Traceback" not in err, err[-3000:]
  warnings = [l for l in err.splitlines() if "damaged" in l]
  assert len(warnings) == 1 and "step 34" in warnings[0], warnings
  assert (workdir / "damaged_checkpoints" / "34").is_dir()
  (step_a, params_a), (step_b, params_b) = _params(reference), _params(workdir)
  assert step_a == step_b == 34  # retrained from step 17 to the same parameters
  import jax
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6), params_a, params_b)
  for f in (workdir / "checkpoints").rglob("manifest.ocdbt"):
    f.write_bytes(f.read_bytes()[:5])  # now every checkpoint is damaged
  code, _, err = _run(workdir, data)
  assert code == 1 and "none of the 2 checkpoint(s) could be restored" in err
  assert "Traceback" not in err


def test_a_second_run_on_a_held_workdir_is_refused(tmp_path):
  import fcntl
  workdir = tmp_path / "busy"
  workdir.mkdir()
  with open(workdir / ".lock", "a+") as lock:  # as a running training process holds it
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.write("4242")
    lock.flush()
    code, _, err = _run(workdir, tmp_path)
  assert code == 1 and "Traceback" not in err
  assert "another training run (pid 4242)" in err.splitlines()[-1]
  assert sorted(p.name for p in workdir.iterdir()) == [".lock"]  # nothing else written
