"""Cross-validation as the paper reports it: one model per fold, every subject scored by the model
that did not train on it, the per-subject results pooled into one evaluation, beside the classical
baseline (`baseline.py`) fitted on the same training folds.

Run: python -m uresnet_jax.crossval --config=configs/demo.py --workdir=runs/demo_cv
Writes <workdir>/fold<k>/ (a training run each, resumable), <workdir>/baseline.json (the threshold
each fold's training subjects chose) and <workdir>/pooled/ (metrics.csv for uResNet,
metrics_baseline.csv, summary.json with the paired Wilcoxon tests, report.md and figures).
"""
import json
import pathlib
from typing import Sequence

import ml_collections
import numpy as np

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.evaluation import baseline, labelled_cohort
from uresnet_jax.inference import predictor
from uresnet_jax.model import run_folder
from uresnet_jax.training import held_out, loop, scoring


def fold_config(config: ml_collections.ConfigDict, fold: int) -> ml_collections.ConfigDict:
  config = config.copy_and_resolve_references()
  config.data.eval_fold = fold
  return config


def _baseline_region(record: nifti_io.SubjectRecord, prepared: preprocess.Prepared,
                     wm_threshold: float) -> np.ndarray:
  wm = None
  if record.wm is not None:
    volume = nifti_io.load_nifti(record.wm, kind="image", subject=record.subject)
    wm = preprocess.to_grid(volume.data, prepared.geometry, order=1)
  return baseline.region(prepared.mask, wm, wm_threshold)


def score_fold(run: pathlib.Path, config: ml_collections.ConfigDict,
               records: Sequence[nifti_io.SubjectRecord]
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
  """For a fold's run: its model's labels (native grid) for its held-out subjects, the baseline's
  labels for them, and the baseline threshold fitted on the fold's training subjects. The folds are
  the run's own (experiment.json); every subject is read and preprocessed once."""
  experiment = run_folder.read_experiment(run)
  if experiment is None:
    raise InputError(f"{run}: no {run_folder.EXPERIMENT}; the fold's run has not started")
  fold_of = experiment["fold_of_subject"]
  model, _ = predictor.from_workdir(run)
  by_name = {r.subject: r for r in records}
  in_fold = [r for r in records if r.subject in fold_of]
  subjects = scoring.load_eval_subjects(in_fold, model.info)
  region = {s.prepared.subject: _baseline_region(by_name[s.prepared.subject], s.prepared,
                                                 config.baseline.wm_threshold) for s in subjects}
  train_set, test_set = held_out.split(subjects, fold_of, config.data.eval_fold,
                                       lambda s: s.prepared.subject)
  threshold = baseline.fit([(s.prepared.image, region[s.prepared.subject], s.prepared.labels)
                            for s in train_set], config.baseline.thresholds)
  predicted = {s.prepared.subject: model.predict_labels(s.prepared) for s in test_set}
  classical = {s.prepared.subject: preprocess.to_native(baseline.segment(
      s.prepared.image, region[s.prepared.subject], threshold), s.prepared.geometry)
      for s in test_set}
  return predicted, classical, threshold


def cross_validate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Trains (or resumes) every fold, then pools; returns the pooled summary."""
  workdir = pathlib.Path(workdir)
  folds = range(config.data.num_folds)
  for fold in folds:
    print(f"fold {fold} of {config.data.num_folds}")
    loop.train_and_evaluate(fold_config(config, fold), str(workdir / f"fold{fold}"))
  records = [r for r in nifti_io.read_cohort(config.data.cohort) if r.labels is not None]
  predicted: dict[str, np.ndarray] = {}
  classical: dict[str, np.ndarray] = {}
  thresholds = {}
  for fold in folds:
    model_labels, baseline_labels, thresholds[f"fold{fold}"] = score_fold(
        workdir / f"fold{fold}", fold_config(config, fold), records)
    predicted.update(model_labels)
    classical.update(baseline_labels)
  atomic.write_text(workdir / "baseline.json", json.dumps({"thresholds": thresholds}, indent=1))
  scored = [r for r in records if r.subject in predicted and r.subject in classical]
  return labelled_cohort.evaluate_cohort(config.data.cohort, None, workdir / "pooled",
                                  predicted={"uresnet": predicted, "baseline": classical},
                                  records=scored)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import cli
  workdir = flags.DEFINE_string("workdir", None, "Folder for fold<k>/ runs and pooled/ results.")
  config_flag = config_flags.DEFINE_config_file("config", None, "Training configuration file.",
                                                lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])

  def main() -> None:
    config = cli.get_config(config_flag)
    loop.use_compilation_cache(config)
    summary = cross_validate(config, workdir.value)
    print(json.dumps({c: s["metrics"]["dice"] for c, s in summary["methods"]["uresnet"].items()},
                     indent=2))
    print(f"pooled over {summary['n_subjects']} subjects: {pathlib.Path(workdir.value) / 'pooled'}")

  cli.run_cli(main, logging.WARNING)

