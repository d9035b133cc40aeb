"""The bundled release model's twentieth round: round 18 with young brains too, two epochs from
round 18 on a new cohort.

Round 18 still calls none of s0009's largest infarct piece stroke (1.6 mL in the corona radiata
beside the body of the lateral ventricle; 56 % of it WMH). In s0009's brain the ventricles are
small and there is little WMH anywhere else; every phantom brain so far is 50-90 years old, with
ventricles enlarged by 2-9 mm and at least 0.1 % of the intracranial volume in WMH, most of it in
caps and bands around the ventricles. A bright, lobulated blob beside a ventricle is, in that
phantom, almost always periventricular WMH. Here ages run from 25 years, ventricles from no
enlargement, and the WMH load from 0.02 % of the intracranial volume, so that deep infarcts also
appear in brains where nothing else near the ventricle is bright. Everything else is round 18's
phantom, on a new cohort.
Measured 2026-12-07 (docs/sim_to_real.md, round 20): false stroke 0.03 / 0.11 / 0.07 mL; MS WMH
Dice 0.134 / 0.626 / 0.569 (mean 0.443); s0009 stroke Dice 0.163 (9.4 % called stroke; its piece
beside the ventricle body still none): worse than round 18 on the real checks, stopped before the
phantom domains, not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round20.py
     --workdir=runs/release_round20 --output=runs/release_round20/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round18


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round18.get_config(arg)
  config.train.init_from = "runs/release_round18"
  release.own_cohort(config, "phantom_release20", arg)
  p = config.phantom
  p.age_years = (25.0, 90.0)
  p.ventricle_enlargement_mm = (0.0, 7.0)
  p.wmh_model.clip_pct = (0.02, 7.5)
  return config
