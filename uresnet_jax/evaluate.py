"""Whole-volume evaluation of held-out subjects: labels on the native grid, Dice per class, files."""
import csv
import dataclasses
import json
import os
import pathlib
import shutil
from typing import Callable, Sequence

import numpy as np
import ml_collections

from uresnet_jax import inference, metrics, nifti_io, preprocess


@dataclasses.dataclass(frozen=True)
class EvalSubject:
  """A held-out subject ready for inference, with its expert labels on the native grid."""
  prepared: preprocess.Prepared
  truth: np.ndarray
  zooms: tuple[float, float, float]


def load_eval_subjects(
    records: Sequence[nifti_io.SubjectRecord], config: ml_collections.ConfigDict
) -> list[EvalSubject]:
  subjects = []
  for record in records:
    volumes = nifti_io.load_subject(record, config.data.channels)
    prepared = preprocess.prepare_subject(
        volumes, inplane_mm=config.preprocess.inplane_mm, clip_low=config.preprocess.clip_low
    )
    subjects.append(EvalSubject(prepared, volumes.labels.data, volumes.labels.zooms))
  return subjects


def evaluate_subjects(
    predict_slices: Callable[[np.ndarray], np.ndarray], subjects: Sequence[EvalSubject],
    batch_slices: int, pad_value: float,
) -> list[dict]:
  """One row per subject: Dice, predicted and expert volume (mL) per class."""
  rows = []
  for subject in subjects:
    predicted = inference.predict_native(predict_slices, subject.prepared, batch_slices, pad_value)
    row = {"subject": subject.prepared.subject}
    for name, label in metrics.CLASSES.items():
      row[f"{name}_dice"] = metrics.dice(subject.truth, predicted, label)
      row[f"{name}_ml"] = metrics.volume_ml(predicted, label, subject.zooms)
      row[f"{name}_expert_ml"] = metrics.volume_ml(subject.truth, label, subject.zooms)
    rows.append(row)
  return rows


def summarize(rows: Sequence[dict]) -> dict:
  """Per class: mean and std of Dice over the subjects where it is defined (NaN: class absent)."""
  summary = {}
  for name in metrics.CLASSES:
    values = np.array([r[f"{name}_dice"] for r in rows], float)
    values = values[np.isfinite(values)]
    summary[name] = {
        "dice_mean": float(values.mean()) if values.size else float("nan"),
        "dice_std": float(values.std()) if values.size else float("nan"),
        "n_subjects": int(values.size),
    }
  return summary


def write_results(rows: Sequence[dict], summary: dict, eval_dir: pathlib.Path, step: int) -> pathlib.Path:
  """Writes <eval_dir>/<step>/{subjects.csv,summary.json} and refreshes <eval_dir>/latest."""
  out = pathlib.Path(eval_dir) / str(step)
  tmp = pathlib.Path(eval_dir) / f".{step}.tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  with open(tmp / "subjects.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  (tmp / "summary.json").write_text(json.dumps({"step": step, **summary}, indent=2))
  shutil.rmtree(out, ignore_errors=True)
  os.replace(tmp, out)
  latest_tmp = pathlib.Path(eval_dir) / ".latest.tmp"
  shutil.rmtree(latest_tmp, ignore_errors=True)
  shutil.copytree(out, latest_tmp)
  shutil.rmtree(pathlib.Path(eval_dir) / "latest", ignore_errors=True)
  os.replace(latest_tmp, pathlib.Path(eval_dir) / "latest")
  return out


def format_summary(summary: dict) -> str:
  return ", ".join(
      f"{name} Dice {s['dice_mean']:.3f} ({s['dice_std']:.3f}) n={s['n_subjects']}"
      for name, s in summary.items()
  )
