"""Label codes and label volumes: the one place that says 1 is WMH, 2 is stroke, and what a voxel
holds in mL (from the affine's determinant, so sheared and oblique grids are measured right)."""
import math

import numpy as np

BACKGROUND, WMH, STROKE = 0, 1, 2
CLASS_NAMES = ("background", "wmh", "stroke")  # indexed by label code: the model's output channels
CLASSES = {"wmh": WMH, "stroke": STROKE}  # the lesion classes every table reports, by name
STROKE_CANDIDATE = "stroke_candidate"  # lesions.csv class of a stroke below the stroke threshold
# A manifest's `labelled` cell -> the classes its expert labels mark (an empty cell or no column:
# the first). A class left out is unknown on that subject, not absent: it is never scored there.
LABELLED = {"wmh+stroke": ("wmh", "stroke"), "wmh": ("wmh",), "stroke": ("stroke",)}


def voxel_volume_ml(affine: np.ndarray) -> float:
  """Volume of one voxel (mL) of a voxel-to-world affine, oblique or sheared or not."""
  return float(abs(np.linalg.det(np.asarray(affine, float)[:3, :3])) / 1000.0)


def volume_ml(labels: np.ndarray, label: int, affine: np.ndarray) -> float:
  """Volume (mL) of one label in a label map on the grid of `affine`."""
  return float(np.count_nonzero(labels == label)) * voxel_volume_ml(affine)


def percent_of_icv(volume: float, icv_ml: float | None) -> float:
  """Volume as % of the intracranial volume; NaN when the ICV is unknown or not positive."""
  if icv_ml is None or not np.isfinite(icv_ml) or icv_ml <= 0:
    return float("nan")
  return 100.0 * volume / icv_ml


def manifest_icv_ml(raw: str) -> float | None:
  """A manifest's icv_ml cell as mL: a positive finite number, else None (empty, text, 0, inf, nan),
  so every reader falls back to a brain mask on the same cells."""
  try:
    value = float(raw.strip())
  except ValueError:
    return None
  return value if math.isfinite(value) and value > 0 else None
