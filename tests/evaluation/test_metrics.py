"""Per-subject metrics of the MICCAI 2017 WMH challenge on hand-built volumes."""
import numpy as np
import pytest
from scipy.spatial import distance

from uresnet_jax.evaluation import metrics


def _rotation_z(deg: float) -> np.ndarray:
  a = np.deg2rad(deg)
  return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _affine(zooms, rotation=np.eye(3), shift=(0, 0, 0)) -> np.ndarray:
  affine = np.eye(4)
  affine[:3, :3] = rotation @ np.diag(zooms)
  affine[:3, 3] = shift
  return affine


def test_boundary_is_the_inplane_ring_and_the_image_border_is_not_boundary():
  mask = np.zeros((7, 7, 2), bool)
  mask[1:6, 1:6, :] = True  # a 5x5 square on both slices: each slice eroded on its own
  ring = metrics.boundary(mask)
  assert ring.sum() == 2 * 16  # 25 - 9 interior voxels per slice
  assert not ring[2:5, 2:5].any()
  assert not metrics.boundary(np.ones((4, 4, 3), bool)).any()  # outside the image is foreground


def test_hd95_of_one_voxel_lesions_in_anisotropic_and_oblique_mm():
  truth = np.zeros((5, 8, 3), bool)
  pred = np.zeros_like(truth)
  truth[2, 2, 0] = True
  pred[2, 5, 0] = True  # 3 voxels along y
  assert metrics.hd95(truth, pred, _affine((0.5, 2.0, 4.0))) == pytest.approx(6.0)
  pred[:] = False
  pred[2, 2, 2] = True  # 2 slices along z
  oblique = _affine((0.5, 2.0, 4.0), _rotation_z(30), shift=(10, -5, 3))
  assert metrics.hd95(truth, pred, oblique) == pytest.approx(8.0)
  pred[:] = False
  pred[3, 3, 0] = True  # one step in x and y, rotated: still sqrt(0.5^2 + 2^2)
  assert metrics.hd95(truth, pred, oblique) == pytest.approx(np.hypot(0.5, 2.0))


def test_hd95_takes_the_interpolated_95th_percentile_of_the_larger_direction():
  truth = np.zeros((1, 41, 1), bool)
  truth[0, 0, 0] = True
  pred = np.zeros_like(truth)
  pred[0, ::2, 0] = True  # 21 isolated voxels at 0, 2, ..., 40 voxels from the truth
  # truth->prediction: 0; prediction->truth: 95th percentile of 0,2,...,40 = 38 (index 19 of 20)
  assert metrics.hd95(truth, pred, _affine((1.0, 1.0, 3.0))) == pytest.approx(38.0)
  assert metrics.hd95(pred, truth, _affine((1.0, 0.5, 3.0))) == pytest.approx(19.0)


def test_hd95_matches_brute_force_distances_on_random_masks():
  rng = np.random.default_rng(0)
  truth = rng.uniform(size=(12, 10, 4)) < 0.2
  pred = rng.uniform(size=(12, 10, 4)) < 0.2
  affine = _affine((0.9, 1.1, 5.0), _rotation_z(17), shift=(3, 2, 1))
  t = metrics.world_coordinates(metrics.boundary(truth), affine)
  p = metrics.world_coordinates(metrics.boundary(pred), affine)
  d = distance.cdist(t, p)
  expected = max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))
  assert metrics.hd95(truth, pred, affine) == pytest.approx(expected)


def test_hd95_is_nan_when_either_side_is_empty():
  truth = np.zeros((3, 3, 1), bool)
  pred = truth.copy()
  pred[1, 1, 0] = True
  assert np.isnan(metrics.hd95(truth, pred, np.eye(4)))
  assert np.isnan(metrics.hd95(pred, truth, np.eye(4)))


def test_avd_is_relative_to_the_truth_and_nan_without_truth():
  truth = np.zeros((4, 4, 1), bool)
  pred = truth.copy()
  truth[0, :, 0] = True  # 4 voxels
  pred[1, :3, 0] = True  # 3 voxels
  assert metrics.avd_pct(truth, pred) == pytest.approx(25.0)
  assert np.isnan(metrics.avd_pct(pred & False, pred))


def test_lesion_detection_uses_26_connectivity():
  truth = np.zeros((10, 10, 3), bool)
  truth[0, 0, 0] = truth[1, 1, 1] = True  # diagonal neighbours: one lesion
  truth[5, 5, 0] = True  # a second lesion, missed
  pred = np.zeros_like(truth)
  pred[1, 1, 1] = True  # hits the first
  pred[8, 8, 0] = True  # a false positive
  assert metrics.lesion_detection(truth, pred) == pytest.approx((0.5, 0.5, 0.5))


def test_lesion_detection_edge_cases():
  empty = np.zeros((4, 4, 2), bool)
  one = empty.copy()
  one[0, 0, 0] = True
  other = empty.copy()
  other[3, 3, 1] = True
  assert metrics.lesion_detection(empty, empty) == (1.0, 1.0, 1.0)
  assert metrics.lesion_detection(empty, one) == (1.0, 0.0, 0.0)  # recall 1, precision 0
  assert metrics.lesion_detection(one, empty) == (0.0, 1.0, 0.0)
  assert metrics.lesion_detection(one, other) == (0.0, 0.0, 0.0)  # F1 0 when both are 0


def test_subject_metrics_per_class_and_challenge_mode():
  truth = np.zeros((6, 6, 2), np.uint8)
  truth[0:2, 0:2, 0] = 1  # 4 WMH voxels
  truth[4:6, 4:6, 1] = 2  # 4 stroke voxels
  pred = np.zeros_like(truth)
  pred[0:2, 0:2, 0] = 1
  pred[4:6, 4:6, 1] = 1  # the stroke called WMH
  affine = _affine((1.0, 1.0, 5.0))
  plain = metrics.subject_metrics(truth, pred, affine)
  assert plain["wmh"]["dice"] == pytest.approx(2 * 4 / 12)
  assert plain["wmh"]["avd_pct"] == pytest.approx(100.0)
  assert plain["wmh"]["volume_ml"] == pytest.approx(8 * 5 / 1000)
  assert plain["stroke"]["dice"] == 0.0
  assert np.isnan(plain["stroke"]["hd95_mm"])
  assert plain["stroke"]["lesion_recall"] == 0.0
  challenge = metrics.subject_metrics(truth, pred, affine, challenge_mode=True)
  assert challenge["wmh"]["dice"] == 1.0
  assert challenge["wmh"]["hd95_mm"] == 0.0
  assert challenge["wmh"]["avd_pct"] == 0.0
  assert challenge["wmh"]["lesion_f1"] == 1.0
  np.testing.assert_equal(challenge["stroke"], plain["stroke"])  # NaN == NaN here



def test_called_pct_says_where_each_expert_class_went():
  truth = np.zeros((10, 2, 1), np.uint8)
  truth[:, 0, 0] = 2  # 10 stroke voxels
  truth[:4, 1, 0] = 1  # 4 WMH voxels
  pred = np.zeros_like(truth)
  pred[:6, 0, 0] = 2  # stroke: 6 called stroke, 3 WMH, 1 nothing
  pred[6:9, 0, 0] = 1
  pred[:2, 1, 0] = 1  # WMH: 2 called WMH, 1 stroke, 1 nothing
  pred[2, 1, 0] = 2
  assert metrics.called_pct(truth, pred, 2) == pytest.approx(
      {"called_wmh_pct": 30.0, "called_stroke_pct": 60.0, "called_none_pct": 10.0})
  assert metrics.called_pct(truth, pred, 1) == pytest.approx(
      {"called_wmh_pct": 50.0, "called_stroke_pct": 25.0, "called_none_pct": 25.0})
  no_stroke = metrics.called_pct(np.where(truth == 2, 0, truth), pred, 2)
  assert all(np.isnan(v) for v in no_stroke.values())  # no expert stroke: nothing to break down
  assert metrics.subject_metrics(truth, pred, _affine((1, 1, 1)))["stroke"]["called_wmh_pct"] == 30
