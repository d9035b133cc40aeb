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


def test_average_with_seeds_step_zero_with_the_two_models_weighted_mean(tiny_run, tmp_path):
  _, source, _, _ = tiny_run
  config = predictor.read_run_config(source)
  _, first = predictor.load_variables(source)
  second = jax.tree.map(lambda v: np.asarray(v) * -2.0 + 3.0, first)
  mixed = warm_start.average(first, [second], 0.25)
  for name, value in export.flatten(mixed).items():
    want = 0.75 * np.asarray(export.flatten(first)[name]) + 0.25 * np.asarray(
        export.flatten(second)[name])
    np.testing.assert_allclose(value, want, rtol=1e-6, err_msg=name)
  config.train.init_from = str(source)
  config.train.average_with = str(source)  # a model averaged with itself is itself
  config.train.average_weight = 0.3
  run = tmp_path / "run"
  warm_start.seed_from_config(config, run)
  _, seeded = checkpoints.restore_variables(run, config, "latest")
  for name, value in export.flatten(seeded).items():
    np.testing.assert_allclose(np.asarray(value), np.asarray(export.flatten(first)[name]),
                               rtol=1e-6, err_msg=name)


def test_average_with_several_models_is_a_uniform_soup_at_their_share(tiny_run, tmp_path):
  _, source, _, _ = tiny_run
  config = predictor.read_run_config(source)
  _, first = predictor.load_variables(source)
  second = jax.tree.map(lambda v: np.asarray(v) * -2.0 + 3.0, first)
  third = jax.tree.map(lambda v: np.asarray(v) * 0.5 - 1.0, first)
  soup = warm_start.average(first, [second, third], 2 / 3)
  for name, value in export.flatten(soup).items():
    want = sum(np.asarray(export.flatten(m)[name]) for m in (first, second, third)) / 3
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6, err_msg=name)
  config.train.init_from = str(source)
  config.train.average_with = f"{source}, {tmp_path / 'nowhere'}"
  with pytest.raises(InputError, match="config.train.average_with=.*nowhere: no such model"):
    warm_start.seed_from_config(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_average_with_is_refused_without_init_from_a_weight_or_matching_shapes(tiny_run, tmp_path):
  _, source, _, _ = tiny_run
  config = predictor.read_run_config(source)
  config.train.init_from, config.train.average_with = "", str(source)
  with pytest.raises(InputError, match="set config.train.init_from too"):
    warm_start.seed_from_config(config, tmp_path / "a")
  config.train.init_from, config.train.average_weight = str(source), 1.0
  with pytest.raises(InputError, match="average_weight=1.0: must be between 0 and 1"):
    warm_start.seed_from_config(config, tmp_path / "b")
  config.train.average_weight, config.train.average_with = 0.5, str(tmp_path / "nowhere")
  with pytest.raises(InputError, match="config.train.average_with=.*nowhere: no such model"):
    warm_start.seed_from_config(config, tmp_path / "c")
  _, first = predictor.load_variables(source)
  wider = jax.tree.map(lambda v: np.zeros(np.shape(v) + (1,)), first)
  with pytest.raises(InputError, match="do not fit init_from's model"):
    warm_start.average(first, [wider], 0.5)
  assert not any((tmp_path / d).exists() for d in "abc")


@pytest.mark.slow
def test_missing_init_from_is_one_line_before_any_record(tmp_path):
  code, _, err = run_main(tmp_path / "run", tmp_path / "data",
                          f"--config.train.init_from={tmp_path / 'nowhere'}")
  assert code == 1 and "Traceback" not in err
  assert err.strip().splitlines()[-1].endswith(
      f"config.train.init_from={tmp_path / 'nowhere'}: no such model (a training workdir or an "
      "exported model folder)")
  assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
