"""A cohort's metric rows and their summary where an expert labels only some classes."""
import math

import numpy as np
import pytest

from uresnet_jax.evaluation import labelled_cohort

AFFINE = np.eye(4)


def _subject() -> tuple[np.ndarray, np.ndarray]:
  """8 expert stroke voxels, half found; the model also calls 6 voxels WMH."""
  truth = np.zeros((8, 8, 2), np.uint8)
  truth[0:4, 0:2, 0] = 2
  pred = np.zeros_like(truth)
  pred[0:2, 0:2, 0] = 2
  pred[5:8, 5:7, 1] = 1
  return truth, pred


def _by_class(rows: list[dict]) -> dict[str, dict]:
  return {r["class"]: r for r in rows}


def test_a_class_the_expert_does_not_label_is_nan_never_a_miss():
  truth, pred = _subject()
  full = _by_class(labelled_cohort.metric_rows("a", truth, pred, AFFINE, 1500.0))
  assert full["wmh"]["dice"] == 0.0 and full["wmh"]["expert_labelled"] == "yes"  # WMH called
  stroke_only = _by_class(labelled_cohort.metric_rows("a", truth, pred, AFFINE, 1500.0,
                                                      labelled=("stroke",)))
  wmh = stroke_only["wmh"]
  assert wmh["expert_labelled"] == "no"
  assert all(math.isnan(wmh[k]) for k in labelled_cohort.METRICS_COLUMNS[3:])
  np.testing.assert_equal(stroke_only["stroke"], full["stroke"])  # predicted WMH: no stroke error
  assert stroke_only["stroke"]["dice"] == pytest.approx(2 * 4 / 12)
  assert stroke_only["stroke"]["called_stroke_pct"] == 50.0
  assert stroke_only["stroke"]["called_none_pct"] == 50.0


def test_false_stroke_only_where_stroke_is_labelled():
  truth = np.zeros((6, 6, 2), np.uint8)
  truth[0:2, 0:2, 0] = 1
  pred = truth.copy()
  pred[4:6, 4:6, 1] = 2  # 4 voxels of stroke on a stroke-free brain
  full = _by_class(labelled_cohort.metric_rows("b", truth, pred, AFFINE, None))
  assert full["stroke"]["false_stroke_ml"] == pytest.approx(0.004)
  assert math.isnan(full["stroke"]["called_stroke_pct"])  # no expert stroke to break down
  assert full["wmh"]["called_wmh_pct"] == 100.0 and math.isnan(full["wmh"]["false_stroke_ml"])
  wmh_only = _by_class(labelled_cohort.metric_rows("b", truth, pred, AFFINE, None,
                                                   labelled=("wmh",)))
  assert wmh_only["stroke"]["expert_labelled"] == "no"
  assert math.isnan(wmh_only["stroke"]["false_stroke_ml"])
  assert math.isnan(wmh_only["stroke"]["dice"])
  np.testing.assert_equal(wmh_only["wmh"], full["wmh"])  # NaN == NaN here


def test_means_leave_out_the_subjects_that_do_not_label_a_class():
  truth, pred = _subject()
  both = np.where(pred == 1, 1, truth)  # a subject whose 6 WMH voxels the model finds
  rows = (labelled_cohort.metric_rows("a", truth, pred, AFFINE, None, labelled=("stroke",))
          + labelled_cohort.metric_rows("b", both, pred, AFFINE, None))
  summary = labelled_cohort.cohort_summary({"m": rows}, {}, ["a", "b"], use_icv=False)
  assert summary["not_labelled"] == {"wmh": ["a"], "stroke": []}
  wmh = summary["methods"]["m"]["wmh"]["metrics"]
  assert wmh["dice"] == {"mean": 1.0, "std": pytest.approx(float("nan"), nan_ok=True), "n": 1}
  assert wmh["called_wmh_pct"]["mean"] == 100.0 and wmh["called_wmh_pct"]["n"] == 1
  stroke = summary["methods"]["m"]["stroke"]["metrics"]
  assert stroke["dice"]["n"] == 2 and stroke["called_stroke_pct"]["mean"] == 50.0
  assert summary["methods"]["m"]["stroke"]["false_stroke"]["n"] == 0
