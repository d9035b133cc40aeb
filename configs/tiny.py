"""A few small phantom subjects, a narrow net and short epochs: the tests' end-to-end run.

Run: python -m uresnet_jax.main --config=configs/tiny.py --workdir=/tmp/tiny
"""
import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.data.cohort = "data/phantom_tiny"
  config.data.records_dir = "data/tfds_tiny"
  config.data.phantom_subjects = 4
  config.sampling.patch_size = 32
  config.sampling.max_shift = 16
  config.sampling.wmh_rate = 0.005
  config.sampling.stroke_rate = 0.02
  config.model.base_width = 4
  config.train.batch_size = 8
  config.train.epochs = 2
  config.train.decay_epoch = 1
  config.train.eval_every = 1
  config.predict.batch_slices = 8
  return config
