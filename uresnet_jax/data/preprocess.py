"""Pure preprocessing: RAS orientation, 1 mm in-plane grid, brain mask, z-score, and the inverse map.

Arrays are in canonical (RAS) voxel order after `to_canonical`; axis 2 is the slice axis, so axial
slices are `vol[:, :, k]`. The grid keeps the slice thickness and resamples axes 0 and 1 to
`inplane_mm`, centred on the native field of view (it covers the same FOV to within half a voxel).
"""
import dataclasses

import nibabel as nib
import numpy as np
from nibabel import orientations
from scipy import ndimage

from uresnet_jax.common import labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data.nifti_io import SubjectVolumes


@dataclasses.dataclass(frozen=True)
class Geometry:
  """Everything needed to map the 1 mm grid back to the native voxel grid."""
  native_shape: tuple[int, int, int]
  native_affine: np.ndarray
  grid_shape: tuple[int, int, int]  # canonical, `inplane_mm` in-plane, native slice thickness
  grid_affine: np.ndarray

  @property
  def grid_zooms(self) -> tuple[float, float, float]:
    return tuple(float(z) for z in nib.affines.voxel_sizes(self.grid_affine))


@dataclasses.dataclass(frozen=True)
class Prepared:
  subject: str
  image: np.ndarray  # float32 (X, Y, Z, C): z-scored in mask, >= clip_low, clip_low outside mask
  labels: np.ndarray | None  # uint8 (X, Y, Z)
  mask: np.ndarray  # bool (X, Y, Z)
  geometry: Geometry


def canonical_ornt(affine: np.ndarray) -> np.ndarray:
  """The axis flips/permutation taking native voxel order to the closest RAS order."""
  return orientations.ornt_transform(orientations.io_orientation(affine),
                                     orientations.axcodes2ornt("RAS"))


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Reorders voxels to RAS (as nibabel.as_closest_canonical); trailing channel axes ride along."""
  ornt = canonical_ornt(affine)
  canonical = orientations.apply_orientation(data, ornt)
  return canonical, affine @ orientations.inv_ornt_aff(ornt, data.shape[:3])


def _inplane_grid(shape: tuple[int, ...], affine: np.ndarray,
                  inplane_mm: float) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray]:
  """Grid shape, per-axis scale and offset (grid voxel -> input voxel) and the grid affine."""
  zooms = nib.affines.voxel_sizes(affine)
  n = np.asarray(shape[:3], dtype=np.float64)
  fov = n[:2] * zooms[:2]
  m = np.concatenate([np.maximum(1, np.round(fov / inplane_mm)), n[2:]])
  scale = np.array([inplane_mm / zooms[0], inplane_mm / zooms[1], 1.0])
  offset = (n - 1) / 2 - scale * (m - 1) / 2  # centres coincide
  voxel_map = np.eye(4)
  voxel_map[:3, :3] = np.diag(scale)
  voxel_map[:3, 3] = offset
  return tuple(int(v) for v in m), scale, offset, affine @ voxel_map


def resample_inplane(data: np.ndarray, affine: np.ndarray, inplane_mm: float = 1.0,
                     order: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Resamples axes 0, 1 to `inplane_mm` (order 1 for images, 0 for labels); axis 2 is untouched."""
  shape, scale, offset, grid_affine = _inplane_grid(data.shape, affine, inplane_mm)
  return _resample(data, scale, offset, shape, order), grid_affine


def _resample(data: np.ndarray, scale: np.ndarray, offset: np.ndarray,
              shape: tuple[int, int, int], order: int) -> np.ndarray:
  """Samples `data` at input voxel `scale * o + offset` for each output voxel o (edges clamp)."""
  if data.ndim == 4:
    return np.stack([_resample(data[..., c], scale, offset, shape, order)
                     for c in range(data.shape[3])], axis=-1)
  if np.allclose(scale, 1) and np.allclose(offset, 0) and data.shape == shape:
    return data.copy()
  out_dtype = data.dtype
  if data.dtype == bool:
    data = data.astype(np.uint8)
  out = ndimage.affine_transform(data, scale, offset=offset, output_shape=shape, order=order,
                                 mode="nearest")
  return out.astype(out_dtype)


def make_geometry(native_shape: tuple[int, ...], native_affine: np.ndarray,
                  inplane_mm: float = 1.0) -> Geometry:
  """The grid a native volume is mapped to: canonical orientation, `inplane_mm` in-plane."""
  native_shape = tuple(int(s) for s in native_shape[:3])
  native_affine = np.asarray(native_affine, dtype=np.float64)
  canonical_shape, canonical_affine = _canonical_frame(native_shape, native_affine)
  grid_shape, _, _, grid_affine = _inplane_grid(canonical_shape, canonical_affine, inplane_mm)
  return Geometry(native_shape=native_shape, native_affine=native_affine,
                  grid_shape=grid_shape, grid_affine=grid_affine)


def _canonical_frame(native_shape: tuple[int, int, int],
                     native_affine: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
  """Shape and affine of the canonical (RAS) reordering of a native volume."""
  ornt = canonical_ornt(native_affine)
  shape = [0, 0, 0]
  for i, axis in enumerate(ornt[:, 0].astype(int)):  # native axis i -> canonical axis `axis`
    shape[axis] = native_shape[i]
  return tuple(shape), native_affine @ orientations.inv_ornt_aff(ornt, native_shape)


def _grid_map(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
  """Scale and offset taking grid voxels to canonical native voxels."""
  _, canonical_affine = _canonical_frame(geometry.native_shape, geometry.native_affine)
  voxel_map = np.linalg.solve(canonical_affine, geometry.grid_affine)
  return np.diag(voxel_map)[:3].copy(), voxel_map[:3, 3].copy()


def to_grid(data: np.ndarray, geometry: Geometry, order: int = 1) -> np.ndarray:
  """Maps a native volume (X, Y, Z[, C]) onto the geometry's grid (order 0 for labels and masks)."""
  canonical, _ = to_canonical(data, geometry.native_affine)
  scale, offset = _grid_map(geometry)
  return _resample(canonical, scale, offset, geometry.grid_shape, order)


def to_native(grid_data: np.ndarray, geometry: Geometry) -> np.ndarray:
  """Nearest-neighbour map of grid data (X, Y, Z[, C]: labels, probabilities) back onto the native
  voxel grid, in the native voxel order; the dtype is kept."""
  if tuple(grid_data.shape[:3]) != geometry.grid_shape:
    raise ValueError(f"grid data shape {grid_data.shape} != grid shape {geometry.grid_shape}")
  scale, offset = _grid_map(geometry)
  canonical_shape, _ = _canonical_frame(geometry.native_shape, geometry.native_affine)
  canonical = _resample(np.asarray(grid_data), 1 / scale, -offset / scale, canonical_shape, order=0)
  inverse = orientations.ornt_transform(orientations.axcodes2ornt("RAS"),
                                        orientations.io_orientation(geometry.native_affine))
  return np.ascontiguousarray(orientations.apply_orientation(canonical, inverse))


# A skull-stripped scan is zero outside the brain: its slices' outer frame is almost all zero and its
# non-zero region is no larger than a brain. These bounds leave room for any adult brain (ICV < 2.1 L).
STRIPPED_MAX_BORDER_FRACTION = 0.1
STRIPPED_MAX_VOLUME_ML = 2500.0


def check_skull_stripped(flair: np.ndarray, affine: np.ndarray, where: str) -> None:
  """Refuses a scan with no brain mask that is not skull-stripped, since `flair > 0` would then
  take the skull and the background for brain and the z-scores would mean nothing."""
  nonzero = np.asarray(flair) > 0
  border = np.concatenate([nonzero[0].ravel(), nonzero[-1].ravel(),
                           nonzero[:, 0].ravel(), nonzero[:, -1].ravel()])
  volume_ml = float(nonzero.sum()) * labelling.voxel_volume_ml(affine)
  if border.mean() > STRIPPED_MAX_BORDER_FRACTION or volume_ml > STRIPPED_MAX_VOLUME_ML:
    raise InputError(
        f"{where}: not skull-stripped ({100 * border.mean():.0f}% of the field-of-view edge and "
        f"{volume_ml:.0f} mL are non-zero) and no brain mask given; pass --brain_mask=FILE (or a "
        "brain_mask column in the manifest), or skull-strip the scan first (e.g. SynthStrip, HD-BET)")


def brain_mask(flair: np.ndarray, given: np.ndarray | None = None) -> np.ndarray:
  """The given mask, else the non-zero region of a skull-stripped scan with each slice's holes filled."""
  if given is not None:
    return np.asarray(given, dtype=bool)
  mask = np.asarray(flair) > 0
  for k in range(mask.shape[2]):
    mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
  return mask


def zscore_in_mask(image: np.ndarray, mask: np.ndarray, clip_low: float = -3.0) -> np.ndarray:
  """Per channel: zero mean, unit std inside the mask; clipped below at clip_low; clip_low outside."""
  if not mask.any():
    raise InputError("empty brain mask")
  squeeze = image.ndim == 3
  image = image[..., None] if squeeze else image
  out = np.empty(image.shape, dtype=np.float32)
  for c in range(image.shape[3]):
    inside = image[..., c][mask].astype(np.float64)
    mean, std = inside.mean(), inside.std()
    if not std > 0:
      raise InputError(f"channel {c} has constant intensity inside the brain mask")
    out[..., c] = np.maximum((image[..., c] - mean) / std, clip_low)
  out[~mask] = clip_low
  return out[..., 0] if squeeze else out


def prepare_subject(volumes: SubjectVolumes, inplane_mm: float = 1.0, clip_low: float = -3.0,
                    require_stripped: bool = False) -> Prepared:
  """Native volumes -> model-ready grid arrays, plus the geometry to map predictions back.

  Without a brain mask the mask is derived from `flair > 0`; `require_stripped` first checks that
  the scan is skull-stripped, so that this is a brain mask (`check_skull_stripped`)."""
  subject = volumes.subject
  names = list(volumes.channels)
  reference = volumes.channels[names[0]]
  where = f"{subject}: {reference.path.name if reference.path else names[0]}"
  geometry = make_geometry(reference.data.shape, reference.affine, inplane_mm)
  image = np.stack([volumes.channels[n].data for n in names], axis=-1).astype(np.float32)
  mask_source = volumes.channels["flair" if "flair" in volumes.channels else names[0]].data
  given = volumes.brain_mask.data if volumes.brain_mask is not None else None
  if given is None and require_stripped:
    check_skull_stripped(mask_source, reference.affine, where)
  canonical_source, _ = to_canonical(mask_source, reference.affine)
  canonical_given = to_canonical(given, reference.affine)[0] if given is not None else None
  mask = brain_mask(canonical_source, canonical_given)
  if not mask.any():
    raise InputError(f"{where}: empty brain mask (no voxel > 0 to derive it from)")
  scale, offset = _grid_map(geometry)
  mask = _resample(mask, scale, offset, geometry.grid_shape, order=0)
  if not mask.any():
    raise InputError(f"{where}: brain mask is empty after resampling to {inplane_mm} mm")
  image = to_grid(image, geometry, order=1)
  labels = to_grid(volumes.labels.data, geometry, order=0) if volumes.labels is not None else None
  try:
    image = zscore_in_mask(image, mask, clip_low)
  except InputError as e:
    raise InputError(f"{where}: {e}") from None
  return Prepared(subject=subject, image=image, labels=labels, mask=mask, geometry=geometry)
