"""Rerun the paper's experiments (Table 2, Tables A.5 and B.6, Figure 3) from one config.

`python -m uresnet_jax.reproduce` or `uresnet-reproduce`;
the work is done in `uresnet_jax.experiments.reproduce`."""
from uresnet_jax.experiments.reproduce import run

if __name__ == "__main__":
  run()
