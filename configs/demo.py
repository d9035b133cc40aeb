"""The CPU demo run by `bash run.sh`: the paper's method, scaled to minutes on a laptop.

Differences from configs/default.py, all for time: a 24-subject phantom cohort in which half the
subjects have strokes (so both folds hold several), fewer patches per lesion voxel (2 % of WMH,
50 % of stroke voxels), half the base width, mini-batches of 32 and a short schedule. Sampling (lesion-centred, shifted by up to half a patch), model and loss are the
paper's.

Run: python -m uresnet_jax.main --config=configs/demo.py --workdir=runs/demo
"""
import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.data.cohort = "data/phantom_demo"
  config.data.phantom_subjects = 24
  config.phantom.stroke_probability = 0.5
  config.sampling.wmh_rate = 0.02
  config.sampling.stroke_rate = 0.5
  config.model.base_width = 16
  config.train.batch_size = 32
  config.train.learning_rate = 1e-3
  config.train.epochs = 5
  config.train.decay_epoch = 4
  config.train.eval_every = 5
  return config
