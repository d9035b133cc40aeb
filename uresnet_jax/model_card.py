"""Write the model card of an exported model from its training run.

`python -m uresnet_jax.model_card` or `uresnet-model-card`;
the work is done in `uresnet_jax.experiments.model_card`."""
from uresnet_jax.experiments.model_card import run

if __name__ == "__main__":
  run()
