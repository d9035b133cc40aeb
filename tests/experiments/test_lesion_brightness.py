"""The brightness table: the region holds what it says, voxels land in their bins and classes, a
class the labels do not mark is left out, and the command runs on a cohort as a user runs it."""
import csv
import math

import numpy as np

from conftest import run_module
from uresnet_jax.common import labelling
from uresnet_jax.data import preprocess
from uresnet_jax.experiments import lesion_brightness

ZOOMS = (1.0, 1.0, 5.0)


def _prepared(subject: str = "s1") -> preprocess.Prepared:
  """A 64x64 brain (x3 slices of 5 mm) in a 72x72 field: a dark 6x6 ventricle at its centre (29 mm
  from the edge), WMH of z 2.2 4 mm from it, an infarct of z 5.5 8 mm from it, and a lesion of z
  2.2 3 mm from the brain's edge."""
  image = np.full((72, 72, 3, 1), -3.0, np.float32)
  mask = np.zeros((72, 72, 3), bool)
  mask[4:68, 4:68] = True
  image[mask] = 0.0
  labels = np.zeros((72, 72, 3), np.uint8)
  image[33:39, 33:39, :, 0] = -2.0
  image[42, 34:37, 1, 0] = 2.2  # 4 mm beyond the ventricle's last row (38)
  labels[42, 34:37, 1] = labelling.WMH
  image[46, 34:36, 1, 0] = 5.5  # 8 mm
  labels[46, 34:36, 1] = labelling.STROKE
  image[6, 34, 1, 0] = 2.2  # 3 mm from the brain's edge
  labels[6, 34, 1] = labelling.WMH
  affine = np.diag([*ZOOMS, 1.0])
  geometry = preprocess.Geometry((72, 72, 3), affine, (72, 72, 3), affine)
  return preprocess.Prepared(subject, image, labels, mask, geometry)


def test_periventricular_region_is_the_deep_brain_beside_the_ventricles():
  p = _prepared()
  region = lesion_brightness.region_mask(p.image[..., 0], p.mask, ZOOMS,
                                         lesion_brightness.Settings())
  assert region[42, 35, 1] and region[46, 34, 1]  # 4 and 8 mm from the ventricle
  assert not region[35, 35, 1]  # the ventricle itself
  assert not region[52, 35, 1]  # 14 mm from it
  assert not region[6, 34, 1]  # 3 mm from the brain's edge
  whole = lesion_brightness.region_mask(p.image[..., 0], p.mask, ZOOMS,
                                        lesion_brightness.Settings(region="brain"))
  assert np.array_equal(whole, p.mask)


def test_voxels_land_in_their_class_and_bin():
  rows = lesion_brightness.subject_rows(_prepared(), ("wmh", "stroke"),
                                        lesion_brightness.Settings(edges=(1.0, 3.0)))
  got = {(r["class"], r["z_low"]): r["voxels"] for r in rows}
  assert got == {("wmh", -math.inf): 0, ("wmh", 1.0): 3, ("wmh", 3.0): 0,
                 ("stroke", -math.inf): 0, ("stroke", 1.0): 0, ("stroke", 3.0): 2}
  whole = lesion_brightness.subject_rows(_prepared(), ("wmh",),
                                         lesion_brightness.Settings(region="brain", edges=(1.0,)))
  assert [(r["class"], r["voxels"]) for r in whole] == [("wmh", 0), ("wmh", 4)]  # edge lesion too


def test_stroke_share_counts_only_subjects_labelling_both_classes():
  settings = lesion_brightness.Settings(edges=(3.0,))
  rows = (lesion_brightness.subject_rows(_prepared("both"), ("wmh", "stroke"), settings)
          + lesion_brightness.subject_rows(_prepared("stroke_only"), ("stroke",), settings))
  low, high = lesion_brightness.share_table(rows)
  assert (low["wmh"], low["stroke"], low["stroke_share"]) == (3, 0, 0.0)
  assert (high["wmh"], high["stroke"], high["stroke_share"]) == (0, 4, 1.0)  # 2 of them shared
  table = lesion_brightness.format_tables(rows)
  assert "| stroke_only | not labelled | 3 to inf (2 voxels) |" in table
  assert "| both | -inf to 3 (3 voxels) | 3 to inf (2 voxels) |" in table


def test_command_tabulates_a_cohort_and_refuses_bad_edges(tiny_run, tmp_path):
  data = tiny_run[0]
  manifest = data / "cohort" / "subjects.csv"
  subjects = [r["subject"] for r in csv.DictReader(manifest.open())]
  out = tmp_path / "brightness.csv"
  result = run_module("lesion_brightness", f"--cohort={manifest}", "--region=brain",
                      "--edges=1,2", f"--output={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  rows = list(csv.DictReader(out.open()))
  assert len(rows) == len(subjects) * 2 * 3
  assert {r["subject"] for r in rows} == set(subjects)
  assert sum(int(r["voxels"]) for r in rows if r["class"] == "wmh") > 0
  assert "| z | WMH voxels | stroke voxels | stroke share |" in result.stdout
  refused = run_module("lesion_brightness", f"--cohort={manifest}", "--edges=2,1",
                       f"--output={tmp_path / 'no.csv'}")
  assert refused.returncode != 0 and not (tmp_path / "no.csv").exists()
  assert refused.stderr.strip().splitlines()[-1].startswith("error: --edges=2,1")
