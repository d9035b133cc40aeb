"""Cross-validation: one run per fold, each subject scored by the model that did not see it, pooled."""
import csv
import json
import subprocess
import sys

from conftest import ROOT, subprocess_env


def test_two_folds_are_trained_and_every_subject_is_pooled_from_its_held_out_model(tiny_run,
                                                                                    tmp_path):
  data = tiny_run[0]
  args = [sys.executable, "-m", "uresnet_jax.crossval", "--config=configs/tiny.py",
          f"--workdir={tmp_path / 'cv'}", f"--config.data.cohort={data / 'cohort'}",
          f"--config.data.records_dir={data / 'tfds'}",
          "--config.train.epochs=1", "--config.train.decay_epoch=1"]  # one epoch: the folds, not the fit
  env = subprocess_env()
  result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  cv = tmp_path / "cv"
  folds = {}
  for k in (0, 1):
    config = json.loads((cv / f"fold{k}" / "config.json").read_text())
    assert config["data"]["eval_fold"] == k
    folds[k] = json.loads((cv / f"fold{k}" / "experiment.json").read_text())["fold_of_subject"]
  assert folds[0] == folds[1]  # the same split, the roles swapped
  with open(data / "cohort" / "subjects.csv") as f:
    everyone = sorted(r["subject"] for r in csv.DictReader(f))
  summary = json.loads((cv / "pooled" / "summary.json").read_text())
  assert sorted(summary["subjects"]) == everyone == sorted(folds[0])
  with open(cv / "pooled" / "metrics.csv") as f:
    assert sorted({r["subject"] for r in csv.DictReader(f)}) == everyone
  assert set(summary["methods"]) == {"uresnet", "baseline"} and "comparison" in summary
  thresholds = json.loads((cv / "baseline.json").read_text())["thresholds"]
  assert set(thresholds) == {"fold0", "fold1"} and all(0.5 <= t <= 4.0 for t in thresholds.values())
  with open(cv / "pooled" / "metrics_baseline.csv") as f:
    stroke = [r for r in csv.DictReader(f) if r["class"] == "stroke"]
  assert stroke and all(r["dice"] in ("0.0", "nan") for r in stroke)  # it cannot find strokes
  # A finished fold resumed by cross_validate: test_reproduce's grid, whose uresnet cell trains
  # fold 0 first (Figure 3's curves) and then cross-validates over it.
