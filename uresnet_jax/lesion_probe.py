"""Probe what a model's call on expert lesions rests on (brightness, texture, surroundings).

`python -m uresnet_jax.lesion_probe --cohort=subjects.csv [--class=stroke] [--model=M]` or
`uresnet-lesion-probe`; the work is done in `uresnet_jax.experiments.lesion_probe`."""
from uresnet_jax.experiments.lesion_probe import run

if __name__ == "__main__":
  run()
