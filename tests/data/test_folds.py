"""Tests for folds.assign_folds: stratified, deterministic, independent of input order."""
import collections

import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.data.folds import assign_folds

SUBJECTS = [f"sub-{i:03d}" for i in range(167)]
HAS_STROKE = [i % 167 < 59 for i in range(167)]  # the paper: 59 of 167 with strokes


def _counts(folds, subjects, has_stroke):
  return collections.Counter((stroke, folds[s]) for s, stroke in zip(subjects, has_stroke))


@pytest.mark.parametrize("num_folds", [2, 3, 5])
def test_each_fold_holds_its_share_of_each_stratum(num_folds):
  folds = assign_folds(SUBJECTS, HAS_STROKE, num_folds, seed=0)
  assert set(folds) == set(SUBJECTS) and set(folds.values()) == set(range(num_folds))
  counts = _counts(folds, SUBJECTS, HAS_STROKE)
  for stratum, size in [(False, 108), (True, 59)]:
    per_fold = [counts[(stratum, f)] for f in range(num_folds)]
    assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == size
  totals = collections.Counter(folds.values()).values()
  assert max(totals) - min(totals) <= 1


def test_paper_two_folds():
  counts = _counts(assign_folds(SUBJECTS, HAS_STROKE, 2, seed=3), SUBJECTS, HAS_STROKE)
  assert sorted([counts[(False, 0)], counts[(False, 1)]]) == [54, 54]
  assert sorted([counts[(True, 0)], counts[(True, 1)]]) == [29, 30]


def test_deterministic_and_order_free():
  folds = assign_folds(SUBJECTS, HAS_STROKE, 2, seed=7)
  order = sorted(range(len(SUBJECTS)), key=lambda i: (i * 37) % 167)
  shuffled = assign_folds([SUBJECTS[i] for i in order], [HAS_STROKE[i] for i in order], 2, seed=7)
  assert shuffled == folds == assign_folds(SUBJECTS, HAS_STROKE, 2, seed=7)
  assert assign_folds(SUBJECTS, HAS_STROKE, 2, seed=8) != folds


def test_bad_input():
  with pytest.raises(InputError, match="sub-000: subject listed twice"):
    assign_folds(["sub-000", "sub-000"], [False, True], 2, seed=0)
  with pytest.raises(InputError, match="cannot split 1 subjects into 2 folds"):
    assign_folds(["a"], [False], 2, seed=0)
  with pytest.raises(ValueError):
    assign_folds(["a", "b"], [False], 2, seed=0)
