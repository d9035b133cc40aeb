"""Scoring during training: whole-volume Dice per class of held-out (and training) subjects, with
the one prediction path (`predictor.Predictor`)."""
import dataclasses
from typing import Sequence

import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.evaluation import metrics
from uresnet_jax.inference import predictor


@dataclasses.dataclass(frozen=True)
class EvalSubject:
  """A subject ready for inference, with its expert labels on the native grid."""
  prepared: preprocess.Prepared
  truth: np.ndarray
  affine: np.ndarray  # the labels' voxel-to-world affine


def load_eval_subjects(records: Sequence[nifti_io.SubjectRecord], info: predictor.ModelInfo
                       ) -> list[EvalSubject]:
  """Preprocessed as in training (a missing brain mask is derived from `flair > 0`)."""
  subjects = []
  for record in records:
    volumes = nifti_io.load_subject(record, info.channels)
    prepared = preprocess.prepare_subject(volumes, inplane_mm=info.inplane_mm,
                                          clip_low=info.clip_low)
    subjects.append(EvalSubject(prepared, volumes.labels.data, volumes.labels.affine))
  return subjects


def evaluate_subjects(model: predictor.Predictor, subjects: Sequence[EvalSubject]) -> list[dict]:
  """One row per subject: Dice, predicted and expert volume (mL) per class, and on a subject
  without stroke the stroke the model reports anyway (mL and 26-connected components)."""
  rows = []
  for subject in subjects:
    predicted = model.predict_labels(subject.prepared)
    row = {"subject": subject.prepared.subject}
    for name, label in labelling.CLASSES.items():
      row[f"{name}_dice"] = metrics.dice(subject.truth, predicted, label)
      row[f"{name}_ml"] = labelling.volume_ml(predicted, label, subject.affine)
      row[f"{name}_expert_ml"] = labelling.volume_ml(subject.truth, label, subject.affine)
    row.update(metrics.false_stroke(subject.truth, predicted, subject.affine))
    rows.append(row)
  return rows


def summarize(rows: Sequence[dict]) -> dict:
  """Per class: mean and std of Dice over the subjects where it is defined (the class in the
  expert labels or the prediction; NaN: in neither), and the mean over the subjects whose expert
  labels hold it (`dice_mean_expert`); the false stroke (median and max mL, median components)
  over the stroke-free subjects."""
  summary = {}
  for name in labelling.CLASSES:
    values = np.array([r[f"{name}_dice"] for r in rows], float)
    expert = np.array([r[f"{name}_expert_ml"] > 0 for r in rows], bool)
    with_class = values[expert]
    values = values[np.isfinite(values)]
    summary[name] = {
        "dice_mean": float(values.mean()) if values.size else float("nan"),
        "dice_std": float(values.std()) if values.size else float("nan"),
        "n_subjects": int(values.size),
        "dice_mean_expert": float(with_class.mean()) if with_class.size else float("nan"),
        "n_expert": int(with_class.size),
    }
  summary["false_stroke"] = summarize_false_stroke(rows)
  return summary


def summarize_false_stroke(rows: Sequence[dict]) -> dict:
  ml = np.array([r.get("false_stroke_ml", np.nan) for r in rows], float)
  parts = np.array([r.get("false_stroke_components", np.nan) for r in rows], float)
  free = np.isfinite(ml)
  nan = float("nan")
  return {"median_ml": float(np.median(ml[free])) if free.any() else nan,
          "max_ml": float(ml[free].max()) if free.any() else nan,
          "median_components": float(np.median(parts[free])) if free.any() else nan,
          "n_subjects": int(free.sum())}


def format_summary(summary: dict) -> str:
  text = ", ".join(
      f"{name} Dice {s['dice_mean']:.3f} ({s['dice_std']:.3f}) n={s['n_subjects']}"
      for name, s in summary.items() if name in labelling.CLASSES)
  f = summary.get("false_stroke")
  if f and f["n_subjects"]:
    text += (f", false stroke {f['median_ml']:.2f} mL median, {f['max_ml']:.2f} max "
             f"n={f['n_subjects']}")
  return text
