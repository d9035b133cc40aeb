"""The lesion probe: each edit changes only what it names, the calls are counted right, and the
command probes a trained model's lesions as a user runs it."""
import csv

import numpy as np

from conftest import run_module
from uresnet_jax.common import labelling
from uresnet_jax.experiments import lesion_probe


def _scene():
  """A 12x12x4 brain at 1x1x5 mm: a lesion of 4 voxels on slice 1, dark CSF beside it on slices 1
  and 2, tissue z 0 elsewhere with a faint lesion voxel."""
  image = np.zeros((12, 12, 4, 1), np.float32)
  mask = np.ones((12, 12, 4), bool)
  labels = np.zeros((12, 12, 4), np.uint8)
  labels[5:7, 5:7, 1] = labelling.STROKE
  image[5:7, 5:7, 1, 0] = [[2.0, 3.0], [1.0, 2.5]]
  image[8, 5:7, 1:3, 0] = -2.0  # CSF 2-3 mm from the lesion in-plane; slice 2 is 5 mm above
  return image, mask, labels


def test_largest_lesions_are_ordered_by_size():
  labels = np.zeros((10, 10, 3), np.uint8)
  labels[0, 0, 0] = 2
  labels[4:7, 4:7, 1] = 2
  labels[9, 9, 2] = 1
  big, small = lesion_probe.largest_lesions(labels, labelling.STROKE, 5)
  assert big.sum() == 9 and small.sum() == 1 and small[0, 0, 0]


def test_each_edit_changes_only_what_it_names():
  image, mask, labels = _scene()
  lesion = labels == labelling.STROKE
  settings = lesion_probe.Settings(lift_z=(2.0,), near_mm=4.0, far_mm=3.0)
  images = lesion_probe.edited_images(image, mask, labels, lesion, (1.0, 1.0, 5.0), settings)
  assert list(images) == ["original", "brighter_2", "even_texture", "csf_near_to_tissue",
                          "far_to_tissue"]
  flair = {name: im[..., 0] for name, im in images.items()}
  assert np.array_equal(images["original"], image)
  assert np.allclose(flair["brighter_2"] - image[..., 0], 2.0 * lesion)
  even = flair["even_texture"][lesion]
  assert np.allclose(np.sort(even), [2.25, 2.25, 2.5, 3.0])  # the 1.0 and 2.0 voxels raised
  assert np.array_equal(flair["even_texture"][~lesion], image[..., 0][~lesion])
  changed = flair["csf_near_to_tissue"] != image[..., 0]
  assert changed[8, 5:7, 1].all() and changed.sum() == 2  # slice 2's CSF lies 5 mm away
  assert np.all(flair["csf_near_to_tissue"][changed] == 0.0)  # the lesion-free brain's median
  far = flair["far_to_tissue"] != image[..., 0]
  assert far[8, 5:7, 2].all() and not far[8, 5:7, 1].any()  # 5.1 mm away changed, 2 mm kept


def test_called_counts_each_class_share():
  probabilities = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.0, 0.1, 0.9]])
  out = lesion_probe.called(probabilities.reshape(2, 2, 1, 3), np.ones((2, 2, 1), bool),
                            labelling.STROKE)
  assert out["called_stroke_pct"] == 50 and out["called_wmh_pct"] == 25
  assert out["called_none_pct"] == 25
  assert np.isclose(out["p_stroke"], 0.5) and np.isclose(out["p_wmh"], 0.275)


def test_probe_command_runs_a_trained_model_on_its_cohorts_lesions(tiny_run, tmp_path):
  data, workdir, _, _ = tiny_run
  manifest = data / "cohort" / "subjects.csv"
  subject = next(csv.DictReader(manifest.open()))["subject"]
  out = tmp_path / "probe.csv"
  result = run_module("lesion_probe", f"--cohort={manifest}", f"--model={workdir}",
                      "--class=wmh", "--lesions=2", f"--subject={subject}", "--lift_z=1",
                      f"--output={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  rows = list(csv.DictReader(out.open()))
  edits = ["original", "brighter_1", "even_texture", "csf_near_to_tissue", "far_to_tissue"]
  assert [r["edit"] for r in rows] == edits * 2 and {r["subject"] for r in rows} == {subject}
  assert [r["lesion"] for r in rows] == ["1"] * 5 + ["2"] * 5
  assert int(rows[0]["voxels"]) >= int(rows[5]["voxels"])
  for row in rows:
    shares = [float(row[k]) for k in ("called_wmh_pct", "called_stroke_pct", "called_none_pct")]
    assert np.isclose(sum(shares), 100) and 0 <= float(row["p_wmh"]) <= 1
  assert "| original |" in result.stdout

  unknown = run_module("lesion_probe", f"--cohort={manifest}", f"--model={workdir}",
                       "--subject=nobody")
  assert unknown.returncode == 1 and unknown.stderr.strip().splitlines()[-1] == (
      f"error: {manifest}: no subject nobody")
  bad = run_module("lesion_probe", f"--cohort={manifest}", "--lift_z=bright")
  assert bad.returncode == 1 and "--lift_z=bright: expected numbers" in bad.stderr
  for target, reason in ((tmp_path, "is a folder"), (tmp_path / "no" / "p.csv", "does not exist")):
    refused = run_module("lesion_probe", f"--cohort={manifest}", f"--output={target}")
    assert refused.returncode == 1, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {target}: ") and reason in last
  assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.csv"]  # nothing half-written
