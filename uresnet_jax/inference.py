"""Whole-volume inference: every axial slice through the fully convolutional net in batches."""
from typing import Callable

import numpy as np

from uresnet_jax import models, preprocess


def predict_grid(
    predict_slices: Callable[[np.ndarray], np.ndarray], image: np.ndarray, batch_slices: int,
    pad_value: float,
) -> np.ndarray:
  """Label volume (X, Y, Z) for a preprocessed image (X, Y, Z, C), slices padded to a multiple of 8.

  `predict_slices` maps a (batch_slices, H, W, C) float32 array to (batch_slices, H, W) labels; the
  last batch is padded with background slices so every call has the same shape.
  """
  slices = np.moveaxis(image, 2, 0)
  padded, (height, width) = models.pad_to_multiple(slices, 8, pad_value)
  num = padded.shape[0]
  out = np.empty(padded.shape[:3], np.uint8)
  for start in range(0, num, batch_slices):
    chunk = padded[start:start + batch_slices]
    short = batch_slices - chunk.shape[0]
    if short:
      chunk = np.concatenate([chunk, np.full((short,) + chunk.shape[1:], pad_value, chunk.dtype)])
    out[start:start + batch_slices] = np.asarray(predict_slices(chunk))[:batch_slices - short]
  return np.moveaxis(out[:, :height, :width], 0, 2)


def predict_native(
    predict_slices: Callable[[np.ndarray], np.ndarray], prepared: preprocess.Prepared,
    batch_slices: int, pad_value: float,
) -> np.ndarray:
  """Label volume on the subject's native voxel grid."""
  grid = predict_grid(predict_slices, prepared.image, batch_slices, pad_value)
  return preprocess.to_native(grid, prepared.geometry)
