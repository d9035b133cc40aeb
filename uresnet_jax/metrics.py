"""Segmentation metrics on whole label volumes: pure functions of label arrays."""
import numpy as np

CLASSES = {"wmh": 1, "stroke": 2}


def dice(truth: np.ndarray, prediction: np.ndarray, label: int) -> float:
  """2|T∩P| / (|T|+|P|) for one class; NaN when the class is absent from both."""
  t = truth == label
  p = prediction == label
  total = int(t.sum()) + int(p.sum())
  if total == 0:
    return float("nan")
  return 2.0 * int(np.logical_and(t, p).sum()) / total


def volume_ml(labels: np.ndarray, label: int, zooms: tuple[float, ...]) -> float:
  return float((labels == label).sum() * np.prod(zooms[:3]) / 1000.0)
