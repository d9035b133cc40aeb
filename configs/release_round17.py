"""The bundled release model's seventeenth round: round 15's phantom, learned from random weights
by uResNet2 (two convolutions per residual block), 10 epochs.

Rounds 3-16 fine-tuned one width-16 uResNet (receptive field 70 x 70 voxels, 90 % of its input
gradient within 18 mm) through fourteen phantoms. A bright deep infarct beside the ventricle stays
WMH to it whatever the phantom shows (rounds 15-16: s0009 0-5 % called stroke), and it stops short of
the experts' WMH border. uResNet2 sees 116 x 116 voxels (docs/sim_to_real.md, round 3) at about
twice the compute: this round asks whether that context and depth, trained from scratch on the
final phantom rather than through the rounds, tells those apart. Round 15's cohort settings, its
own cohort; round 1's schedule (10 epochs, 1e-4 after epoch 8). About 2 h on 2 CPU cores; a
stopped run resumes from its last checkpoint. Predict costs about twice as much per scan.
Measured 2026-12-07 (docs/sim_to_real.md, round 17): held-out phantom fold WMH Dice 0.781 (the
best of any round), stroke 0.122; on the real scans MS WMH Dice 0.125 / 0.316 / 0.202 (mean 0.214,
round 18: 0.468), false stroke 0.03 / 0.02 / 0.02 mL, s0009 stroke Dice 0.099 (5 % called stroke;
its piece beside the ventricle body none): not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round17.py
     --workdir=runs/release_round17 --output=runs/release_round17/export
     --against=uresnet_jax/release_model --real=MS,STROKE
"""
import ml_collections

from configs import release, release_round15


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round15.get_config(arg)
  base = release.get_config(arg)
  config.train.init_from = ""
  release.own_cohort(config, "phantom_release17", arg)
  config.model.residual_convs = 2
  for key in ("epochs", "decay_epoch", "eval_every", "learning_rate"):
    config.train[key] = base.train[key]
  return config
