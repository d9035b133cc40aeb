"""How a labelled cohort's lesions split between WMH and stroke by FLAIR brightness.

`python -m uresnet_jax.lesion_brightness --cohort=subjects.csv [--region=brain]` or
`uresnet-lesion-brightness`; the work is done in `uresnet_jax.experiments.lesion_brightness`."""
from uresnet_jax.experiments.lesion_brightness import run

if __name__ == "__main__":
  run()
