"""The bundled release model's twelfth round: round 9 again, with old infarcts' cavities as bright
as the sulcal CSF around them.

Rounds 7-9 traced the MS scans' false stroke to dark CSF, and rounds 10-11 showed that averaging
weights does not mend it. The phantom itself taught it: an old infarct's cavity took the subject's
plain CSF level while every other CSF space away from the ventricles was lifted by the sulcal
brightening (sulcal_csf) and the ventricles by flow, so the darkest CSF in a phantom brain was
always a cavity, and a real 3D FLAIR's uniformly black ventricles looked like one. A cavity is CSF:
here it takes the sulcal brightening wherever the sulci take it (phantom.cavity_like_sulci), so
darkness alone no longer tells a cavity from the CSF around it; its shape, place and gliotic rim
must. Everything else is round 9's (round 8's weights, CSF 0.02-0.6, sulcal brightening 0-0.7,
flow 0-0.6, 2 epochs), on a new cohort, so that the comparison with round 9 is this change alone.

Measured 2026-12-06 (docs/sim_to_real.md, round 12): false stroke 0.11 / 0.52 / 0.16 mL (round 9:
0.48 / 3.91 / 0.56); MS WMH Dice 0.072 / 0.637 / 0.534 (mean 0.415, the best of any round); s0009
stroke Dice 0.089 (5 % called stroke); phantom false stroke median 0.0-0.4 mL on 9 held-out
domains, loose_skull_strip 1.39 mL; 12 of 16 checks (3 of 6 real) against the bundle's 13; not
shipped.

Run: python -m uresnet_jax.release --config=configs/release_round12.py
     --workdir=runs/release_round12 --output=runs/release_round12/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 8 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round9


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round9.get_config(arg)
  release.own_cohort(config, "phantom_release12", arg)
  config.phantom.cavity_like_sulci = True
  return config
