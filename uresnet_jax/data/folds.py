"""Stratified k-fold assignment: each fold holds ~1/k of the WMH-only and of the WMH+stroke subjects."""
from typing import Sequence

import numpy as np

from uresnet_jax.common.errors import InputError


def assign_folds(subjects: Sequence[str], has_stroke: Sequence[bool], num_folds: int,
                 seed: int) -> dict[str, int]:
  """Subject -> fold in [0, num_folds); deterministic for a seed whatever the input order."""
  subjects = [str(s) for s in subjects]
  if len(subjects) != len(has_stroke):
    raise ValueError(f"{len(subjects)} subjects but {len(has_stroke)} has_stroke flags")
  if len(set(subjects)) != len(subjects):
    duplicate = next(s for s in subjects if subjects.count(s) > 1)
    raise InputError(f"{duplicate}: subject listed twice")
  if num_folds < 1 or num_folds > max(len(subjects), 1):
    raise InputError(f"cannot split {len(subjects)} subjects into {num_folds} folds")
  stroke = dict(zip(subjects, (bool(h) for h in has_stroke)))
  rng = np.random.default_rng(seed)
  folds, start = {}, 0
  for stratum in (False, True):  # WMH-only, then WMH+stroke
    members = sorted(s for s in subjects if stroke[s] == stratum)
    for i, j in enumerate(rng.permutation(len(members))):
      folds[members[j]] = (start + i) % num_folds
    start = (start + len(members)) % num_folds  # the next stratum fills the smaller folds first
  return dict(sorted(folds.items()))
