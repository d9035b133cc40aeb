"""The bundled release model's second round: configs/release.py's model, trained further on the same
cohort with healthy-tissue patches on slices drawn uniformly.

Round 1 (configs/release.py, 10 epochs from random weights) left stroke on the top and bottom
slices of a loose skull strip, where an axial cut grazes the cortex: few voxels, so few patches.
This round starts from round 1's weights (config.train.init_from) and trains 2 epochs at round 1's
final learning rate, a share of its healthy-tissue patches centred on a slice drawn uniformly. The
model predicts with test-time flips, its stroke threshold calibrated with them.

Run: python -m uresnet_jax.main --config=configs/release.py --workdir=runs/release
     python -m uresnet_jax.main --config=configs/release_round2.py --workdir=runs/release_round2
     (round 1 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT)
"""
import ml_collections

from configs import release


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release.get_config(arg)
  config.train.init_from = "runs/release"
  config.sampling.healthy_rate = 0.75  # healthy patches per lesion patch ...
  config.sampling.bright_share = 0.4  # ... as many on bright tissue as round 1's (0.5 x 0.6),
  config.sampling.slice_share = 0.4  # ... as many on a slice drawn uniformly (top and bottom)
  config.train.epochs = 2  # about 12 min on 2 CPU cores
  config.train.decay_epoch = 2
  config.train.eval_every = 2
  config.train.learning_rate = 1e-4  # round 1's after its decay
  # Probabilities averaged over the 4 in-plane flips (as training flips its patches), and the
  # stroke threshold calibrated on them: of two runs of this round with different sampling seeds,
  # one called 1.3 mL of false stroke on a loose skull strip without it, 0.13 mL with it
  # (docs/sim_to_real.md). 4 network passes per slice; `predict --tta=false` turns it off.
  config.predict.tta = True
  return config
