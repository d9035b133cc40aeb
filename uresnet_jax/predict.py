"""Segment your scans (no expert labels needed): label maps on each scan's own grid, volumes,
lesions, QC.

`python -m uresnet_jax.predict` or `uresnet-predict`;
the work is done in `uresnet_jax.inference.segment`."""
from uresnet_jax.inference.segment import run

if __name__ == "__main__":
  run()
