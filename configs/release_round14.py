"""The bundled release model's fourteenth round: round 13's phantom with WMH labelled as generously
as real raters draw it, trained three epochs from round 13 on a new cohort.

On the 3 MS scans of the real validation set round 13 calls about half the expert's WMH volume
(25.9 of 49.8 mL, 4.2 of 8.2 mL, 0.3 of 1.3 mL) and little outside it: 62-67 % of the expert's
voxels it misses on patient19 and patient26 lie within 2 mm of WMH it does call, and the expert's
border runs at z 1.3 over the brain where the model stops near z 1.5. The phantom taught that: its
rater outlined each lesion's core, leaving a bright rim 0.3-1.0 mm wide unlabelled
(label_shrink_mm; for a 1.5 mm focus the label kept a third of what is seen) and a halo up to 0.8
of the lesion's contrast unlabelled around periventricular WMH (halo_gain). Here the rim is
0-0.2 mm and the halo at most 0.4 of the contrast (the paper cohort's range), so what is seen
bright is labelled. Everything else is round 13's phantom (round 12's), on a new cohort; three
epochs (1e-4 for two, then 1e-5) because every WMH border moves.
Measured 2026-12-06 (docs/sim_to_real.md, round 14): false stroke 0.00 / 0.00 / 0.00 mL; MS WMH
Dice 0.138 / 0.691 / 0.599 (mean 0.476, the first round to pass 0.45); s0009 stroke Dice 0.000
(0 % called stroke, 41 % WMH); phantom false stroke median 0.00-0.01 mL on all 10 domains; 14 of
16 checks (4 of 6 real), beating round 13; beaten by round 15, which shipped.

Run: python -m uresnet_jax.release --config=configs/release_round14.py
     --workdir=runs/release_round14 --output=runs/release_round14/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 13 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round13


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round13.get_config(arg)
  config.train.init_from = "runs/release_round13"
  release.own_cohort(config, "phantom_release14", arg)
  p = config.phantom
  p.label_shrink_mm = (0.0, 0.2)
  p.halo_gain = (0.0, 0.4)
  config.train.epochs = 3
  config.train.decay_epoch = 2
  config.train.eval_every = 3
  return config
