"""Checkpoints: never written with NaN/Inf; the newest readable one is restored, damaged ones set aside."""
import jax.numpy as jnp
import numpy as np
import pytest

from uresnet_jax import checkpointing
from uresnet_jax.errors import InputError


def _state(value: float) -> dict:
  return {"params": {"w": jnp.full((3,), value)}, "step": jnp.int32(1)}


def _damage(checkpoint):
  files = list(checkpoint.rglob("d/*"))
  assert files
  for f in files:
    f.write_bytes(f.read_bytes()[:4])  # truncated array data


def test_a_state_with_nan_or_inf_is_never_written(tmp_path):
  manager = checkpointing.create_checkpoint_manager(tmp_path, keep=2)
  checkpointing.save(manager, 1, _state(1.0), None)
  manager.wait_until_finished()
  for bad in (np.nan, np.inf):
    with pytest.raises(InputError, match="NaN or Inf.*step 1, is kept"):
      checkpointing.save(manager, 2, _state(bad), None)
  assert manager.all_steps() == [1]


def test_restore_falls_back_past_a_damaged_checkpoint(tmp_path, capsys):
  manager = checkpointing.create_checkpoint_manager(tmp_path, keep=3)
  for step in (1, 2):
    checkpointing.save(manager, step, _state(float(step)), None)
  manager.wait_until_finished()
  _damage(tmp_path / "checkpoints" / "2")
  restored = checkpointing.restore_latest(manager, _state(0.0))
  np.testing.assert_array_equal(restored["params"]["w"], [1.0, 1.0, 1.0])
  assert (tmp_path / "damaged_checkpoints" / "2").is_dir() and manager.all_steps() == [1]
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "checkpoint step 2" in err and "is damaged" in err
  _damage(tmp_path / "checkpoints" / "1")
  with pytest.raises(InputError, match="none of the 1 checkpoint"):
    checkpointing.restore_latest(manager, _state(0.0))
  empty = checkpointing.create_checkpoint_manager(tmp_path / "fresh", keep=3)
  assert checkpointing.restore_latest(empty, _state(5.0))["params"]["w"][0] == 5.0
