"""The bundled release model's nineteenth round: round 18 trained three epochs more on its own
cohort, with twice as many patches centred on a stroke.

Round 18 (deep infarcts lobulated, unevenly bright, up to the corona radiata) doubles s0009's stroke
Dice over round 15 (0.205 vs 0.099), but its held-out phantom stroke Dice is 0.13 after two epochs:
it has not yet learnt the new infarcts, and s0009's largest piece, beside the ventricle body, it
still calls WMH. Here 30 % of stroke voxels centre a patch (15 % before: twice the stroke patches),
and training goes on three epochs from round 18 (1e-4 for two, then 1e-5) on round 18's cohort.
Measured 2026-12-07 (docs/sim_to_real.md, round 19): worse than round 18 on every real check: false
stroke 0.09 / 0.14 / 0.18 mL, MS WMH Dice 0.132 / 0.665 / 0.571 (mean 0.456), s0009 stroke Dice
0.121 (7 % called stroke); not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round19.py
     --workdir=runs/release_round19 --output=runs/release_round19/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  config.sampling.stroke_rate = 0.3  # share of stroke voxels that centre a patch: twice round 18's
  config.train.epochs = 3
  config.train.decay_epoch = 2
  config.train.eval_every = 3
  return config
