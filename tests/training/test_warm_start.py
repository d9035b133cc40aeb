"""A run seeded from a trained model's weights: step 0 holds them, a resume keeps them, another
model's weights or a missing model are refused."""
import jax
import numpy as np
import pytest

from conftest import run_main
from uresnet_jax.common.errors import InputError
from uresnet_jax.inference import export, predictor
from uresnet_jax.model import checkpoints
from uresnet_jax.training import warm_start


def test_init_from_seeds_step_zero_with_the_models_weights(tiny_run, tmp_path):
  _, source, _, _ = tiny_run
  config = predictor.read_run_config(source)
  _, expected = predictor.load_variables(source)
  config.train.init_from = ""
  warm_start.seed_from_config(config, tmp_path / "none")
  assert not (tmp_path / "none").exists()  # random weights: nothing seeded

  config.train.init_from = str(source)
  run = tmp_path / "run"
  warm_start.seed_from_config(config, run)
  step, seeded = checkpoints.restore_variables(run, config, "latest")
  assert step == 0
  want, got = export.flatten(expected), export.flatten(seeded)
  assert want.keys() == got.keys()
  for name in want:
    np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]), err_msg=name)
  warm_start.seed_from_config(config, run)  # a resume: the same weights, nothing rewritten

  other = jax.tree.map(lambda v: np.asarray(v) + 1.0, expected)
  with pytest.raises(InputError, match="another pretrained model"):
    warm_start.seed_checkpoint(config, other, "other", run)
  config.train.init_from = str(tmp_path / "nowhere")
  with pytest.raises(InputError, match="config.train.init_from=.*nowhere: no such model"):
    warm_start.seed_from_config(config, tmp_path / "run2")
  assert not (tmp_path / "run2").exists()


@pytest.mark.slow
def test_missing_init_from_is_one_line_before_any_record(tmp_path):
  code, _, err = run_main(tmp_path / "run", tmp_path / "data",
                          f"--config.train.init_from={tmp_path / 'nowhere'}")
  assert code == 1 and "Traceback" not in err
  assert err.strip().splitlines()[-1].endswith(
      f"config.train.init_from={tmp_path / 'nowhere'}: no such model (a training workdir or an "
      "exported model folder)")
  assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
