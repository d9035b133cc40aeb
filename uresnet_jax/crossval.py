"""Cross-validation: one model per fold, every subject scored by the model that did not see it.

`python -m uresnet_jax.crossval` or `uresnet-crossval`;
the work is done in `uresnet_jax.experiments.crossval`."""
from uresnet_jax.experiments.crossval import run

if __name__ == "__main__":
  run()
