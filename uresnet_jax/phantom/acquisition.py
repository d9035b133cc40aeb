"""The scan: protocols, thick-slice partial volume, in-plane reconstruction, stored axis order."""
from typing import Sequence

import ml_collections
import nibabel as nib
import numpy as np
from scipy import ndimage

from uresnet_jax.phantom.knobs import uniform


def sample_protocol(rng: np.random.Generator,
                    config: ml_collections.ConfigDict) -> tuple[float, float, float]:
  if rng.uniform() < config.random_protocol_probability:
    inplane = uniform(rng, config.random_inplane_mm)
    return (inplane, inplane, uniform(rng, config.random_thickness_mm))
  weights = np.asarray(config.protocol_weights, float)
  choice = rng.choice(len(weights), p=weights / weights.sum())
  return tuple(float(z) for z in config.protocols[choice])


def protocol_name(zooms: Sequence[float]) -> str:
  return "x".join(f"{z:g}" for z in zooms)


def slice_profile(sub: int, spacing_mm: float, thickness_mm: float) -> np.ndarray:
  """Weights of a slice's `sub` sub-slices (spread over the spacing): the mean over those inside
  the slice's thickness, so a gap between slices is not seen."""
  centres = ((np.arange(sub) + 0.5) / sub - 0.5) * spacing_mm
  inside = np.abs(centres) <= thickness_mm / 2 + 1e-6
  inside[sub // 2] = True  # a thickness below one sub-slice still sees the middle one
  return (inside / inside.sum()).astype(np.float32)


def thick_slices(fine: np.ndarray, profile: np.ndarray) -> np.ndarray:
  """Slice-profile partial volume: each slice's sub-slices weighted by `profile`."""
  x, y, z = fine.shape
  return fine.reshape(x, y, z // len(profile), len(profile)) @ profile


def upsample_inplane(image: np.ndarray, k: int) -> np.ndarray:
  """Linear in-plane interpolation by the integer k (a zero-filled-like reconstruction)."""
  if k == 1:
    return image
  for axis in (0, 1):
    moved = np.moveaxis(image, axis, 0)
    out = np.empty((k * (moved.shape[0] - 1) + 1,) + moved.shape[1:], np.float32)
    out[::k] = moved
    for r in range(1, k):
      out[r::k] = (1 - r / k) * moved[:-1] + (r / k) * moved[1:]
    image = np.moveaxis(out, 0, axis)
  return np.ascontiguousarray(image)


def reorient(arrays: dict[str, np.ndarray], affine: np.ndarray,
             codes: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Stores RAS-ordered arrays in another voxel axis order, keeping the world geometry."""
  ornt = nib.orientations
  transform = ornt.ornt_transform(ornt.axcodes2ornt("RAS"), ornt.axcodes2ornt(tuple(codes)))
  shape = next(iter(arrays.values())).shape
  arrays = {k: np.ascontiguousarray(ornt.apply_orientation(v, transform))
            for k, v in arrays.items()}
  return arrays, affine @ ornt.inv_ornt_aff(transform, shape)


def artefacts(image: np.ndarray, zooms: Sequence[float], blur_mm: float, ringing: float,
              ghosting: float, ghost_shift: float) -> np.ndarray:
  """In-plane reconstruction artefacts of a (x, y, slice) image; y is the phase-encoding axis.

  blur_mm: Gaussian sigma; ringing: share of k-space cut along y (Gibbs ringing at edges);
  ghosting: amplitude of a motion ghost, a copy shifted by ghost_shift of the field of view along y.
  Zero for all three returns the image unchanged.
  """
  if blur_mm > 0:
    sigma = (blur_mm / zooms[0], blur_mm / zooms[1], 0.0)
    image = ndimage.gaussian_filter(image, sigma).astype(np.float32)
  if ringing > 0:
    spectrum = np.fft.fft(image, axis=1)
    frequencies = np.abs(np.fft.fftfreq(image.shape[1]))
    spectrum[:, frequencies > 0.5 * (1 - ringing)] = 0
    image = np.abs(np.fft.ifft(spectrum, axis=1)).astype(np.float32)
  if ghosting > 0:
    image = image + ghosting * np.roll(image, int(round(ghost_shift * image.shape[1])), axis=1)
  return image


def voxel_noise(rng: np.random.Generator, image: np.ndarray, std: float) -> np.ndarray:
  """Rician noise of std `std` (x white matter) drawn independently at each stored voxel, after the
  in-plane interpolation and reconstruction filters that smooth the thick-slice noise: real FLAIR
  is this grainy at its own voxel size. Zero returns the image unchanged, drawing nothing."""
  if std <= 0:
    return image
  noise = rng.standard_normal((2,) + image.shape, dtype=np.float32) * np.float32(std)
  return np.sqrt((image + noise[0])**2 + noise[1]**2)
