"""The evaluation CLI: label maps scored against expert labels, with a run's model or saved files."""
import csv
import json
import pathlib
import subprocess

import numpy as np
import pytest
from browser import Browser, look_at_report
from conftest import run_module

from uresnet_jax.data import nifti_io
from uresnet_jax.evaluation import labelled_cohort, metrics


def _tiny_cohort(tmp_path: pathlib.Path, icv: bool = True) -> tuple[pathlib.Path, pathlib.Path]:
  """Three 16x16x4 subjects (WMH blobs, one stroke) and predictions = perturbed truth."""
  cohort, preds = tmp_path / "cohort", tmp_path / "preds"
  cohort.mkdir()
  preds.mkdir()
  affine = np.diag([1.0, 1.0, 3.0, 1.0])
  lines = ["subject,flair,labels,age,sex,fazekas_pv,fazekas_deep,mmse" + (",icv_ml" if icv else "")]
  rng = np.random.default_rng(0)
  for i in range(3):
    labels = np.zeros((16, 16, 4), np.uint8)
    labels[3:7 + i, 3:8, 1:3] = 1
    labels[10:12, 10:10 + i, 2] = 2
    pred = labels.copy()
    pred[3:5, 3:5, 1] = 0
    pred[12, 12, 3] = 1
    flair = rng.normal(size=labels.shape).astype(np.float32) + labels
    name = f"s{i}"
    nifti_io.save_nifti(cohort / f"{name}_flair.nii.gz", flair, affine)
    nifti_io.save_nifti(cohort / f"{name}_labels.nii.gz", labels, affine)
    nifti_io.save_nifti(preds / f"{name}_labels.nii.gz", pred, affine)
    lines.append(f"{name},{name}_flair.nii.gz,{name}_labels.nii.gz,{60 + 10 * i},{'MF'[i % 2]},"
                 f"{i},{i + 1},{29 - i}" + (f",{1400 + 50 * i}" if icv else ""))
  (cohort / "subjects.csv").write_text("\n".join(lines) + "\n")
  return cohort, preds


def _cli(*args: str) -> subprocess.CompletedProcess:
  return run_module("evaluate", *args)


def _with_labelled_column(cohort: pathlib.Path, values: dict[str, str]) -> None:
  """The manifest with a `labelled` column: `values` by subject, empty cells for the others."""
  header, *rows = (cohort / "subjects.csv").read_text().splitlines()
  rows = [f"{r},{values.get(r.split(',')[0], '')}" for r in rows]
  (cohort / "subjects.csv").write_text("\n".join([f"{header},labelled", *rows]) + "\n")


def _add_stroke_only_subject(cohort: pathlib.Path, preds: pathlib.Path) -> None:
  """s3, as in a stroke data set (ISLES): 32 expert stroke voxels, its WMH unlabelled; the model
  calls 16 of them stroke, 16 WMH, and WMH elsewhere."""
  affine = np.diag([1.0, 1.0, 3.0, 1.0])
  labels = np.zeros((16, 16, 4), np.uint8)
  labels[4:8, 4:8, 1:3] = 2
  pred = labels.copy()
  pred[4:8, 6:8, 1:3] = 1
  pred[1:3, 12:14, 0] = 1
  nifti_io.save_nifti(cohort / "s3_flair.nii.gz", labels.astype(np.float32), affine)
  nifti_io.save_nifti(cohort / "s3_labels.nii.gz", labels, affine)
  nifti_io.save_nifti(preds / "s3_labels.nii.gz", pred, affine)
  with open(cohort / "subjects.csv", "a") as f:
    f.write("s3,s3_flair.nii.gz,s3_labels.nii.gz,75,F,1,1,27,1500\n")


def test_cli_scores_a_tiny_cohort_and_writes_every_output(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path)
  out = tmp_path / "out"
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--predictions2={cohort}",
                f"--output={out}", "--challenge_mode")
  assert result.returncode == 0, result.stderr
  assert "Traceback" not in result.stderr
  assert {"metrics.csv", "summary.json", "report.md", "volumes.png", "bland_altman.png",
          "overlays.png"} <= {p.name for p in out.iterdir()}
  with open(out / "metrics.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == list(labelled_cohort.METRICS_COLUMNS)
  assert [(r["subject"], r["class"]) for r in rows] == [
      (s, c) for s in ("s0", "s1", "s2") for c in ("wmh", "stroke")]
  s0 = metrics.subject_metrics(
      nifti_io.load_nifti(cohort / "s0_labels.nii.gz", kind="labels").data,
      nifti_io.load_nifti(preds / "s0_labels.nii.gz", kind="labels").data, np.diag([1, 1, 3, 1.0]))
  assert float(rows[0]["dice"]) == pytest.approx(s0["wmh"]["dice"])
  assert float(rows[0]["expert_volume_pct_icv"]) == pytest.approx(
      100 * s0["wmh"]["expert_volume_ml"] / 1400)
  assert rows[1]["hd95_mm"] == "nan"  # s0 has no stroke
  assert {r["expert_labelled"] for r in rows} == {"yes"}  # no labelled column: both classes
  assert rows[1]["called_stroke_pct"] == "nan" and float(rows[3]["called_stroke_pct"]) == 100.0
  assert float(rows[0]["called_none_pct"]) == pytest.approx(100 * 4 / 40)  # s0: 4 of 40 missed
  summary = json.loads((out / "summary.json").read_text())
  assert summary["volume_unit"] == "% ICV" and summary["challenge_mode"]
  assert summary["not_labelled"] == {"wmh": [], "stroke": []}
  assert summary["methods"]["preds"]["stroke"]["metrics"]["called_stroke_pct"]["n"] == 2
  assert "comparison" in summary and "fazekas_total" in summary["expert"]["wmh"]["clinical"]
  report = (out / "report.md").read_text()
  assert "| Method | WMH Dice |" in report and "Wilcoxon" in report


def test_a_stroke_only_subject_is_not_labelled_for_wmh_and_left_out_of_its_means(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path)
  _add_stroke_only_subject(cohort, preds)
  _with_labelled_column(cohort, {"s3": "stroke"})
  out = tmp_path / "out"
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  with open(out / "metrics.csv") as f:
    rows = {(r["subject"], r["class"]): r for r in csv.DictReader(f)}
  wmh, stroke = rows[("s3", "wmh")], rows[("s3", "stroke")]
  assert wmh["expert_labelled"] == "no"
  assert all(wmh[k] == "nan" for k in labelled_cohort.METRICS_COLUMNS[3:])  # never a Dice of 0
  assert stroke["expert_labelled"] == "yes" and float(stroke["dice"]) == pytest.approx(2 / 3)
  assert [float(stroke[f"called_{c}_pct"]) for c in ("stroke", "wmh", "none")] == [50, 50, 0]
  assert stroke["false_stroke_ml"] == "nan"
  summary = json.loads((out / "summary.json").read_text())
  assert summary["subjects"] == ["s0", "s1", "s2", "s3"]
  assert summary["not_labelled"] == {"wmh": ["s3"], "stroke": []}
  method = summary["methods"]["preds"]
  others = [float(rows[(s, "wmh")]["dice"]) for s in ("s0", "s1", "s2")]
  assert method["wmh"]["metrics"]["dice"]["n"] == 3
  assert method["wmh"]["metrics"]["dice"]["mean"] == pytest.approx(np.mean(others))
  assert method["wmh"]["agreement"]["n"] == 3
  assert method["stroke"]["metrics"]["dice"]["n"] == 3  # s1, s2 and s3 hold stroke
  assert method["stroke"]["metrics"]["called_wmh_pct"]["mean"] == pytest.approx(50 / 3)
  report = (out / "report.md").read_text()
  assert "WMH not labelled on 1 subject(s) (s3)" in report
  assert "| Stroke | " in report and "called nothing" in report
  assert "(expert: not labelled)" in (out / "report.html").read_text()  # the model's WMH, shown


def test_a_bad_labelled_value_is_refused_in_one_line(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path)
  _with_labelled_column(cohort, {"s1": "WMH only"})
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--output={tmp_path / 'out'}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().count("\n") == 0
  assert result.stderr.startswith(f"error: {cohort / 'subjects.csv'}: line 3 (s1): labelled "
                                  "'WMH only' is not one of wmh+stroke, wmh, stroke")
  assert not (tmp_path / "out").exists()
  _with_labelled_column(cohort, {"s1": "stroke"})  # s1's labels hold WMH: it is skipped
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--output={tmp_path / 'out'}")
  assert result.returncode == 0, result.stderr
  assert any(l.startswith("warning: s1: ") and "wmh (label 1)" in l and "labelled=stroke" in l
             and l.endswith("subject skipped") for l in result.stderr.splitlines())
  assert json.loads((tmp_path / "out" / "summary.json").read_text())["subjects"] == ["s0", "s2"]


def test_cli_skips_bad_subjects_with_one_line_messages(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path, icv=False)
  nifti_io.save_nifti(preds / "s1_labels.nii.gz", np.zeros((16, 16, 5), np.uint8), np.eye(4))
  (preds / "s2_labels.nii.gz").write_bytes((cohort / "s2_labels.nii.gz").read_bytes()[:60])
  nifti_io.save_nifti(preds / "zz_labels.nii.gz", np.zeros((2, 2, 2), np.uint8), np.eye(4))
  out = tmp_path / "out"
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  assert "Traceback" not in result.stderr
  warnings = [l for l in result.stderr.splitlines() if l.startswith("warning:")]
  assert any("s1" in l and "shape" in l for l in warnings)
  assert any("s2" in l for l in warnings)
  assert any("zz_labels" in l and "no subject" in l for l in warnings)
  assert any("ICV" in l and "mL" in l for l in warnings)
  summary = json.loads((out / "summary.json").read_text())
  assert summary["subjects"] == ["s0"] and summary["volume_unit"] == "mL"


def test_cli_fails_cleanly_when_nothing_can_be_scored(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path)
  for i in range(3):
    nifti_io.save_nifti(preds / f"s{i}_labels.nii.gz", np.full((16, 16, 4), 3, np.uint8),
                        np.diag([1.0, 1.0, 3.0, 1.0]))
  out = tmp_path / "out"
  out.mkdir()
  (out / "keep.txt").write_text("previous report")
  result = _cli(f"--cohort={cohort}", f"--predictions={preds}", f"--output={out}")
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.splitlines()[-1].startswith("error: ")
  assert any("labels must be in {0, 1, 2}" in l for l in result.stderr.splitlines())
  assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the old output is left untouched
  assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
  missing = _cli(f"--cohort={cohort}", f"--predictions={tmp_path / 'none'}", f"--output={out}")
  assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0


def test_workdir_model_is_scored_on_another_cohort_or_its_held_out_fold(tiny_run, tmp_path):
  data, workdir, _, _ = tiny_run
  cohort = data / "cohort"
  with open(cohort / "subjects.csv") as f:
    rows = list(csv.DictReader(f))
  config = json.loads((workdir / "config.json").read_text())
  fold_file = next((data / "tfds").rglob("metadata.json"))
  fold_of = json.loads(fold_file.read_text())["fold_of_subject"]
  held_out = sorted(s for s, k in fold_of.items() if k == config["data"]["eval_fold"])
  trained_on = sorted(s for s, k in fold_of.items() if k != config["data"]["eval_fold"])
  other = tmp_path / "other.csv"  # another cohort: one training subject, paths made absolute
  row = next(r for r in rows if r["subject"] == trained_on[0])
  other.write_text("subject,flair,labels,brain_mask\n" + ",".join(
      [row["subject"]] + [str(cohort / row[c]) for c in ("flair", "labels", "brain_mask")]) + "\n")
  scored = _cli(f"--workdir={workdir}", f"--cohort={other}", f"--output={tmp_path / 'o'}")
  assert scored.returncode == 0, scored.stderr
  assert json.loads((tmp_path / "o" / "summary.json").read_text())["subjects"] == [trained_on[0]]
  own = _cli(f"--workdir={workdir}", f"--output={tmp_path / 'h'}")
  assert own.returncode == 0, own.stderr
  assert sorted(json.loads((tmp_path / "h" / "summary.json").read_text())["subjects"]) == held_out
  import shutil  # the run's own cohort, moved: still only its held-out fold is scored
  shutil.copytree(cohort, tmp_path / "moved")
  moved = _cli(f"--workdir={workdir}", f"--cohort={tmp_path / 'moved'}", f"--output={tmp_path / 'm'}")
  assert moved.returncode == 0, moved.stderr
  assert sorted(json.loads((tmp_path / "m" / "summary.json").read_text())["subjects"]) == held_out
  experiment = json.loads((workdir / "experiment.json").read_text())
  assert experiment["fold_of_subject"] == fold_of


def test_evaluate_shows_the_expert_labels_beside_the_model(tmp_path):
  cohort, preds = _tiny_cohort(tmp_path)
  labelled_cohort.evaluate_cohort(str(cohort / "subjects.csv"), {"uresnet": preds}, tmp_path / "out")
  with Browser() as browser:
    seen = look_at_report(browser, tmp_path / "out" / "report.html")
    views = browser.evaluate("[...document.querySelectorAll('section.scan figure')]"
                             ".map(f => f.querySelectorAll('.view').length)")
  assert [s["name"] for s in seen["scans"]] == ["s0", "s1", "s2"]
  assert all(s["images"] > 0 and s["decoded"] == s["images"] for s in seen["scans"])
  assert views and set(views) == {2}  # model and expert, side by side, on every slice
  assert (seen["with_overlay"] != seen["without_overlay"]).any() and seen["errors"] == []
