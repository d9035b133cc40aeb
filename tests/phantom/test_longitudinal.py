"""phantom/longitudinal: planted events where the truth says, a stable pair unchanged but for the
transform, the transform written the one applied, and the --visits=2 cohort on disk."""
import csv
import json

import numpy as np
import pytest
from scipy import ndimage

from conftest import run_module
from uresnet_jax.common.labelling import STROKE, WMH
from uresnet_jax.longitudinal.registration import resample
from uresnet_jax.phantom import longitudinal
from uresnet_jax.phantom.fields import rotation_matrix

SHAPE = (96, 96, 80)  # a small 1 mm anatomy: an ellipsoidal brain of white matter


def _subject() -> dict:
  """A hand-made 1 mm anatomy: an oblique ellipsoid brain, textured, with two WMH of its own."""
  grid = np.stack(np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in SHAPE], indexing="ij"))
  brain = ((grid[0] / 42)**2 + (grid[1] / 44)**2 + (grid[2] / 36)**2) < 1
  rng = np.random.default_rng(0)
  texture = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 3.0)
  flair = (1.0 + 1.5 * texture / texture.std() * 0.1) * brain
  labels = np.zeros(SHAPE, np.uint8)
  for centre in ((-30, 0, 0), (30, 5, 0)):
    blob = sum(((grid[a] - centre[a]) / 3)**2 for a in range(3)) < 1
    labels[blob] = WMH
    flair[blob] = 1.9
  affine = np.eye(4)
  affine[:3, :3] = rotation_matrix([8.0, 0.0, 0.0])
  affine[:3, 3] = [-48.0, -60.0, -20.0]
  return dict(flair=np.round(flair * 1000).astype(np.int16), labels=labels,
              brain_mask=brain.astype(np.uint8), wm=brain.astype(np.float32), affine=affine)


@pytest.fixture(scope="module")
def pairs():
  """One pair of each kind, on the hand-made anatomy."""
  config = longitudinal.get_config()
  return {kind: longitudinal.make_pair(_subject(), kind, np.random.default_rng(i), config)
          for i, kind in enumerate(longitudinal.KINDS)}


def _voxel(affine: np.ndarray, event: dict) -> tuple[int, ...]:
  point = np.array([event["centroid_x_mm"], event["centroid_y_mm"], event["centroid_z_mm"], 1.0])
  return tuple(np.round(np.linalg.inv(affine) @ point)[:3].astype(int))


def _to_baseline(pair: dict, array: np.ndarray) -> np.ndarray:
  """A follow-up label array on the baseline's grid through the planted transform."""
  matrix = np.array(pair["truth"]["followup_to_baseline"])
  return resample(array, pair["affines"][1], matrix, pair["affines"][0],
                  pair["visits"][0]["labels"].shape, order=0)


@pytest.mark.parametrize("kind,cls", [("new_wmh", WMH), ("new_stroke", STROKE)])
def test_new_lesions_are_where_the_truth_says(pairs, kind, cls):
  pair = pairs[kind]
  baseline, followup = pair["visits"]
  events = pair["truth"]["events"]
  assert events and all(e["event"] == "new" and e["volume_ml_baseline"] == 0 for e in events)
  assert len(events) >= (3 if kind == "new_wmh" else 1)
  for e in events:
    voxel = _voxel(pair["affines"][1], e)
    assert followup["labels"][voxel] == cls
    assert followup["new"][voxel] == 10 * cls + 2
  # The new map marks follow-up lesion voxels only, and the baseline had no lesion there.
  new = followup["new"] > 0
  assert np.all(followup["labels"][new] == cls)
  before = _to_baseline(pair, new.astype(np.uint8)) > 0
  assert before.any() and (baseline["labels"][before] == 0).mean() > 0.9
  # New WMH are brighter than the brain; a new stroke is a dark cavity in a bright rim.
  brain = np.median(followup["flair"][followup["brain_mask"] > 0])
  if cls == WMH:
    assert followup["flair"][new].mean() > 1.4 * brain
  else:
    assert followup["flair"][new].min() < 0.5 * brain and followup["flair"][new].max() > 1.4 * brain


@pytest.mark.parametrize("kind", ["growth", "shrinkage"])
def test_growth_and_shrinkage(pairs, kind):
  pair = pairs[kind]
  (event,) = pair["truth"]["events"]
  ratio = event["volume_ml_followup"] / event["volume_ml_baseline"]
  assert (ratio > 1.5) if kind == "growth" else (ratio < 0.67)
  baseline, followup = pair["visits"]
  assert not followup["new"].any()
  centre = _voxel(pair["affines"][1], event)
  assert followup["labels"][centre] == WMH
  # The labelled WMH volume changes by the event's change (thick-slice partial volume aside).
  voxel_ml = [abs(np.linalg.det(a[:3, :3])) / 1000 for a in pair["affines"]]
  change = ((followup["labels"] == WMH).sum() * voxel_ml[1]
            - (baseline["labels"] == WMH).sum() * voxel_ml[0])
  expected = event["volume_ml_followup"] - event["volume_ml_baseline"]
  assert abs(change - expected) < 0.5 * abs(expected)
  # The intensity follows: the grown rim is bright, the freed rim back to white matter.
  was = baseline["labels"] == WMH
  rim = _to_baseline(pair, (followup["labels"] == WMH).astype(np.uint8)) != was
  gained = rim & ~was if kind == "growth" else rim & was
  moved_flair = resample(followup["flair"], pair["affines"][1],
                         np.array(pair["truth"]["followup_to_baseline"]), pair["affines"][0],
                         baseline["flair"].shape, order=1)
  brain = np.median(baseline["flair"][baseline["brain_mask"] > 0])
  if kind == "growth":
    assert moved_flair[gained].mean() > 1.3 * brain
  else:
    assert moved_flair[gained].mean() < 1.2 * brain < baseline["flair"][gained].mean()


def test_a_stable_pair_has_the_same_labels_up_to_the_transform(pairs):
  pair = pairs["stable"]
  baseline, followup = pair["visits"]
  assert pair["truth"]["events"] == [] and not followup["new"].any()
  moved = _to_baseline(pair, followup["labels"])
  for cls in (WMH,):
    a, b = baseline["labels"] == cls, moved == cls
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.6  # two 3 mm blobs on 4-6 mm slices
  # The acquisitions differ: another contrast, bias field and noise.
  assert pair["truth"]["contrast_gamma"] != 1.0


def test_the_transform_written_is_the_one_applied(pairs):
  for pair in pairs.values():
    baseline, followup = pair["visits"]
    moved = _to_baseline(pair, followup["brain_mask"]) > 0
    unmoved = resample(followup["brain_mask"], pair["affines"][1], np.eye(4), pair["affines"][0],
                       baseline["brain_mask"].shape, order=0) > 0
    brain = baseline["brain_mask"] > 0

    def dice(x):
      return 2 * (x & brain).sum() / (x.sum() + brain.sum())

    assert dice(moved) > 0.95 and dice(moved) > dice(unmoved) + 0.02, (dice(moved), dice(unmoved))
    matrix = np.array(pair["truth"]["followup_to_baseline"])
    np.testing.assert_allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-9)


@pytest.mark.slow
def test_the_command_writes_pairs(tmp_path):
  result = run_module("phantom", f"--out={tmp_path}", "--subjects=1", "--visits=2",
                      "--config.num_workers=1", timeout=120)
  assert result.returncode == 0, result.stderr
  with open(tmp_path / "subjects.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["subject", "visit", "flair", "labels", "brain_mask"]
  assert [(r["subject"], r["visit"]) for r in rows] == [("sub-000", "ses-01"),
                                                        ("sub-000", "ses-02")]
  for row in rows:
    for key in ("flair", "labels", "brain_mask"):
      assert (tmp_path / row[key]).exists()
  truth = json.loads((tmp_path / "truth" / "sub-000.json").read_text())
  assert truth["kind"] == "new_wmh" and len(truth["events"]) >= 3
  assert np.array(truth["followup_to_baseline"]).shape == (4, 4)
  assert (tmp_path / "truth" / "sub-000_new.nii.gz").exists()
