"""Checkpoints: never written with NaN/Inf; the newest readable one is restored, damaged ones set aside."""
import jax.numpy as jnp
import numpy as np
import pytest

from uresnet_jax.common.errors import DamagedCheckpoint, InputError, TrainingDiverged
from uresnet_jax.model import checkpoints, run_folder


def _state(value: float) -> dict:
  return {"params": {"w": jnp.full((3,), value)}, "step": jnp.int32(1)}


def _damage(checkpoint):
  files = list(checkpoint.rglob("d/*"))
  assert files
  for f in files:
    f.write_bytes(f.read_bytes()[:4])  # truncated array data


def test_a_state_with_nan_or_inf_is_never_written(tmp_path):
  manager = checkpoints.create_checkpoint_manager(tmp_path, keep=2)
  checkpoints.save(manager, 1, _state(1.0))
  manager.wait_until_finished()
  for bad in (np.nan, np.inf):
    with pytest.raises(TrainingDiverged, match="diverged at step 2.*NaN or Inf.*step 1, is kept"):
      checkpoints.save(manager, 2, _state(bad))
  assert manager.all_steps() == [1]


def test_restore_falls_back_past_a_damaged_checkpoint(tmp_path, capsys):
  manager = checkpoints.create_checkpoint_manager(tmp_path, keep=3)
  for step in (1, 2):
    checkpoints.save(manager, step, _state(float(step)))
  manager.wait_until_finished()
  _damage(tmp_path / "checkpoints" / "2")
  restored = checkpoints.restore_latest(manager, _state(0.0))
  np.testing.assert_array_equal(restored["params"]["w"], [1.0, 1.0, 1.0])
  assert (tmp_path / "damaged_checkpoints" / "2").is_dir() and manager.all_steps() == [1]
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "checkpoint step 2" in err and "is damaged" in err
  _damage(tmp_path / "checkpoints" / "1")
  with pytest.raises(DamagedCheckpoint, match="none of the 1 checkpoint"):
    checkpoints.restore_latest(manager, _state(0.0))
  empty = checkpoints.create_checkpoint_manager(tmp_path / "fresh", keep=3)
  assert checkpoints.restore_latest(empty, _state(5.0))["params"]["w"][0] == 5.0


def test_a_resume_must_match_the_experiment(tmp_path):
  import json
  from configs import tiny
  config = tiny.get_config()
  run_folder.write_config(tmp_path, config)
  checkpoints.check_compatible(tmp_path, config)  # no checkpoint yet: anything goes
  checkpoints.check_experiment(tmp_path, "abc", {"s1": 0, "s2": 1}, "grain-1")
  manager = checkpoints.create_checkpoint_manager(tmp_path, keep=2)
  checkpoints.save(manager, 1, _state(1.0))
  manager.wait_until_finished()
  for field, value in (("seed", 1), ("data.eval_fold", 0), ("sampling.max_shift", 0),
                       ("sampling.bright_share", 0.9), ("train.batch_size", 16),
                       ("train.loss", "pseudo_dice")):
    changed = tiny.get_config()
    section, _, name = field.rpartition(".")
    (changed[section] if section else changed)[name] = value
    with pytest.raises(InputError, match=f"trained with {field}="):
      checkpoints.check_compatible(tmp_path, changed)
  longer = tiny.get_config()
  longer.train.epochs = 10  # more epochs continue the same experiment
  checkpoints.check_compatible(tmp_path, longer)
  with pytest.raises(InputError, match="other data"):
    checkpoints.check_experiment(tmp_path, "xyz", {"s1": 0, "s2": 1}, "grain-1")
  with pytest.raises(InputError, match="another fold assignment"):
    checkpoints.check_experiment(tmp_path, "abc", {"s1": 1, "s2": 0}, "grain-1")
  checkpoints.check_experiment(tmp_path, "abc", {"s2": 1, "s1": 0}, "grain-1")
  assert json.loads((tmp_path / "experiment.json").read_text())["fold_of_subject"] == {
      "s1": 0, "s2": 1}
  with pytest.raises(InputError, match="another data order"):
    checkpoints.check_experiment(tmp_path, "abc", {"s1": 0, "s2": 1}, "grain-2")
  record = json.loads((tmp_path / "experiment.json").read_text())
  del record["data_order"]  # a run from before the order was recorded: the numpy order
  (tmp_path / "experiment.json").write_text(json.dumps(record))
  with pytest.raises(InputError, match=r"another data order \(numpy-1"):
    checkpoints.check_experiment(tmp_path, "abc", {"s1": 0, "s2": 1}, "grain-1")
