"""Healthy tissue that real FLAIR shows bright and a lesion model must learn is not lesion.

Real skull-stripped FLAIR carries bright healthy signal at the cortex (grey matter brighter than
white matter, sulcal CSF averaged with cortex in thick slices, dura, vessels and skull-strip
residue at a patchy brain edge) and in the ventricles (the choroid plexus in the atria, CSF flow
artefacts). A model trained without it calls that tissue stroke (docs/sim_to_real.md). Each
function returns an intensity map (x white matter) on the fine grid, or a mask on the native grid.
"""
import numpy as np
from scipy import ndimage

from uresnet_jax.phantom.anatomy import Canvas
from uresnet_jax.phantom.fields import smooth_noise

# The atria of the lateral ventricles, in MNI mm: posterior to the bodies, where the choroid
# plexus gathers into its glomus.
_ATRIUM_Y_MM = (-50.0, -25.0)
_ATRIUM_Z_MM = (0.0, 30.0)


def edge_rim(rng: np.random.Generator, cv: Canvas, amplitude: float, width_mm: float,
             irregularity: float) -> np.ndarray:
  """A bright rim fading inwards from the brain's outer edge, made patchy by a smooth field."""
  inside = ndimage.distance_transform_edt(cv.mask >= 0.5, sampling=cv.grid.step)
  rim = amplitude * np.exp(-inside / width_mm).astype(np.float32) * cv.mask
  if irregularity > 0:
    (field,) = smooth_noise(rng, cv.grid, 8.0)
    rim *= np.maximum(1 + irregularity * field, 0)
  return rim


def sulcal_csf(cv: Canvas, csf: np.ndarray, amplitude: float) -> np.ndarray:
  """CSF away from the ventricles lifted towards tissue: sulci and the cortical surface."""
  return amplitude * csf * (cv.vdist > 3.0)


def choroid_plexus(rng: np.random.Generator, cv: Canvas, amplitude: float,
                   radius_mm: float) -> np.ndarray:
  """A bright, lobulated glomus in the atrium of each lateral ventricle (none if the slices miss
  the atria)."""
  out = np.zeros_like(cv.mask)
  ventricle = cv.vdist < 0
  y, z = cv.mni[1], cv.mni[2]
  atrium = (ventricle & (y > _ATRIUM_Y_MM[0]) & (y < _ATRIUM_Y_MM[1]) & (z > _ATRIUM_Z_MM[0])
            & (z < _ATRIUM_Z_MM[1]))
  (lobes,) = smooth_noise(rng, cv.grid, 3.0)
  for side in (cv.mni[0] < 0, cv.mni[0] >= 0):
    where = atrium & side
    if not where.any():
      continue
    centre = np.array([cv.mni[a][where].mean() for a in range(3)])
    d2 = sum((cv.mni[a] - centre[a])**2 for a in range(3))
    blob = np.exp(-d2 / radius_mm**2) * (1 + 0.3 * lobes)
    out += amplitude * np.clip(blob, 0, 1).astype(np.float32) * (cv.vdist < 1.0)
  return out


def csf_flow(rng: np.random.Generator, cv: Canvas, csf: np.ndarray,
             amplitude: float) -> np.ndarray:
  """Patchy bright signal in ventricular CSF (pulsatile flow, incomplete inversion)."""
  (field,) = smooth_noise(rng, cv.grid, 6.0)
  return amplitude * csf * (cv.vdist < 0.5) * np.clip(field - 0.5, 0, 1.5)


def skull_strip(brain: np.ndarray, zooms: tuple[float, float, float],
                margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
  """The mask a skull-stripping tool leaves: the brain dilated (> 0) or eroded (< 0) by
  margin_mm. Returns (mask, the extra-cerebral band it took in)."""
  if margin_mm == 0:
    return brain, np.zeros_like(brain)
  if margin_mm < 0:
    inside = ndimage.distance_transform_edt(brain, sampling=zooms)
    return inside > -margin_mm, np.zeros_like(brain)
  outside = ndimage.distance_transform_edt(~brain, sampling=zooms)
  band = ~brain & (outside <= margin_mm)
  return brain | band, band
