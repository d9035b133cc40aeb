"""The paper's experiments as one grid, run by `python -m uresnet_jax.reproduce`.

Run: python -m uresnet_jax.reproduce --config=configs/reproduce.py:cpu --workdir=runs/reproduce_cpu
The argument picks the base: `full` (the default: configs/default.py, the paper's settings, for a GPU
or TPU), `cpu` (configs/demo.py shortened so that the whole grid takes under an hour on 2 CPU cores)
or `tiny` (the tests). Every cell of the grid is a cross-validated run of the base with one change:
  - Table 2: `uresnet` against the classical baseline (both pooled over the folds);
  - Table A.5: the `architectures` (uresnet, uresnet2, noc), paired Wilcoxon tests against uresnet;
  - Table B.6: the input `channels` variants (f, f_t1, f_wm, f_t1_wm), tests against f;
  - Figure 3: one run per entry of `losses`, trained on fold `loss_fold`'s complement only, scored
    every epoch on its training and held-out subjects.
Cells equal to the base (uresnet, f, the base's own loss) are trained once and shared.
"""
import ml_collections

from configs import default, demo, tiny

BASES = {"full": default, "cpu": demo, "tiny": tiny}


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  if arg not in BASES:
    raise ValueError(f"unknown reproduce base {arg!r}; choose from {', '.join(BASES)}")
  config = BASES[arg].get_config()
  if arg == "cpu":  # 15 trainings in under an hour: fewer WMH patches and epochs than the demo,
    # and the paper's 80 % of stroke voxels (with 30 %, 4 epochs of cross-entropy learnt no stroke)
    config.sampling.wmh_rate = 0.006
    config.sampling.stroke_rate = 0.8
    config.train.epochs = 4
    config.train.decay_epoch = 3
  config.reproduce = ml_collections.ConfigDict()
  config.reproduce.architectures = ("uresnet", "uresnet2", "noc")  # Table A.5 (configs/variants.py)
  config.reproduce.channels = ("f", "f_t1", "f_wm", "f_t1_wm")  # Table B.6 (configs/variants.py)
  config.reproduce.losses = ("cross_entropy", "weighted_cross_entropy",
                             "bootstrapped_cross_entropy", "pseudo_dice")  # Figure 3
  config.reproduce.loss_fold = 0  # the held-out fold of Figure 3's runs
  # Figure 3's runs are scored on their training and held-out subjects every this many epochs
  # (the tables' runs only at the end); the paper's 30 epochs are scored every 3rd.
  config.reproduce.curve_every = 3 if arg == "full" else 1
  # For weighted_cross_entropy (the paper gives no weights): the rare lesion classes up-weighted.
  config.train.class_weights = (1.0, 5.0, 10.0)
  return config
