"""Build a cohort's lesion-centred patch records (TFDS, array_record), one split per fold.

`python -m uresnet_jax.patches_tfds` or `uresnet-patches`;
the work is done in `uresnet_jax.data.patch_records`."""
from uresnet_jax.data.patch_records import run

if __name__ == "__main__":
  run()
