"""The bundled release model's twenty-fifth round: round 18 with MS-like ovoid lesions on the
ventricle wall, two epochs from round 18 on a new cohort.

Round 18 calls none of patient07's largest lesion, an ovoid against the ventricle wall; with the
CSF within 12 mm set to tissue it calls 38 % of it WMH (docs/sim_to_real.md, the lesion probe).
Its phantom places deep lesions at least 6 mm from the ventricles, and there the only bright
tissue against the ventricle is a periventricular cap or band, or the unlabelled bright ependymal
rim it learnt to ignore: 1-3 % of a phantom subject's WMH lies within 2 mm of dark CSF, 9-16 % of
the MS scans'. Here 30 % of deep lesions are centred 1-4 mm from the ventricles
(juxtaventricular_probability), ovoids that reach the wall. Everything else is round 18's
phantom, on a new cohort.

Run: python -m uresnet_jax.release --config=configs/release_round25.py
     --workdir=runs/release_round25 --output=runs/release_round25/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  release.own_cohort(config, "phantom_release25", arg)
  config.phantom.juxtaventricular_probability = 0.3
  return config
