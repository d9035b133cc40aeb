"""The bundled release model's twenty-second round: round 18 with crisp deep anatomy, two epochs
from round 18 on a new cohort.

Round 18 calls 12 % of s0009's infarct stroke and none of its largest piece, an ovoid in the
posterior limb of the internal capsule between the lentiform nucleus and the thalamus, crisp grey
matter on either side of it on the real scan. The phantom draws its anatomy from the MNI152
average, whose putamen and thalamus are 60-65 % grey matter blended smoothly into the capsule: a
deep infarct there sits in a featureless blur where periventricular WMH also lies. Here each
subject's grey/white split is sharpened by a share drawn from 0 to 1 (tissue_sharpening), so the
deep nuclei, the capsule between them and the cortical ribbon have edges as on real FLAIR.
Everything else is round 18's phantom, on a new cohort.
Measured 2026-12-07 (docs/sim_to_real.md, round 22): false stroke 0.00 mL on each MS scan; MS WMH
Dice 0.142 / 0.661 / 0.569 (mean 0.457); s0009 stroke Dice 0.000 (none of the infarct called
stroke, 40 % WMH): worse than round 18 on the real stroke; stopped before the phantom domains, not
shipped.

Run: python -m uresnet_jax.release --config=configs/release_round22.py
     --workdir=runs/release_round22 --output=runs/release_round22/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  release.own_cohort(config, "phantom_release22", arg)
  config.phantom.tissue_sharpening = (0.0, 1.0)
  return config
