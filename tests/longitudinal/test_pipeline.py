"""The longitudinal pipeline: a synthetic pair through `run_cohort` with a threshold 'model' (its
outputs and change maps, in seconds), each bad input told in one line before any model call, and
the command end to end on a phantom pair with a new stroke (bundled model, slow)."""
import csv
import json
import pathlib

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from browser import Browser, look_at_report
from conftest import run_module
from uresnet_jax.common.errors import InputError
from uresnet_jax.inference import config as predict_config, predictor
from uresnet_jax.longitudinal import pipeline, visits
from uresnet_jax.phantom import config as phantom_config

INFO = predictor.ModelInfo(channels=("flair",), num_classes=3, inplane_mm=2.0, clip_low=-3.0,
                           config={})
SHAPE = (64, 72, 24)
AFFINE = np.diag([2.0, 2.0, 4.0, 1.0])
AFFINE[:3, 3] = (-64.0, -72.0, -48.0)


def _threshold_model(calls: list) -> predictor.Predictor:
  """The project's Predictor around a 'model' that calls z > 2.5 WMH and z > 6 stroke, counting
  its calls."""
  def forward(images: np.ndarray) -> np.ndarray:
    calls.append(images.shape)
    z = images[..., 0]
    return np.eye(3, dtype=np.float32)[(z > 2.5).astype(int) + (z > 6).astype(int)]
  return predictor.Predictor(forward, INFO, predict_config.get_config())


def _grid(shape=SHAPE) -> np.ndarray:
  return np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"))


def _head(lesions=(), seed=0) -> tuple[np.ndarray, np.ndarray]:
  """(skull-stripped FLAIR, its brain mask): an ellipsoid brain with dark ventricles, a lumpy
  texture and bright blobs (`lesions`: (centre voxel, radius voxels, brightness))."""
  g = _grid()
  centre = np.array(SHAPE) / 2
  brain = sum(((g[i] - centre[i]) / (0.42 * SHAPE[i])) ** 2 for i in range(3)) <= 1
  image = 100.0 + 10 * np.sin(g[0] / 3) * np.cos(g[1] / 4) + 8 * np.sin(g[2] / 2)
  ventricles = ((g[0] - centre[0]) / 6) ** 2 + ((g[1] - centre[1] - 4) / 12) ** 2 + (
      (g[2] - centre[2]) / 4) ** 2 <= 1
  image[ventricles] = 30.0
  for where, radius, brightness in lesions:
    blob = sum((g[i] - where[i]) ** 2 for i in range(3)) <= radius ** 2
    image[blob] = brightness
  image += np.random.default_rng(seed).normal(0, 3, SHAPE)
  return np.where(brain, image, 0).astype(np.float32), brain


def _save(path: pathlib.Path, data: np.ndarray, affine: np.ndarray) -> pathlib.Path:
  nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), path)
  return path


def _moved(shift_mm=(3.0, -2.0, 1.0), degrees=4.0) -> np.ndarray:
  """A follow-up's affine: the baseline's moved rigidly in scanner space."""
  a = np.radians(degrees)
  move = np.eye(4)
  move[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
  move[:3, 3] = shift_mm
  return move @ AFFINE


OLD = ((20, 24, 12), 2.5, 180.0)  # a WMH at both visits
NEW_WMH = ((44, 50, 12), 2.5, 180.0)
NEW_STROKE = ((22, 46, 14), 3.0, 260.0)


def test_a_pair_through_run_cohort_gives_its_events_maps_tables_and_report(tmp_path, capsys):
  baseline, _ = _head([OLD])
  followup, _ = _head([OLD, NEW_WMH, NEW_STROKE], seed=1)
  moved = _moved()
  files = [_save(tmp_path / "s1_v1.nii.gz", baseline, AFFINE),
           _save(tmp_path / "s1_v2.nii.gz", followup, moved)]
  subjects = visits.find_subjects(baseline=str(files[0]), followups=[str(files[1])])
  out = tmp_path / "out"
  records, failures = pipeline.run_cohort(subjects, out, _threshold_model([]))
  assert failures == [] and len(records) == 1
  with open(out / "changes.csv") as f:
    changes = list(csv.DictReader(f))
  assert (changes[0]["class"], changes[0]["event"]) == ("stroke", "new")  # new strokes on top
  kinds = sorted((r["class"], r["event"]) for r in changes)
  assert kinds == [("stroke", "new"), ("wmh", "new"), ("wmh", "stable")], kinds
  stroke_mm = moved @ np.array([*NEW_STROKE[0], 1.0])  # where it is in the follow-up's scanner
  found = [float(changes[0][f"centroid_{a}_mm"]) for a in "xyz"]
  assert np.allclose(found, stroke_mm[:3], atol=2.0), (found, stroke_mm)
  folder = out / "s1"  # the words the file names share
  followup_map = nib.load(folder / "s1_v2_change.nii.gz")
  assert np.allclose(followup_map.affine, moved)
  codes = np.asarray(followup_map.dataobj)
  assert codes[NEW_STROKE[0]] == 22 and codes[NEW_WMH[0]] == 12 and codes[OLD[0]] == 11
  common = np.asarray(nib.load(folder / "s1_v2_space-v1_change.nii.gz").dataobj)
  assert set(np.unique(common)) == {0, 11, 12, 22} and common[OLD[0]] == 11
  registration = json.loads((folder / "registration.json").read_text())["v2"]
  assert np.allclose(registration["followup_to_baseline"], AFFINE @ np.linalg.inv(moved),
                     atol=0.3)
  with open(out / "longitudinal.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["visit"], r["stroke_new"], r["wmh_new"]) for r in rows] == [
      ("v1", "", ""), ("v2", "1", "1")]
  page = (out / "report.html").read_text()
  assert "New strokes (1)" in page and page.index("New stroke") < page.index("Stable WMH")
  assert all((out / fig[k]).is_file() for fig in records[0]["figures"]["v2"]
             for k in ("baseline", "followup", "change"))
  assert "1 new stroke(s), 1 new WMH" in capsys.readouterr().out


def test_each_follow_up_is_compared_with_the_baseline(tmp_path):
  heads = [_head([OLD]), _head([OLD, NEW_WMH], seed=1), _head([NEW_WMH], seed=2)]
  files = [_save(tmp_path / f"v{i}.nii.gz", head, _moved(degrees=2.0 * i))
           for i, (head, _) in enumerate(heads)]
  subjects = visits.find_subjects(baseline=str(files[0]), followups=[str(f) for f in files[1:]])
  [record], _ = pipeline.run_cohort(subjects, tmp_path / "out", _threshold_model([]))
  kinds = {f: sorted((r["class"], r["event"]) for r in record["changes"] if r["followup"] == f)
           for f in ("v1", "v2")}
  assert kinds == {"v1": [("wmh", "new"), ("wmh", "stable")],
                   "v2": [("wmh", "disappearing"), ("wmh", "new")]}, kinds
  assert [r["visit"] for r in record["volumes"]] == ["v0", "v1", "v2"]
  assert all((tmp_path / "out" / "v0" / f"v0_{f}_space-v0_change.nii.gz").is_file()
             for f in ("v1", "v2"))


def _fault(tmp_path: pathlib.Path, fault: str) -> list[visits.Subject]:
  baseline, brain = _head([OLD])
  base = _save(tmp_path / "base.nii.gz", baseline, AFFINE)
  if fault == "single visit":
    (tmp_path / "subjects.csv").write_text("subject,visit,flair\nS,v1,base.nii.gz\n")
    return visits.find_subjects(str(tmp_path / "subjects.csv"))
  if fault == "not skull-stripped":  # a head in its skull and background, and no brain mask
    data = np.where(brain, baseline, 60.0 + np.random.default_rng(2).normal(0, 5, SHAPE))
    other = _save(tmp_path / "fu.nii.gz", data, _moved())
  elif fault == "no overlap":
    far = _moved(shift_mm=(0.0, 400.0, 0.0))
    other = _save(tmp_path / "fu.nii.gz", baseline, far)
  elif fault == "another subject":  # another brain: its shape, ventricles and texture
    g, centre = _grid(), np.array(SHAPE) / 2
    other_brain = sum(((g[i] - centre[i]) / (axis * SHAPE[i])) ** 2
                      for i, axis in enumerate((0.38, 0.46, 0.40))) <= 1
    image = 100 + 12 * np.cos(g[0] / 2.5 + 1) * np.sin(g[1] / 3.5) + 8 * np.cos(g[2] / 1.7)
    image[((g[0] - centre[0] - 5) / 4) ** 2 + ((g[1] - centre[1] + 6) / 9) ** 2
          + ((g[2] - centre[2]) / 5) ** 2 <= 1] = 30.0
    image += np.random.default_rng(9).normal(0, 3, SHAPE)
    other = _save(tmp_path / "fu.nii.gz", np.where(other_brain, image, 0), _moved())
  else:  # another body part: a long cylinder of muscle-like texture
    g = _grid()
    limb = ((g[0] - 32) / 10) ** 2 + ((g[1] - 36) / 10) ** 2 <= 1
    texture = 80 + 40 * (np.sin(g[2] * 1.3) > 0) + np.random.default_rng(3).normal(0, 3, SHAPE)
    other = _save(tmp_path / "fu.nii.gz", np.where(limb, texture, 0), AFFINE)
  return visits.find_subjects(baseline=str(base), followups=[str(other)])


@pytest.mark.parametrize("fault, message", [
    ("single visit", "a single visit; nothing to compare"),
    ("not skull-stripped", "fu.nii.gz: not skull-stripped"),
    ("no overlap", "no overlap of the fields of view"),
    ("another subject", "look like different brains"),
    ("another body part", "fu.nii.gz against base"),
])
def test_bad_input_is_one_line_before_any_model_call_and_nothing_is_written(
    tmp_path, capsys, fault, message):
  calls = []
  subjects = _fault(tmp_path, fault)
  with pytest.raises(InputError, match="no subject could be compared"):
    pipeline.run_cohort(subjects, tmp_path / "out", _threshold_model(calls))
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and message in lines[0] and lines[0].endswith("subject skipped"), lines
  assert calls == [] and not (tmp_path / "out").exists()


def _phantom_pair(folder: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A phantom subject without and with a stroke (same anatomy, WMH and noise: the generator draws
  the stroke from a stream of its own), the follow-up moved rigidly in scanner space; a manifest
  of the pair and of a subject with a single visit. Returns (follow-up affine, planted stroke on
  the follow-up's grid, the planted move)."""
  from uresnet_jax import phantom
  config = phantom_config.get_config()
  config.num_workers = 1
  config.protocols, config.protocol_weights = ((1.0, 1.0, 6.0),), (1.0,)
  config.fov_mm = 200.0
  scans = {}
  for visit, probability in (("v1", 0.0), ("v2", 1.0)):
    config.stroke_probability = probability
    scans[visit] = phantom.generate_subject(2, 0, config)  # round 18 calls 94 % of it new stroke
  move = np.linalg.inv(_moved(shift_mm=(2.0, -3.0, 1.5), degrees=3.0) @ np.linalg.inv(AFFINE))
  affines = {"v1": scans["v1"]["affine"], "v2": np.linalg.inv(move) @ scans["v1"]["affine"]}
  for visit, scan in scans.items():
    nib.save(nib.Nifti1Image(scan["flair"], affines[visit]), folder / f"{visit}.nii.gz")
    nib.save(nib.Nifti1Image(scan["brain_mask"], affines[visit]), folder / f"{visit}_mask.nii.gz")
  (folder / "subjects.csv").write_text(
      "subject,visit,flair,brain_mask\nP,v1,v1.nii.gz,v1_mask.nii.gz\nP,v2,v2.nii.gz,v2_mask.nii.gz\n"
      "Q,v1,v1.nii.gz,v1_mask.nii.gz\n")
  stroke = (scans["v2"]["labels"] == 2) & (scans["v1"]["labels"] != 2)
  return affines["v2"], stroke, move


@pytest.mark.slow
def test_the_command_finds_a_new_stroke_on_a_phantom_pair_and_goes_on_past_a_single_visit(
    tmp_path):
  affine, stroke, move = _phantom_pair(tmp_path)
  result = run_module("longitudinal", f"--input={tmp_path / 'subjects.csv'}",
                      f"--output={tmp_path / 'out'}", timeout=300)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Q: " in result.stderr and "a single visit" in result.stderr
  assert "error: 1 of 2 subject(s) failed" in result.stderr
  out = tmp_path / "out"
  with open(out / "changes.csv") as f:
    changes = list(csv.DictReader(f))
  strokes = [r for r in changes if r["class"] == "stroke" and r["event"] == "new"]
  assert changes[:len(strokes)] == strokes and strokes[0]["subject"] == "P"  # new strokes on top
  pieces, count = ndimage.label(stroke, np.ones((3, 3, 3)))
  assert len(strokes) == count  # each planted piece found, once
  zooms = np.linalg.norm(affine[:3, :3], axis=0)
  from_stroke_mm = ndimage.distance_transform_edt(~stroke, sampling=zooms)
  to_voxel = np.linalg.inv(affine)

  def mm_from_planted(row: dict[str, str]) -> float:
    centre = to_voxel @ [*(float(row[f"centroid_{a}_mm"]) for a in "xyz"), 1.0]
    index = tuple(np.clip(np.round(centre[:3]).astype(int), 0, np.array(stroke.shape) - 1))
    return float(from_stroke_mm[index])

  # Each new stroke lies on a planted infarct (its centroid on or within 3 mm of one; a model that
  # calls part of an infarct stroke moves the centroid inside it).
  assert all(mm_from_planted(row) < 3.0 for row in strokes), [
      (mm_from_planted(row), row) for row in strokes]
  # No shower of false new WMH on the unchanged brain: new WMH away from the planted stroke (a few
  # voxels of its rim called WMH are the stroke/WMH confusion, not a shower).
  away = sum(float(r["volume_ml_followup"]) for r in changes
             if r["class"] == "wmh" and r["event"] == "new" and mm_from_planted(r) > 3.0)
  assert away < 0.05, changes
  codes = np.asarray(nib.load(out / "P" / "P_v2_change.nii.gz").dataobj)
  assert np.mean(codes[stroke] == 22) > 0.5
  registration = json.loads((out / "P" / "registration.json").read_text())["v2"]
  brain = np.array([*np.argwhere(stroke).mean(0), 1.0])
  error = np.array(registration["followup_to_baseline"]) @ affine @ brain - move @ affine @ brain
  assert np.linalg.norm(error) < 0.5
  assert not (out / "Q").exists() and f"New strokes ({count})" in (out / "report.html").read_text()
  with Browser() as browser:  # as a user sees it: both visits, and the overlay on them
    seen = look_at_report(browser, out / "report.html")
  [section] = seen["scans"]
  assert section["name"] == "P" and section["images"] == section["decoded"] > 0, seen["scans"]
  assert seen["errors"] == []
  assert np.abs(seen["with_overlay"].astype(int) - seen["without_overlay"]).sum(-1).max() > 100
  assert (seen["overlay_again"] == seen["with_overlay"]).all()
