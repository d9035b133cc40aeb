"""The same seed gives the same cohort, the same patch records and the same parameters after N
training steps on CPU, bit for bit."""
import functools

import jax
import numpy as np

from configs import tiny
from uresnet_jax import phantom
from uresnet_jax.data import input_pipeline, patch_records
from uresnet_jax.model import losses, steps, uresnet
from uresnet_jax.phantom import config as phantom_config


def test_same_seed_same_phantom_subject():
  config = phantom_config.get_config()
  a, b = (phantom.generate_subject(1, seed=3, config=config) for _ in range(2))
  assert a.keys() == b.keys()
  for key in a:
    if isinstance(a[key], np.ndarray):
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:
      assert a[key] == b[key], key
  other = phantom.generate_subject(1, seed=4, config=config)
  assert not np.array_equal(a["flair"], other["flair"])


def _build(tiny_run, records_dir):
  config = tiny.get_config()
  config.data.cohort = str(tiny_run[0] / "cohort")
  config.data.records_dir = str(records_dir)
  return config, patch_records.build_patches(config)


def _params_after(config, builder, num_steps: int):
  source = input_pipeline.ConcatSource([builder.as_data_source(split="fold0")], ["fold0"])
  model = uresnet.create_model(config.model)
  state = steps.create_train_state(jax.random.key(config.seed), config, model, 10)
  step = jax.jit(functools.partial(steps.train_step, loss_fn=losses.cross_entropy, flips=True))
  batches = input_pipeline.iterate_batches(source, 0, num_steps, config.train.batch_size,
                                           config.seed, 0, 1)
  for host in batches:
    state, _ = step(state, host, jax.random.key(config.seed))
  return jax.tree.map(np.asarray, state.params)


def test_same_seed_same_records_and_same_parameters_after_three_steps(tiny_run, tmp_path):
  config, first = _build(tiny_run, tmp_path / "a")
  _, second = _build(tiny_run, tmp_path / "b")
  for split in ("fold0", "fold1"):
    a, b = first.as_data_source(split=split), second.as_data_source(split=split)
    assert len(a) == len(b) > 0
    for i in range(len(a)):
      for key in ("image", "label", "subject", "centre", "offset"):
        np.testing.assert_array_equal(a[i][key], b[i][key])
  params_a = _params_after(config, first, 3)
  params_b = _params_after(config, second, 3)
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
  config.seed = 1  # and the seed matters
  params_c = _params_after(config, first, 3)
  assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, params_a, params_c)))
