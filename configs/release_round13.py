"""The bundled release model's thirteenth round: round 12 trained two more epochs on its own
cohort, with the same schedule (1e-4, then 1e-5).

Round 12's cavities as bright as the sulci took patient19's false stroke back out (3.91 -> 0.52 mL)
with the best MS WMH Dice of any round (mean 0.415) and a little more of s0009's infarct (Dice
0.089), but on the phantom's held-out domains it called 0.1-0.4 mL of false stroke (median) where
the bundle calls none, most of it on sulcal CSF 5-6 mm inside the brain edge: with cavities no
darker than the sulci, only their gliotic rim and shape tell them apart, and two epochs from round
8 may be too few to learn that. Everything else is round 12's.

Run: python -m uresnet_jax.release --config=configs/release_round13.py
     --workdir=runs/release_round13 --output=runs/release_round13/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 12 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release_round12


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round12.get_config(arg)
  config.train.init_from = "runs/release_round12"
  return config
