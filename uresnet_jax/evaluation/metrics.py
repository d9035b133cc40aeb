"""Segmentation metrics on whole label volumes: pure functions of label arrays (and the affine).

The per-subject metrics follow the MICCAI 2017 WMH segmentation challenge evaluation: Dice, the 95th
percentile Hausdorff distance between in-plane boundaries in world mm, the absolute volume
difference (%), and lesion-wise recall / F1 over 26-connected components.
"""
import numpy as np
from scipy import ndimage, spatial

from uresnet_jax.common.labelling import BACKGROUND, CLASSES, STROKE, voxel_volume_ml

METRICS = ("dice", "hd95_mm", "avd_pct", "lesion_recall", "lesion_precision", "lesion_f1")
_INPLANE = np.ones((3, 3, 1), bool)  # the challenge's in-plane erosion element
_CONNECTIVITY_26 = np.ones((3, 3, 3), bool)


def dice(truth: np.ndarray, prediction: np.ndarray, label: int) -> float:
  """2|T∩P| / (|T|+|P|) for one class; NaN when the class is absent from both."""
  t = truth == label
  p = prediction == label
  total = int(t.sum()) + int(p.sum())
  if total == 0:
    return float("nan")
  return 2.0 * int(np.logical_and(t, p).sum()) / total


def boundary(mask: np.ndarray) -> np.ndarray:
  """The mask minus its erosion by a 3x3x1 in-plane square; the image border makes no boundary."""
  mask = np.asarray(mask, bool)
  return mask & ~ndimage.binary_erosion(mask, structure=_INPLANE, border_value=1)


def world_coordinates(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
  """(N, 3) world mm coordinates of the mask's voxels."""
  affine = np.asarray(affine, float)
  return np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3]


def hd95(truth: np.ndarray, prediction: np.ndarray, affine: np.ndarray) -> float:
  """95th-percentile Hausdorff distance (mm) between the boundaries of two boolean masks; NaN when
  either is empty."""
  truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
  if not truth.any() or not prediction.any():
    return float("nan")
  t = world_coordinates(boundary(truth), affine)
  p = world_coordinates(boundary(prediction), affine)
  t_to_p = spatial.cKDTree(p).query(t, k=1)[0]
  p_to_t = spatial.cKDTree(t).query(p, k=1)[0]
  return float(max(np.percentile(t_to_p, 95), np.percentile(p_to_t, 95)))


def avd_pct(truth: np.ndarray, prediction: np.ndarray) -> float:
  """|V_T - V_P| / V_T x 100 for two boolean masks on one grid; NaN when the truth is empty."""
  v_t = int(np.count_nonzero(truth))
  if v_t == 0:
    return float("nan")
  return abs(v_t - int(np.count_nonzero(prediction))) / v_t * 100.0


def lesion_detection(truth: np.ndarray, prediction: np.ndarray) -> tuple[float, float, float]:
  """(recall, precision, F1) over 26-connected components of two boolean masks.

  Recall: share of truth lesions touched by a predicted voxel (1 when the truth has none);
  precision: share of predicted lesions touching the truth (1 when none); F1 = 2PR/(P+R), 0 when
  both are 0.
  """
  truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
  t_lab, n_t = ndimage.label(truth, structure=_CONNECTIVITY_26)
  p_lab, n_p = ndimage.label(prediction, structure=_CONNECTIVITY_26)
  recall = np.unique(t_lab[prediction & truth]).size / n_t if n_t else 1.0
  precision = np.unique(p_lab[prediction & truth]).size / n_p if n_p else 1.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return float(recall), float(precision), float(f1)


def called_pct(truth: np.ndarray, prediction: np.ndarray, label: int) -> dict[str, float]:
  """Of the expert's voxels of one class, the percent the prediction called each class or nothing:
  where its misses went (stroke called WMH is not stroke missed outright); NaN when it has none."""
  called = prediction[truth == label]
  return {f"called_{name}_pct": 100.0 * np.count_nonzero(called == code) / called.size
          if called.size else float("nan")
          for name, code in (*CLASSES.items(), ("none", BACKGROUND))}


def challenge_prediction(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
  """The prediction with the truth's stroke (label 2) voxels set to background, as the WMH challenge
  ignores its 'other pathology' label when scoring WMH."""
  return np.where(truth == CLASSES["stroke"], 0, prediction).astype(prediction.dtype)


def class_metrics(truth: np.ndarray, prediction: np.ndarray, label: int,
                  affine: np.ndarray) -> dict[str, float]:
  """All per-subject metrics of one class, both volumes (mL) and what its voxels were called."""
  t, p = truth == label, prediction == label
  recall, precision, f1 = lesion_detection(t, p)
  voxel = voxel_volume_ml(affine)
  return {
      "dice": dice(truth, prediction, label),
      "hd95_mm": hd95(t, p, affine),
      "avd_pct": avd_pct(t, p),
      "lesion_recall": recall,
      "lesion_precision": precision,
      "lesion_f1": f1,
      "volume_ml": float(np.count_nonzero(p) * voxel),
      "expert_volume_ml": float(np.count_nonzero(t) * voxel),
      **called_pct(truth, prediction, label),
  }


def subject_metrics(truth: np.ndarray, prediction: np.ndarray, affine: np.ndarray,
                    challenge_mode: bool = False) -> dict[str, dict[str, float]]:
  """Class name -> class_metrics; in challenge mode WMH is scored with the truth's stroke voxels
  removed from the prediction."""
  if truth.shape != prediction.shape:
    raise ValueError(f"truth shape {truth.shape} differs from prediction shape {prediction.shape}")
  out = {}
  for name, label in CLASSES.items():
    pred = challenge_prediction(truth, prediction) if challenge_mode and name == "wmh" else prediction
    out[name] = class_metrics(truth, pred, label, affine)
  return out


def false_stroke(truth: np.ndarray, predicted: np.ndarray, affine: np.ndarray) -> dict:
  """Stroke reported on a subject whose expert labels hold none (NaN for a subject with stroke):
  a cohort of stroke-free brains must read ~0 mL, whatever the Dice on the others."""
  stroke_code = STROKE
  if (truth == stroke_code).any():
    return {"false_stroke_ml": float("nan"), "false_stroke_components": float("nan")}
  _, count = ndimage.label(predicted == stroke_code, structure=np.ones((3, 3, 3)))
  return {"false_stroke_ml": float((predicted == stroke_code).sum()) * voxel_volume_ml(affine),
          "false_stroke_components": float(count)}
