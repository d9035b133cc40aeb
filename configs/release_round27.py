"""The bundled release model's twenty-seventh round: a uniform soup of round 18 and the two rounds
fine-tuned from it in one session (25 and 26), trained no further.

Rounds 19-26 each fine-tune round 18 two epochs on a new phantom, and s0009's stroke Dice moves
from 0.000 to 0.178 between them (round 18: 0.205) while the MS scans' WMH Dice stays within 0.44
to 0.47: one score on one infarct is as much the draw of a cohort and a run as the phantom's
change. Models fine-tuned from one model lie in one basin, and their average (a model soup,
Wortsman et al., ICML 2022) is often better on shifted data than each of them, at no cost in
predict time; rounds 10 and 11 averaged two models five rounds apart, which did not share one.
Here round 18, round 25 and round 26 count equally (average_weight 2/3 split between the two
averaged with round 18: the rounds on disk in this session, chosen before the soup was scored).
The stroke threshold is calibrated, and the gate domains drawn, on round 26's phantom; nothing
trains (epochs 0).

Run: python -m uresnet_jax.release --config=configs/release_round27.py
     --workdir=runs/release_round27 --output=runs/release_round27/export
     --against=uresnet_jax/release_model --real=MS,STROKE
     (round 18 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release_round26


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round26.get_config(arg)
  config.train.init_from = "runs/release_round18"
  config.train.average_with = "runs/release_round25/export,runs/release_round26/export"
  config.train.average_weight = 2 / 3
  config.train.epochs = 0
  config.train.decay_epoch = 0
  config.train.eval_every = 1
  return config
