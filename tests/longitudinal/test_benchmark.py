"""longitudinal/benchmark: the MSSEG-2-style arithmetic on hand-made change maps."""
import numpy as np
import pytest

from uresnet_jax.longitudinal import benchmark

SHAPE = (30, 30, 30)  # 1 mm voxels


def _cube(array: np.ndarray, corner: tuple[int, int, int], size: int, value: int) -> None:
  x, y, z = corner
  array[x:x + size, y:y + size, z:z + size] = value


def test_new_lesions_counted_lesion_wise():
  truth, called = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
  _cube(truth, (2, 2, 2), 3, 12)  # a new WMH of 27 mm3, found
  _cube(truth, (10, 2, 2), 3, 12)  # a new WMH missed
  _cube(truth, (20, 20, 20), 2, 12)  # 8 mm3: under the 10 mm3 floor, not counted
  _cube(truth, (10, 20, 10), 4, 22)  # a new stroke of 64 mm3, found as a new stroke
  _cube(called, (3, 3, 3), 3, 12)  # overlaps the first WMH by 8 voxels
  _cube(called, (2, 20, 2), 3, 12)  # a false new WMH
  _cube(called, (25, 25, 25), 2, 12)  # a false one under the floor: not counted
  _cube(called, (10, 20, 10), 4, 22)
  _cube(called, (20, 10, 20), 3, 13)  # an enlarging WMH is no new lesion
  scores = benchmark.score_new(truth, called, 1.0, 10.0)
  assert scores["wmh"] == dict(planted=2, found=1, called=2, right=1, called_ml=0.054)
  assert scores["stroke"] == dict(planted=1, found=1, called=1, right=1, called_ml=0.064)
  # Dice of the counted new-lesion voxels: truth 27 + 27 + 64, called 27 + 27 + 64, shared 8 + 64.
  assert scores["dice"] == pytest.approx(2 * 72 / 236)


def test_f1():
  assert benchmark.f1(found=1, planted=2, right=1, called=1) == pytest.approx(2 / 3)
  assert benchmark.f1(found=3, planted=3, right=3, called=3) == 1.0
  assert benchmark.f1(found=0, planted=2, right=0, called=0) == 0.0
  assert benchmark.f1(found=0, planted=0, right=0, called=4) is None


def test_registration_error():
  points = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 20.0, 5.0]])
  planted = np.eye(4)
  recovered = np.eye(4)
  recovered[:3, 3] = [3.0, 4.0, 0.0]
  assert benchmark.registration_error_mm(recovered, planted, points) == pytest.approx((5.0, 5.0))
  turn = np.eye(4)
  turn[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 degrees about z through the origin
  mean, worst = benchmark.registration_error_mm(turn, turn, points)
  assert mean == pytest.approx(0.0) and worst == pytest.approx(0.0)
  mean, worst = benchmark.registration_error_mm(np.eye(4), turn, points)
  assert worst == pytest.approx(20 * np.sqrt(2)) and mean == pytest.approx(30 * np.sqrt(2) / 3)


def _pair(kind, wmh, stroke, seconds=10.0, error=(0.2, 0.4)):
  blank = dict(planted=0, found=0, called=0, right=0, called_ml=0.0)
  return dict(kind=kind, new=dict(wmh=dict(blank, **wmh), stroke=dict(blank, **stroke), dice=0.5),
              registration_error_mm_mean=error[0], registration_error_mm_max=error[1],
              registration_seconds=seconds / 5, pair_seconds=seconds)


def test_summary_pools_counts_and_separates_stable_pairs():
  scores = [_pair("new_wmh", dict(planted=4, found=3, called=4, right=3), {}),
            _pair("new_stroke", {}, dict(planted=1, found=1, called=1, right=1)),
            _pair("stable", dict(called=2, called_ml=0.03), {}, seconds=20.0, error=(0.3, 0.6)),
            _pair("growth", {}, {}) | {"changed_lesion_called": "enlarging"},
            _pair("shrinkage", dict(called=1, called_ml=0.01), {})
            | {"changed_lesion_called": "stable"}]
  s = benchmark.summarise(scores)
  assert s["pairs_with_new_lesions"] == 2
  assert s["new_lesions"] == dict(planted=5, found=4, called=5, right=4)
  assert s["new_lesion_f1"] == pytest.approx(0.8)
  assert s["new_wmh_f1"] == pytest.approx(0.75)
  assert s["new_lesion_dice"] == 0.5
  assert (s["new_strokes_planted"], s["new_strokes_found"]) == (1, 1)
  assert s["false_new_stable"] == dict(pairs=1, lesions_per_pair=2.0, ml_per_pair=0.03)
  assert s["false_new_without_new_lesions"]["pairs"] == 3
  assert s["false_new_without_new_lesions"]["lesions_per_pair"] == pytest.approx(1.0)
  assert (s["growth_called_enlarging"], s["shrinkage_called_shrinking"]) == (1, 0)
  assert s["registration_error_mm_max"] == 0.6
  assert s["registration_error_mm_mean"] == pytest.approx(0.22)
  assert (s["pair_seconds_mean"], s["pair_seconds_max"]) == (12.0, 20.0)


def test_event_at_the_changed_lesion():
  change = np.zeros(SHAPE, np.uint8)
  _cube(change, (10, 10, 10), 5, 13)  # an enlarging WMH
  affine = np.diag([1.0, 1.0, 2.0, 1.0])
  event = dict(centroid_x_mm=12.0, centroid_y_mm=12.0, centroid_z_mm=24.0)
  assert benchmark.event_at(change, affine, event) == "enlarging"
  assert benchmark.event_at(change, affine, dict(event, centroid_x_mm=2.0)) == "none"
