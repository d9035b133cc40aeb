"""Chooses a training run's stroke threshold (config.predict.stroke_threshold) on a calibration
cohort: phantom subjects drawn with the run's training ranges but a seed of their own, so neither
the training subjects nor the held-out domains are used.

For each threshold, stroke lesions (26-connected) whose mean stroke probability falls below it are
dropped, and the stroke Dice is averaged over the subjects where it is defined: a stroke-free
subject with any stroke left scores 0, so the average weighs missed strokes against false ones.
The threshold with the highest average (the lowest on a tie) is chosen; `write` stores it in the
run's config.json, from which `export` copies it into the model. stroke_calibration.json in the
run holds the whole table and the run's held-out fold scored at the chosen threshold.
"""
import os
import pathlib
from typing import Sequence

import ml_collections
import numpy as np

from uresnet_jax import phantom
from uresnet_jax.common import labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.evaluation import metrics
from uresnet_jax.inference import lesions, predictor
from uresnet_jax.model import run_folder
from uresnet_jax.training import held_out, scoring

THRESHOLDS = (0.0, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def threshold_table(subjects: Sequence[tuple[np.ndarray, np.ndarray, float]],
                    thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
  """Per threshold, the stroke Dice averaged over (labels, probabilities, voxel mL) subjects and
  the false stroke on the stroke-free ones."""
  table = []
  for threshold in thresholds:
    dice, false_ml = [], []
    for truth, probabilities, voxel_ml in subjects:
      labels = np.argmax(probabilities, axis=-1).astype(np.uint8)
      unsure = lesions.unconfident_stroke(labels, probabilities[..., labelling.STROKE], threshold)
      labels[unsure] = 0
      dice.append(metrics.dice(truth, labels, labelling.STROKE))
      if not (truth == labelling.STROKE).any():
        false_ml.append(float((labels == labelling.STROKE).sum()) * voxel_ml)
    table.append({"threshold": threshold, "stroke_dice": float(np.nanmean(dice)),
                  "false_stroke_median_ml": float(np.median(false_ml)) if false_ml else None,
                  "false_stroke_max_ml": max(false_ml) if false_ml else None,
                  "stroke_free_subjects": len(false_ml)})
  return table


def best_threshold(table: Sequence[dict]) -> float:
  """The threshold of the highest stroke Dice, the lowest on a tie."""
  return max(table, key=lambda row: (row["stroke_dice"], -row["threshold"]))["threshold"]


def calibrate(workdir: str | pathlib.Path, subjects: int = 12, seed: int = 2,
              root: str | pathlib.Path = "data/calibration", write: bool = False) -> dict:
  """Calibrates the run in `workdir` (see the module's docstring); returns what it writes."""
  workdir = pathlib.Path(workdir)
  config = predictor.read_run_config(workdir)
  if seed in (config.seed, config.get("domains", {}).get("seed")):
    raise InputError(f"calibration seed {seed}: must differ from the run's and its domains' seeds")
  config.phantom.num_workers = min(config.phantom.num_workers, os.cpu_count() or 1)
  cohort = phantom.fingerprint(seed, config.phantom)[:12]
  manifest = phantom.write_cohort(pathlib.Path(root) / cohort, subjects, seed, config.phantom)
  options = config.predict
  options.stroke_threshold = 0.0
  model = predictor.load_model(workdir, options=options)
  scored = []
  for record in nifti_io.read_cohort(manifest):
    prepared = model.load(record)
    probabilities = model.grid_probabilities(prepared.image, prepared.mask)
    scored.append((prepared.labels, probabilities,
                   float(np.prod(prepared.geometry.grid_zooms)) / 1000))
  table = threshold_table(scored)
  options.stroke_threshold = best_threshold(table)
  result = {"cohort": str(manifest.parent), "seed": seed, "subjects": len(scored),
            "chosen": options.stroke_threshold, "table": table,
            "held_out_fold": _held_out_fold(workdir, config, options)}
  run_folder.write_calibration(workdir, result)
  if write:
    run_folder.record_stroke_threshold(workdir, result["chosen"], config.predict.to_dict())
  return result


def _held_out_fold(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                   options: ml_collections.ConfigDict) -> dict:
  """The run's held-out fold scored at the chosen threshold (training scored it without one)."""
  model = predictor.load_model(workdir, options=options)
  return scoring.summarize(scoring.evaluate_subjects(
      model, scoring.load_eval_subjects(held_out.held_out_records(workdir, config), model.info)))
