"""Scoring during training: Dice per class, summaries that skip absent classes, files on disk."""
import json

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
      {"subject": "a", "wmh_dice": 0.5, "stroke_dice": float("nan")},
      {"subject": "b", "wmh_dice": 0.7, "stroke_dice": 0.4},
  ]
  summary = scoring.summarize(rows)
  assert summary["wmh"] == {"dice_mean": pytest.approx(0.6), "dice_std": pytest.approx(0.1),
                            "n_subjects": 2}
  assert summary["stroke"]["n_subjects"] == 1
  assert summary["stroke"]["dice_mean"] == pytest.approx(0.4)


def test_write_results_makes_step_and_latest(tmp_path):
  rows = [{"subject": "a", "wmh_dice": 0.5, "stroke_dice": float("nan")}]
  summary = scoring.summarize(rows)
  for step in (10, 20):
    scoring.write_results(rows, summary, tmp_path, step)
  assert json.loads((tmp_path / "latest" / "summary.json").read_text())["step"] == 20
  assert (tmp_path / "10" / "subjects.csv").read_text().startswith("subject,wmh_dice")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "20", "latest"]
