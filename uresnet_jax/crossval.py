"""Cross-validation as the paper reports it: one model per fold, every subject scored by the model
that did not train on it, the per-subject results pooled into one evaluation.

Run: python -m uresnet_jax.crossval --config=configs/demo.py --workdir=runs/demo_cv
Writes <workdir>/fold<k>/ (a training run each, resumable) and <workdir>/pooled/ (metrics.csv,
summary.json, report.md and figures over all subjects, as `evaluate` writes them).
"""
import json
import pathlib
from typing import Sequence

import ml_collections
import numpy as np

from uresnet_jax import checkpointing, evaluate, nifti_io, predictor, scoring, train
from uresnet_jax.errors import InputError


def fold_config(config: ml_collections.ConfigDict, fold: int) -> ml_collections.ConfigDict:
  config = config.copy_and_resolve_references()
  config.data.eval_fold = fold
  return config


def held_out_labels(workdir: pathlib.Path, records: Sequence[nifti_io.SubjectRecord]
                    ) -> dict[str, np.ndarray]:
  """The labels a fold's run predicts for its own held-out subjects (from its experiment.json)."""
  config = predictor.read_run_config(workdir)
  experiment = checkpointing.read_experiment(workdir)
  if experiment is None:
    raise InputError(f"{workdir}: no experiment.json; the fold's run has not started")
  held_out = [r for r in records
              if experiment["fold_of_subject"].get(r.subject) == config.data.eval_fold]
  model, _ = predictor.from_workdir(workdir)
  subjects = scoring.load_eval_subjects(held_out, model.info)
  return {s.prepared.subject: model.predict_labels(s.prepared) for s in subjects}


def cross_validate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Trains (or resumes) every fold, then pools; returns the pooled summary."""
  workdir = pathlib.Path(workdir)
  folds = range(config.data.num_folds)
  for fold in folds:
    print(f"fold {fold} of {config.data.num_folds}")
    train.train_and_evaluate(fold_config(config, fold), str(workdir / f"fold{fold}"))
  records = [r for r in nifti_io.read_cohort(config.data.cohort) if r.labels is not None]
  predicted: dict[str, np.ndarray] = {}
  for fold in folds:
    predicted.update(held_out_labels(workdir / f"fold{fold}", records))
  scored = [r for r in records if r.subject in predicted]
  return evaluate.evaluate_cohort(config.data.cohort, None, workdir / "pooled",
                                  predicted={"uresnet": predicted}, records=scored)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import app, flags, logging
  from ml_collections import config_flags
  from uresnet_jax import errors
  workdir = flags.DEFINE_string("workdir", None, "Folder for fold<k>/ runs and pooled/ results.")
  config_flag = config_flags.DEFINE_config_file("config", None, "Training configuration file.",
                                                lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])

  @errors.exit_on_input_error
  def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    config = errors.get_config(config_flag)
    if config.compilation_cache_dir:
      import jax
      jax.config.update("jax_compilation_cache_dir", config.compilation_cache_dir)
    summary = cross_validate(config, workdir.value)
    print(json.dumps({c: s["metrics"]["dice"] for c, s in summary["methods"]["uresnet"].items()},
                     indent=2))
    print(f"pooled over {summary['n_subjects']} subjects: {pathlib.Path(workdir.value) / 'pooled'}")

  app.run(main, flags_parser=errors.parse_flags)


if __name__ == "__main__":
  run()
