"""The bundled release model's eleventh round: round 10's average of round 8 and the bundle, with
its batch-norm statistics measured again on training patches (one epoch at learning rate 0).

Round 10 averaged every variable, the batch-norm running means and variances too; but the average
of two models' statistics is not the statistics of the averaged weights' activations, and the
averaged model called more false stroke on the MS scans than either model it came from (0.70 /
1.33 / 0.30 mL; round 8 0.00 / 0.31 / 0.01, the bundle 0.12 / 0.37 / 0.02), with its s0009 stroke
Dice the best of any round (0.099, 10 % of the infarct called stroke). Stochastic weight averaging
(Izmailov et al., UAI 2018) recomputes them after averaging; here one epoch of training patches at
learning rate 0 does that with the training loop itself: Adam's steps are all zero, so the weights
stay the average and only the running statistics (momentum 0.9) follow the new activations.

Measured 2026-12-06 (docs/sim_to_real.md, rounds 10 and 11): the phantom liked it (held-out fold
WMH Dice 0.615 -> 0.651, stroke Dice 0.122 -> 0.182) and the real scans did not: false stroke 4.18
/ 15.86 / 2.83 mL, MS WMH Dice 0.070 / 0.594 / 0.499 (mean 0.388), s0009 stroke Dice 0.043 (12 %
called stroke); the gate was stopped after the real scans. Not shipped.

Run: python -m uresnet_jax.release --config=configs/release_round11.py
     --workdir=runs/release_round11 --output=runs/release_round11/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 8 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release_round10


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round10.get_config(arg)
  config.train.epochs = 1
  config.train.decay_epoch = 1
  config.train.learning_rate = 0.0  # the weights stay round 10's; batch statistics are re-measured
  return config
