"""Time what training and prediction run on this machine, as one JSON object.

`python -m uresnet_jax.bench` or `uresnet-bench`;
the work is done in `uresnet_jax.experiments.bench`."""
from uresnet_jax.experiments.bench import run

if __name__ == "__main__":
  run()
