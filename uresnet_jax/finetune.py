"""Adapt a pretrained model to a few of your labelled scans, check it on held-out ones, export it.

`python -m uresnet_jax.finetune` or `uresnet-finetune`;
the work is done in `uresnet_jax.experiments.finetune`."""
from uresnet_jax.experiments.finetune import run

if __name__ == "__main__":
  run()
