"""Export a trained run as a self-contained model folder (jax.export module, weights, manifest).

`python -m uresnet_jax.export` or `uresnet-export`;
the work is done in `uresnet_jax.inference.export`."""
from uresnet_jax.inference.export import run

if __name__ == "__main__":
  run()
