"""Build a bundled release model in one command: train, calibrate, export, gate, model card.

`python -m uresnet_jax.release` or `uresnet-release`;
the work is done in `uresnet_jax.experiments.release`."""
from uresnet_jax.experiments.release import run

if __name__ == "__main__":
  run()
