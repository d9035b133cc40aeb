"""A classical baseline in the role of the paper's LPA/LGA rows: FLAIR z-score thresholding inside
white matter, the threshold chosen on the training subjects only. Like LPA it cannot tell stroke
from WMH: everything it finds is labelled WMH (1), so its stroke Dice is 0 where strokes exist.

Pure functions of preprocessed arrays; `fit` and `segment` work on the 1 mm grid of `preprocess`.
"""
from typing import Sequence

import numpy as np

from uresnet_jax.evaluation import metrics


def region(mask: np.ndarray, wm: np.ndarray | None, wm_threshold: float) -> np.ndarray:
  """Where lesions are looked for: the white matter (a probability map > wm_threshold) inside the
  brain, or the whole brain when no white-matter map is given."""
  return mask & (wm > wm_threshold) if wm is not None else mask.copy()


def segment(image: np.ndarray, where: np.ndarray, threshold: float) -> np.ndarray:
  """uint8 labels: 1 (WMH) where the FLAIR z-score (channel 0) exceeds `threshold` in `where`."""
  return ((image[..., 0] > threshold) & where).astype(np.uint8)


def fit(subjects: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        thresholds: Sequence[float]) -> float:
  """The threshold with the best mean WMH Dice over (image, region, expert labels) of the training
  subjects (on the grid); ties go to the lower threshold."""
  if not subjects:
    raise ValueError("no training subjects to choose the threshold on")
  scores = []
  for threshold in thresholds:
    dice = [metrics.dice(truth, segment(image, where, threshold), 1)
            for image, where, truth in subjects]
    dice = [d for d in dice if np.isfinite(d)]
    scores.append(np.mean(dice) if dice else -1.0)
  return float(thresholds[int(np.argmax(scores))])
