"""The paper's setting on a Colab TPU (v2-8 / v3-8: 8 cores), run by notebooks/colab_tpu.ipynb.

configs/default.py as is (40-subject phantom cohort, 2-fold CV, 30 epochs of Adam, global batch of
128 split evenly across the cores: 16 per core on 8), with bigger whole-volume inference batches (64
slices, 8 per core). The global batch must stay divisible by the device count.

Run: python -m uresnet_jax.main --config=configs/tpu.py --workdir=runs/colab
"""
import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.data.cohort = "data/phantom"
  config.data.phantom_subjects = 40
  config.train.batch_size = 128  # global: 16 per core on a v2-8 / v3-8
  config.train.epochs = 30
  config.predict.batch_slices = 64  # whole-volume inference: 8 slices per core
  return config
