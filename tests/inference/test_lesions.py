"""Lesion measures: exclusion, minimum size, the volume interval, the lesion table and locations."""
import numpy as np
import pytest

from uresnet_jax.common import labelling
from uresnet_jax.inference import config as predict_config, lesions


def _probabilities(labels: np.ndarray, confidence: np.ndarray) -> np.ndarray:
  """Probabilities whose argmax is `labels`, with p(label) = confidence, the rest on background."""
  p = np.zeros(labels.shape + (3,), np.float32)
  for k in range(3):
    p[..., k] = np.where(labels == k, confidence, 0.0)
  p[..., 0] += np.where(labels != 0, 1 - confidence, 0.0)
  p[..., 0] = np.where(labels == 0, 1.0, p[..., 0])
  return p


def test_postprocess_applies_exclusion_then_minimum_size():
  labels = np.zeros((10, 10, 3), np.uint8)
  labels[1:4, 1:4, 1] = 1  # 9 voxels
  labels[7, 7, 1] = 1  # 1 voxel
  labels[6:9, 1:3, 0:2] = 2  # 12 voxels
  exclusion = np.zeros(labels.shape, bool)
  exclusion[6:9, 1:3, 0] = True  # leaves 6 stroke voxels
  out = lesions.postprocess(labels, exclusion, min_voxels=7)
  assert (out == 1).sum() == 9  # the single voxel is gone
  assert (out == 2).sum() == 0  # 6 remaining voxels < 7
  assert not out[exclusion].any()
  np.testing.assert_array_equal(lesions.postprocess(labels, None, 0), labels)


def test_volume_interval_brackets_the_label_count():
  rng = np.random.default_rng(0)
  labels = np.zeros((12, 12, 4), np.uint8)
  labels[2:8, 2:8, 1:3] = 1
  confidence = rng.uniform(0.35, 1.0, labels.shape).astype(np.float32)
  p = _probabilities(labels, confidence)
  p[0:2, :, :, 1] = 0.32  # uncertain voxels: not WMH by argmax, inside the wide set
  p[0:2, :, :, 0] = 0.68
  low, high = lesions.volume_interval(p, labels, 1, None, 0, 0.3, 0.7)
  count = int((labels == 1).sum())
  assert low == int(((labels == 1) & (confidence >= 0.7)).sum())
  assert low < count < high == count + 2 * 12 * 4
  excluded = np.zeros(labels.shape, bool)
  excluded[0:2] = True
  assert lesions.volume_interval(p, labels, 1, excluded, 0, 0.3, 0.7)[1] == count


def test_lesion_rows_measure_each_component():
  labels = np.zeros((20, 20, 5), np.uint8)
  labels[2:4, 2:4, 1] = 1  # 4 voxels, WMH, confident
  labels[10:13, 10:13, 2:4] = 2  # 18 voxels, stroke, ambiguous with WMH
  p = _probabilities(labels, np.full(labels.shape, 0.9, np.float32))
  p[10:13, 10:13, 2:4] = [0.1, 0.42, 0.48]
  zones = np.zeros(labels.shape, np.uint8)
  zones[2, 2, 1] = lesions.ZONE_PERIVENTRICULAR
  affine = np.diag([0.5, 0.5, 4.0, 1.0])
  affine[:3, 3] = [-5, -5, -10]
  rows = lesions.lesion_rows("s1", labels, p, zones, affine, ambiguity_margin=0.2)
  assert [r["lesion_id"] for r in rows] == [1, 2]
  stroke, wmh = rows  # ordered by volume
  assert list(stroke) == list(lesions.LESION_COLUMNS)
  assert stroke["class"] == "stroke" and stroke["volume_ml"] == pytest.approx(18 * 1.0 / 1000)
  assert (stroke["centroid_x_mm"], stroke["centroid_z_mm"]) == pytest.approx((11 * 0.5 - 5, 2.5 * 4 - 10))
  assert stroke["ambiguous"] and stroke["mean_probability"] == pytest.approx(0.48)
  assert stroke["location"] == "deep"
  assert wmh["location"] == "periventricular" and not wmh["ambiguous"]
  assert wmh["mean_probability"] == pytest.approx(0.9)
  # A stroke below the threshold, set to background, is listed as a candidate of its own class.
  candidates = labels == 2
  demoted = np.where(candidates, 0, labels)
  rows = lesions.lesion_rows("s1", demoted, p, zones, affine, 0.2, stroke_candidates=candidates)
  assert [r["class"] for r in rows] == ["stroke_candidate", "wmh"]
  assert rows[0]["volume_ml"] == pytest.approx(18 / 1000)
  assert rows[0]["mean_probability"] == pytest.approx(0.48)


def test_location_zones_follow_the_documented_rule():
  options = predict_config.get_config()
  shape = (60, 60, 40)
  grid = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij"))
  mask = (grid ** 2).sum(0) < 28 ** 2  # a 1 mm ball, radius 28
  image = np.zeros(shape + (1,), np.float32)
  ventricle = (grid[0] ** 2 + grid[1] ** 2 < 16) & (np.abs(grid[2]) < 4)  # dark, at the centre
  image[ventricle, 0] = -2.0
  zones = lesions.location_zones(image, mask, (1.0, 1.0, 1.0), options)
  centre = tuple(s // 2 for s in shape)
  assert zones[centre] & lesions.ZONE_PERIVENTRICULAR
  assert not zones[30, 30 + 18, 20] & lesions.ZONE_PERIVENTRICULAR  # 14 mm from the ventricle
  assert zones[30, 30 + 25, 20] & lesions.ZONE_JUXTACORTICAL  # 3 mm below the surface
  assert not zones[30, 30 + 18, 20] & lesions.ZONE_JUXTACORTICAL
  assert zones[30, 30, 4] & lesions.ZONE_INFRATENTORIAL  # lowest quarter of the brain
  assert not zones[30, 30, 20] & lesions.ZONE_INFRATENTORIAL
  assert not zones[~mask].any()
  no_csf = lesions.location_zones(np.zeros_like(image), mask, (1.0, 1.0, 1.0), options)
  assert not (no_csf & lesions.ZONE_PERIVENTRICULAR).any()


def test_qc_slices_spread_over_the_brain_and_show_the_stroke():
  from uresnet_jax.evaluation import prediction_report
  labels = np.zeros((10, 10, 40), np.uint8)
  brain = np.zeros(labels.shape, bool)
  brain[:, :, 5:35] = True
  labels[2, 2, 20] = 1
  labels[3, 3, 33] = 2  # outside the central 80 %
  chosen = prediction_report.qc_slices(labels, brain, 4)
  assert len(chosen) == 4 and 20 in chosen and 33 in chosen
  empty = prediction_report.qc_slices(np.zeros_like(labels), brain, 4)  # no lesion: evenly spread
  assert len(empty) == 4 and 7 <= empty[0] and empty[-1] <= 32 and min(np.diff(empty)) >= 5


def test_unconfident_stroke_lesions_are_the_ones_below_the_threshold():
  labels = np.zeros((12, 12, 3), np.uint8)
  stroke_p = np.zeros(labels.shape, np.float32)
  labels[1:4, 1:4, 1] = 2
  stroke_p[1:4, 1:4, 1] = 0.9  # confident
  labels[7:10, 7:10, 1] = 2
  stroke_p[7:10, 7:10, 1] = 0.55  # hesitant
  labels[5, 0, 0] = 1  # WMH is never touched
  weak = lesions.unconfident_stroke(labels, stroke_p, 0.7)
  assert weak.sum() == 9 and weak[7:10, 7:10, 1].all() and not weak[1:4, 1:4, 1].any()
  assert not lesions.unconfident_stroke(labels, stroke_p, 0.0).any()  # 0: nothing dropped
  assert lesions.unconfident_stroke(labels, stroke_p, 0.95).sum() == 18


def test_volumes_by_location_add_up_each_class_and_leave_out_stroke_candidates():
  rows = [{"class": "wmh", "location": "periventricular", "volume_ml": 1.5},
          {"class": "wmh", "location": "periventricular", "volume_ml": 0.25},
          {"class": "wmh", "location": "infratentorial", "volume_ml": 0.5},
          {"class": "stroke", "location": "juxtacortical", "volume_ml": 3.0},
          {"class": labelling.STROKE_CANDIDATE, "location": "deep", "volume_ml": 9.0}]
  totals = lesions.by_location(rows)
  assert tuple(totals) == lesions.LOCATION_COLUMNS and len(totals) == 16
  assert totals["wmh_ml_periventricular"] == 1.75 and totals["wmh_lesions_periventricular"] == 2
  assert totals["wmh_ml_infratentorial"] == 0.5 and totals["wmh_lesions_infratentorial"] == 1
  assert totals["stroke_ml_juxtacortical"] == 3.0 and totals["stroke_lesions_juxtacortical"] == 1
  assert totals["stroke_ml_deep"] == 0.0 and totals["stroke_lesions_deep"] == 0
  assert sum(v for k, v in totals.items() if "_ml_" in k) == 5.25
