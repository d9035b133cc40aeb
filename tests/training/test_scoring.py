"""Scoring during training: Dice per class, summaries that skip absent classes."""
import numpy as np
import pytest

from uresnet_jax.evaluation import metrics
from uresnet_jax.training import scoring


def test_dice_counts_overlap_and_is_nan_when_both_empty():
  truth = np.zeros((4, 4, 2), np.uint8)
  pred = np.zeros_like(truth)
  truth[0, 0:2, 0] = 1  # 2 voxels
  pred[0, 1:4, 0] = 1  # 3 voxels, 1 shared
  assert metrics.dice(truth, pred, 1) == pytest.approx(2 * 1 / 5)
  assert np.isnan(metrics.dice(truth, pred, 2))
  pred[1, 1, 1] = 2
  assert metrics.dice(truth, pred, 2) == 0.0


def test_summary_skips_subjects_without_the_class():
  rows = [
      {"subject": "a", "wmh_dice": 0.5, "stroke_dice": float("nan"), "wmh_expert_ml": 1.0,
       "stroke_expert_ml": 0.0},
      {"subject": "b", "wmh_dice": 0.7, "stroke_dice": 0.4, "wmh_expert_ml": 2.0,
       "stroke_expert_ml": 3.0},
      {"subject": "c", "wmh_dice": 0.8, "stroke_dice": 0.0, "wmh_expert_ml": 2.0,
       "stroke_expert_ml": 0.0},  # stroke reported where the expert saw none
  ]
  summary = scoring.summarize(rows)
  assert summary["wmh"]["dice_mean"] == pytest.approx(2 / 3)
  assert summary["wmh"]["n_subjects"] == 3
  assert summary["stroke"]["n_subjects"] == 2
  assert summary["stroke"]["dice_mean"] == pytest.approx(0.2)
  assert summary["stroke"]["dice_mean_expert"] == pytest.approx(0.4)  # subject b alone
  assert summary["stroke"]["n_expert"] == 1


def test_false_stroke_counts_stroke_on_stroke_free_subjects_only():
  truth = np.zeros((6, 6, 4), np.uint8)
  predicted = truth.copy()
  predicted[0, 0, 0] = 2
  predicted[4:6, 4:6, 2:4] = 2  # a second, separate component of 8 voxels
  affine = np.diag([1.0, 1.0, 2.0, 1.0])
  free = metrics.false_stroke(truth, predicted, affine)
  assert free == {"false_stroke_ml": pytest.approx(9 * 2 / 1000), "false_stroke_components": 2}
  truth[3, 3, 3] = 2
  with_stroke = metrics.false_stroke(truth, predicted, affine)
  assert np.isnan(with_stroke["false_stroke_ml"])
  rows = [{"false_stroke_ml": 0.1, "false_stroke_components": 1},
          {"false_stroke_ml": 3.0, "false_stroke_components": 5},
          {"false_stroke_ml": float("nan"), "false_stroke_components": float("nan")},
          {"false_stroke_ml": 0.0, "false_stroke_components": 0}]
  summary = scoring.summarize_false_stroke(rows)
  assert summary == {"median_ml": pytest.approx(0.1), "max_ml": pytest.approx(3.0),
                     "median_components": 1.0, "n_subjects": 3}
