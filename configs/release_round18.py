"""The bundled release model's eighteenth round: round 15 with deep infarcts shaped and lit as
s0009's is, two epochs from round 15 on a new cohort.

Round 15 calls 5 % of s0009's infarct stroke. Its largest piece (1.6 mL, 4 slices of 5 mm) lies in
the corona radiata beside the body of the lateral ventricle, with a lobulated outline and
brightness from z 0.1 to 3.5 over the brain (median 1.9); round 15 calls 54 % of it WMH and none
stroke. Round 15's deep infarcts are smooth ellipsoids of even brightness, centred at most 12 mm
above the AC-PC plane: a shape no WMH has, and a place no periventricular WMH is. Here their centres
reach 28 mm (the corona radiata beside the ventricle body, where WMH caps and bands lie), their
outline is lobulated (infarct_irregularity) and their brightness uneven (infarct_heterogeneity), so
that the model must tell a deep infarct from WMH by more than a smooth outline. Everything else is
round 15's phantom, on a new cohort.
Measured 2026-12-07 (docs/sim_to_real.md, round 18): false stroke 0.003 / 0.005 / 0.030 mL; MS WMH
Dice 0.125 / 0.683 / 0.595 (mean 0.468); s0009 stroke Dice 0.205 (12 % called stroke, 37 % WMH;
its piece beside the ventricle body still none); phantom stroke Dice 0.44-0.82 on the domains
(round 15: 0.35-0.68); 14 of 16 checks (4 of 6 real, margin +1.76 against round 15's +1.39): the
bundle since 2026-12-07.

Run: python -m uresnet_jax.release --config=configs/release_round18.py
     --workdir=runs/release_round18 --output=runs/release_round18/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 15 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round15


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round15.get_config(arg)
  config.train.init_from = "runs/release_round15"
  release.own_cohort(config, "phantom_release18", arg)
  p = config.phantom
  p.striatocapsular_centre_z_mm = (0.0, 28.0)
  p.infarct_irregularity = (0.1, 0.4)
  p.infarct_heterogeneity = (0.05, 0.25)
  return config
