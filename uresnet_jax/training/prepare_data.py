"""Makes sure the configured cohort and its patch records exist, generating the phantom if asked."""
import pathlib

import ml_collections
from absl import logging

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import patch_records


def ensure_cohort(config: ml_collections.ConfigDict) -> None:
  """Generates the phantom cohort at config.data.cohort when it is missing and that is allowed."""
  cohort = pathlib.Path(config.data.cohort)
  if not _to_generate(cohort):
    return
  if not config.data.generate_phantom_if_missing:
    raise InputError(f"{cohort}: cohort not found (no such file or folder)")
  logging.info("cohort %s not found: generating the phantom cohort (%d subjects)",
               cohort, config.data.phantom_subjects)
  print(f"Generating the phantom cohort ({config.data.phantom_subjects} subjects) in {cohort} ...")
  phantom.write_cohort(cohort, config.data.phantom_subjects, config.seed, config.phantom)


def cohort_missing(config: ml_collections.ConfigDict) -> bool:
  """Whether ensure_cohort would generate the phantom."""
  return config.data.generate_phantom_if_missing and _to_generate(pathlib.Path(config.data.cohort))


def generate_share(config: ml_collections.ConfigDict, index: int, count: int) -> None:
  """Process `index` of `count` generates its share of the missing phantom cohort (the processes
  share the folder); ensure_cohort on one process afterwards completes it with the manifest."""
  print(f"Generating phantom subjects {index}, {index + count}, ... of "
        f"{config.data.phantom_subjects} in {config.data.cohort} (process {index} of {count})")
  phantom.write_share(config.data.cohort, config.data.phantom_subjects, config.seed,
                      config.phantom, index, count)


def _to_generate(cohort: pathlib.Path) -> bool:
  """No cohort there yet, or one an interrupted phantom generation left."""
  return not cohort.exists() or _unfinished_phantom(cohort)


def _unfinished_phantom(cohort: pathlib.Path) -> bool:
  """A folder that an interrupted phantom generation left: subject folders but no manifest yet."""
  if not cohort.is_dir() or (cohort / phantom.MANIFEST).exists():
    return False
  return all(p.name.startswith(("sub-", ".tmp-")) for p in cohort.iterdir())


def ensure_records(config: ml_collections.ConfigDict):
  """The TFDS builder of the configured patch records, built first if missing."""
  ensure_cohort(config)
  return patch_records.build_patches(config)

