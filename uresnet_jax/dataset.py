"""Makes sure the configured cohort and its patch records exist, generating the phantom if asked."""
import pathlib

import ml_collections
from absl import logging

from uresnet_jax import patches_tfds, phantom
from uresnet_jax.errors import InputError


def ensure_cohort(config: ml_collections.ConfigDict) -> None:
  """Generates the phantom cohort at config.data.cohort when it is missing and that is allowed."""
  cohort = pathlib.Path(config.data.cohort)
  if cohort.exists() and not _unfinished_phantom(cohort):
    return
  if not config.data.generate_phantom_if_missing:
    raise InputError(f"{cohort}: cohort not found (no such file or folder)")
  logging.info("cohort %s not found: generating the phantom cohort (%d subjects)",
               cohort, config.data.phantom_subjects)
  print(f"Generating the phantom cohort ({config.data.phantom_subjects} subjects) in {cohort} ...")
  phantom.write_cohort(cohort, config.data.phantom_subjects, config.seed, config.phantom)


def _unfinished_phantom(cohort: pathlib.Path) -> bool:
  """A folder that an interrupted phantom generation left: subject folders but no manifest yet."""
  if not cohort.is_dir() or (cohort / phantom.MANIFEST).exists():
    return False
  return all(p.name.startswith(("sub-", ".tmp-")) for p in cohort.iterdir())


def ensure_records(config: ml_collections.ConfigDict):
  """The TFDS builder of the configured patch records, built first if missing."""
  ensure_cohort(config)
  return patches_tfds.build_patches(config)

