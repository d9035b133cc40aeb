"""The bundled release model's twenty-sixth round: round 18 with lesions in the brainstem and the
cerebellar white matter, two epochs from round 18 on a new cohort.

Round 18 calls none of patient07's largest lesion (210 voxels in the left midbrain, MNI z -11;
docs/sim_to_real.md, the lesion probe), and 11 % of that scan's expert WMH lies below MNI z -15
(7 of its 37 lesions). The phantom never drew a lesion there: its deep lesions are centred where
the template's white matter is above 0.65 and above z -15, which leaves out the brainstem (the
template calls it part grey) and the cerebellum, although infratentorial lesions are common in MS
and pontine hyperintensities in small vessel disease. Here 15 % of deep lesions are centred in the
brainstem or the cerebellar white matter (infratentorial_probability). Everything else is round
18's phantom, on a new cohort.

Run: python -m uresnet_jax.release --config=configs/release_round26.py
     --workdir=runs/release_round26 --output=runs/release_round26/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  release.own_cohort(config, "phantom_release26", arg)
  config.phantom.infratentorial_probability = 0.15
  return config
