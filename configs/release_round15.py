"""The bundled release model's fifteenth round: round 14 with more recent deep infarcts, two
epochs from round 14 on a new cohort.

Round 14 calls none of s0009's recent infarct stroke; most of its bright part it calls WMH (77 % of
the voxels brighter than z 2). Its largest piece lies in the deep grey matter beside the lateral
ventricle. In round 14's phantom a recent striatocapsular infarct is rare: a stroke in 60 % of
subjects, a quarter of them striatocapsular, 55 % of those recent, about 8 % of subjects, while every
subject has WMH. Here striatocapsular infarcts are 40 % of strokes and 70 % of all infarcts are
recent, about 17 % of subjects with a recent deep infarct. Everything else is round 14's.
Measured 2026-12-07 (docs/sim_to_real.md, round 15): false stroke 0.00 / 0.00 / 0.00 mL; MS WMH
Dice 0.133 / 0.673 / 0.603 (mean 0.470); s0009 stroke Dice 0.099 (5 % called stroke, 39 % WMH);
phantom stroke Dice 0.38-0.73 on the domains (round 13: 0.00-0.33), false stroke median
0.00-0.21 mL; 14 of 16 checks (4 of 6 real, margin +1.39 against round 14's +1.06): the bundle
from 2026-12-07 until round 18.

Run: python -m uresnet_jax.release --config=configs/release_round15.py
     --workdir=runs/release_round15 --output=runs/release_round15/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 14 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round14


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round14.get_config(arg)
  config.train.init_from = "runs/release_round14"
  release.own_cohort(config, "phantom_release15", arg)
  p = config.phantom
  p.stroke_type_weights = (0.35, 0.4, 0.25)  # cortical wedge, striatocapsular, lacunar
  p.old_infarct_probability = 0.3
  config.train.epochs = 2
  config.train.decay_epoch = 1
  config.train.eval_every = 2
  return config
