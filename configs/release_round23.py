"""The bundled release model's twenty-third round: round 18 with infarcts no brighter than WMH on
average, two epochs from round 18 on a new cohort.

Round 18 calls none of s0009's largest infarct piece stroke (median z 1.9 over the brain; stroke
probability 0.07, WMH 0.49). Probing it on the real scan: filling the ventricle beside the piece
with tissue, or every voxel farther than 20 mm from it, leaves its probabilities unchanged, while
lifting the piece by 2 z makes 66 % of it stroke. The model tells a deep infarct from WMH by
brightness: round 18's phantom draws a recent infarct (or an old one's rim) at 0.8-1.6 x the
subject's WMH intensity, so the brighter lesion is the infarct 2 times in 3. Here the ratio is
0.6-1.3, even odds either way, so that brightness no longer tells the classes apart and the
infarct's shape, texture and place must. Everything else is round 18's phantom, on a new cohort.

Measured 2026-12-07 (docs/sim_to_real.md, round 23): false stroke 0.00 / 0.23 / 0.00 mL; MS WMH
Dice 0.125 / 0.660 / 0.593 (mean 0.459); s0009 stroke Dice 0.127 (7 % called stroke, 35 % WMH), and
the probe reads as on round 18 (lifted by 2 z, 78 % of the infarct is stroke): worse than round 18
on the real stroke; stopped before the phantom domains, not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round23.py
     --workdir=runs/release_round23 --output=runs/release_round23/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  release.own_cohort(config, "phantom_release23", arg)
  config.phantom.infarct_intensity = (0.6, 1.3)
  return config
