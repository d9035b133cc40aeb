"""Check a candidate bundled model on real validation scans and the phantom's held-out domains.

`python -m uresnet_jax.release_gate` or `uresnet-release-gate`;
the work is done in `uresnet_jax.experiments.release_gate`."""
from uresnet_jax.experiments.release_gate import run

if __name__ == "__main__":
  run()
