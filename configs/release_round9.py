"""The bundled release model's ninth round: round 8's model trained further on a phantom whose CSF
is drawn over the whole range, from a 3D FLAIR's black to a poorly suppressed 2D FLAIR's grey.

Round 8's black CSF took the false stroke out of the MS scans' ventricles (patient19 13.05 ->
0.31 mL; 0.00 / 0.31 / 0.01 mL, under the bundle's on every scan) and kept rounds 4-7's WMH gain
(mean MS WMH Dice 0.389), but the held-out csf_unsuppressed domain (CSF at 0.65-0.8 of white
matter) called 0.81 mL of false stroke and several domains 0.34 mL, where the bundle calls none:
trained on CSF at 0.02-0.4, grey CSF had become unfamiliar. This round draws CSF over rounds 1-7's
range and round 8's together (0.02-0.6), sulcal brightening and flow from none to rounds 1-7's
strongest (0-0.7, 0-0.6), round 8's phantom otherwise, 2 epochs from round 8's weights on a new
cohort (a wider draw of what the model has seen, not a new kind of patch).

Measured 2026-12-06 (docs/sim_to_real.md, round 9): mean MS WMH Dice 0.413, the best of any round;
false stroke 0.48 / 3.91 / 0.56 mL (patient19's ventricles again); s0009 stroke Dice 0.068 (5 %
called stroke, as the bundle); 2 of 6 real checks; not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round9.py --workdir=runs/release_round9
     --output=runs/release_round9/export --against=uresnet_jax/release_model --real=MS,STROKE
     (round 8 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release, release_round8


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round8.get_config(arg)
  config.train.init_from = "runs/release_round8"
  release.own_cohort(config, "phantom_release9", arg)
  p = config.phantom
  p.flair_csf = (0.02, 0.6)  # rounds 1-7's range and round 8's together
  p.sulcal_csf = (0.0, 0.7)
  p.csf_flow = (0.0, 0.6)
  config.train.epochs = 2
  config.train.decay_epoch = 1
  config.train.eval_every = 2
  return config
