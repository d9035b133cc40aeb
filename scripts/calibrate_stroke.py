"""Chooses a training run's stroke threshold (config.predict.stroke_threshold) on a calibration
cohort: phantom subjects drawn with the run's training ranges but a seed of their own, so neither
the training subjects nor the held-out domains are used.

  python scripts/calibrate_stroke.py --workdir=runs/release [--write]

For each threshold, stroke lesions (26-connected) whose mean stroke probability falls below it are
dropped, and the stroke Dice is averaged over the subjects where it is defined: a stroke-free
subject with any stroke left scores 0, so the average weighs missed strokes against false ones.
The threshold with the highest average (the lowest on a tie) is chosen; --write stores it in the
run's config.json, from which `export` copies it into the model. stroke_calibration.json in the
run holds the whole table and the run's held-out fold scored at the chosen threshold.
"""
import json
import os
import pathlib
import sys

import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # configs/ imports configs.*

from uresnet_jax import phantom
from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.cli import run_cli
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.evaluation import metrics
from uresnet_jax.inference import lesions, predictor
from uresnet_jax.training import held_out, scoring

_WORKDIR = flags.DEFINE_string("workdir", None, "The training run.")
_SUBJECTS = flags.DEFINE_integer("subjects", 12, "Calibration subjects.")
_SEED = flags.DEFINE_integer("seed", 2, "Their phantom seed (not the run's nor its domains').")
_ROOT = flags.DEFINE_string("root", "data/calibration", "Where the calibration cohort is kept.")
_WRITE = flags.DEFINE_bool("write", False, "Store the chosen threshold in the run's config.json.")
flags.mark_flags_as_required(["workdir"])

THRESHOLDS = (0.0, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
STROKE = labelling.STROKE


def main() -> None:
  workdir = pathlib.Path(_WORKDIR.value)
  config = predictor.read_run_config(workdir)
  if _SEED.value in (config.seed, config.get("domains", {}).get("seed")):
    raise InputError(f"--seed={_SEED.value}: must differ from the run's and its domains' seeds")
  config.phantom.num_workers = min(config.phantom.num_workers, os.cpu_count() or 1)
  cohort = phantom.fingerprint(_SEED.value, config.phantom)[:12]
  manifest = phantom.write_cohort(pathlib.Path(_ROOT.value) / cohort, _SUBJECTS.value,
                                  _SEED.value, config.phantom)
  options = config.predict
  options.stroke_threshold = 0.0
  model = predictor.load_model(workdir, options=options)
  subjects = []
  for record in nifti_io.read_cohort(manifest):
    prepared = model.load(record)
    probabilities = model.grid_probabilities(prepared.image, prepared.mask)
    subjects.append((prepared.labels, probabilities,
                     float(np.prod(prepared.geometry.grid_zooms)) / 1000))
  table = []
  for threshold in THRESHOLDS:
    dice, false_ml = [], []
    for truth, probabilities, voxel_ml in subjects:
      labels = np.argmax(probabilities, axis=-1).astype(np.uint8)
      labels[lesions.unconfident_stroke(labels, probabilities[..., STROKE], threshold)] = 0
      dice.append(metrics.dice(truth, labels, STROKE))
      if not (truth == STROKE).any():
        false_ml.append(float((labels == STROKE).sum()) * voxel_ml)
    table.append({"threshold": threshold, "stroke_dice": float(np.nanmean(dice)),
                  "false_stroke_median_ml": float(np.median(false_ml)) if false_ml else None,
                  "false_stroke_max_ml": max(false_ml) if false_ml else None,
                  "stroke_free_subjects": len(false_ml)})
    print(json.dumps(table[-1]))
  best = max(table, key=lambda row: (row["stroke_dice"], -row["threshold"]))
  print(f"chosen stroke_threshold: {best['threshold']}")
  options.stroke_threshold = best["threshold"]
  held_out = _held_out_fold(workdir, config, options)
  print(f"held-out fold at {best['threshold']}: {scoring.format_summary(held_out)}")
  atomic.write_text(workdir / "stroke_calibration.json", json.dumps(
      {"cohort": str(manifest.parent), "seed": _SEED.value, "subjects": len(subjects),
       "chosen": best["threshold"], "table": table, "held_out_fold": held_out}, indent=1))
  if _WRITE.value:
    stored = json.loads((workdir / "config.json").read_text())
    stored.setdefault("predict", config.predict.to_dict())["stroke_threshold"] = best["threshold"]
    atomic.write_text(workdir / "config.json", json.dumps(stored, indent=2))


def _held_out_fold(workdir: pathlib.Path, config, options) -> dict:
  """The run's held-out fold scored at the chosen threshold (training scored it without one)."""
  model = predictor.load_model(workdir, options=options)
  return scoring.summarize(scoring.evaluate_subjects(
      model, scoring.load_eval_subjects(held_out.held_out_records(workdir, config), model.info)))


if __name__ == "__main__":
  run_cli(main)
