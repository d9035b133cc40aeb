"""Rigid registration of a follow-up visit to its baseline, the checks that turn an implausible
answer into one line, and moving a visit's maps onto another visit's grid.

SimpleITK (Mattes mutual information: robust to another scanner's contrast) registers the two
brains on a working grid of isotropic voxels, so that thick-slice protocols and 0.5 mm in-plane
matrices cost the same; the library was chosen by measurement (docs/measured.md, "Change between
visits").
"""
import dataclasses
import time

import ml_collections
import nibabel as nib
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from uresnet_jax.common import errors

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # ITK's physical frame from nibabel's RAS, and back


@dataclasses.dataclass(frozen=True)
class Rigid:
  """A follow-up's rigid registration to its baseline."""
  matrix: np.ndarray  # 4x4; maps a point in the follow-up's scanner mm to the same anatomy in the
  #                     baseline's scanner mm
  similarity: float  # correlation of the two brains' intensities once aligned: QC, the report
  seconds: float


class RegistrationFailed(errors.InputError):
  """One line: no overlap of the fields of view, a result that lands implausibly far, or two
  images too unlike to be one brain."""


def _brain(image: nib.Nifti1Image, mask: np.ndarray | None) -> np.ndarray:
  """The visit's brain: its mask, or the nonzero voxels of a skull-stripped image."""
  brain = (np.asarray(image.dataobj) > 0) if mask is None else np.asarray(mask) > 0
  if brain.shape != image.shape[:3]:
    raise RegistrationFailed(f"brain mask of shape {brain.shape} does not match the image's "
                             f"{image.shape[:3]}")
  if not brain.any():
    raise RegistrationFailed("empty brain mask: nothing to register")
  return brain


def _bounding_box_mm(brain: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The brain's axis-aligned bounding box in scanner mm (all eight voxel-box corners mapped)."""
  hits = np.argwhere(brain)
  lo, hi = hits.min(0) - 0.5, hits.max(0) + 0.5
  corners = np.array([[(lo, hi)[b][a] for a, b in enumerate(bits)]
                      for bits in np.ndindex(2, 2, 2)])
  mm = nib.affines.apply_affine(affine, corners)
  return mm.min(0), mm.max(0)


def _to_sitk(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
  """A float32 SimpleITK image with the NIfTI affine's geometry (LPS)."""
  lps = _LPS @ affine
  spacing = np.linalg.norm(lps[:3, :3], axis=0)
  direction = lps[:3, :3] / spacing
  if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
    raise RegistrationFailed("sheared voxel axes (a gantry-tilted grid): resample it first")
  image = sitk.GetImageFromArray(np.ascontiguousarray(array.T, np.float32))
  image.SetSpacing(spacing.tolist())
  image.SetDirection(direction.ravel().tolist())
  image.SetOrigin(lps[:3, 3].tolist())
  return image


def _working(image: nib.Nifti1Image, brain: np.ndarray,
             spacing_mm: float) -> tuple[sitk.Image, sitk.Image]:
  """The brain (zero outside its mask) and its mask on an isotropic grid around it."""
  data = np.asarray(image.dataobj, np.float32) * brain
  native = _to_sitk(data, image.affine)
  mask = _to_sitk(brain.astype(np.float32), image.affine)
  lo, hi = (_LPS[:3, :3] @ corner for corner in _bounding_box_mm(brain, image.affine))
  lo, hi = np.minimum(lo, hi) - 2 * spacing_mm, np.maximum(lo, hi) + 2 * spacing_mm
  size = np.ceil((hi - lo) / spacing_mm).astype(int) + 1
  reference = sitk.Image(size.tolist(), sitk.sitkFloat32)
  reference.SetSpacing([spacing_mm] * 3)
  reference.SetOrigin(lo.tolist())
  # Anti-aliasing: smooth each axis from its voxel size up to the working voxel size.
  sigma = np.sqrt(np.maximum(spacing_mm**2 - np.asarray(native.GetSpacing())**2, 0)) / 2.355
  if sigma.max() > 0:
    native = sitk.SmoothingRecursiveGaussian(native, np.maximum(sigma, 1e-3).tolist())
  identity = sitk.Transform(3, sitk.sitkIdentity)
  work = sitk.Resample(native, reference, identity, sitk.sitkLinear, 0.0)
  work_mask = sitk.Resample(mask, reference, identity, sitk.sitkLinear, 0.0) > 0.5
  return work, sitk.Cast(work_mask, sitk.sitkUInt8)


def _euler_matrix(transform: sitk.Euler3DTransform) -> np.ndarray:
  """The 4x4 (LPS) of an Euler transform: x -> R (x - c) + c + t."""
  rotation = np.array(transform.GetMatrix()).reshape(3, 3)
  centre = np.array(transform.GetCenter())
  out = np.eye(4)
  out[:3, :3] = rotation
  out[:3, 3] = np.array(transform.GetTranslation()) + centre - rotation @ centre
  return out


def _correlation(fixed: sitk.Image, fixed_mask: sitk.Image, moving: sitk.Image,
                 moving_mask: sitk.Image, transform: sitk.Transform) -> float:
  """Pearson correlation of the two brains' intensities where both are brain once aligned."""
  moved = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, transform, sitk.sitkLinear))
  moved_mask = sitk.GetArrayFromImage(
      sitk.Resample(moving_mask, fixed, transform, sitk.sitkNearestNeighbor))
  both = (sitk.GetArrayFromImage(fixed_mask) > 0) & (moved_mask > 0)
  if both.sum() < 100:
    return 0.0
  a, b = sitk.GetArrayFromImage(fixed)[both], moved[both]
  return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


def register_rigid(baseline: nib.Nifti1Image, followup: nib.Nifti1Image, *,
                   baseline_mask: np.ndarray | None = None,
                   followup_mask: np.ndarray | None = None,
                   settings: ml_collections.ConfigDict) -> Rigid:
  """The rigid transform taking the follow-up's scanner mm onto the baseline's, checked for
  plausibility (`settings`: longitudinal.config.get_config().registration); masks default to the
  nonzero voxels of skull-stripped images."""
  start = time.perf_counter()
  brain_b, brain_f = _brain(baseline, baseline_mask), _brain(followup, followup_mask)
  lo_b, hi_b = _bounding_box_mm(brain_b, baseline.affine)
  lo_f, hi_f = _bounding_box_mm(brain_f, followup.affine)
  if np.any(hi_b < lo_f) or np.any(hi_f < lo_b):
    raise RegistrationFailed(
        f"no overlap of the fields of view: the brains lie in [{_box(lo_b, hi_b)}] and "
        f"[{_box(lo_f, hi_f)}] mm of scanner space")
  fixed, fixed_mask = _working(baseline, brain_b, settings.working_mm)
  moving, moving_mask = _working(followup, brain_f, settings.working_mm)

  transform = sitk.CenteredTransformInitializer(
      fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS)
  method = sitk.ImageRegistrationMethod()
  method.SetNumberOfThreads(settings.threads)
  method.SetMetricAsMattesMutualInformation(settings.histogram_bins)
  method.SetMetricSamplingStrategy(method.RANDOM)
  method.SetMetricSamplingPercentage(settings.sampling, settings.seed)
  method.SetMetricFixedMask(fixed_mask)
  method.SetMetricMovingMask(moving_mask)
  method.SetInterpolator(sitk.sitkLinear)
  method.SetOptimizerAsRegularStepGradientDescent(
      settings.step_mm, settings.min_step_mm, settings.iterations, relaxationFactor=0.5)
  method.SetOptimizerScalesFromPhysicalShift()
  method.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
  method.SetSmoothingSigmasPerLevel(list(settings.smoothing_mm))
  method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
  method.SetInitialTransform(transform, inPlace=True)
  method.Execute(fixed, moving)
  euler = sitk.Euler3DTransform(transform)
  similarity = _correlation(fixed, fixed_mask, moving, moving_mask, euler)
  matrix = _LPS @ np.linalg.inv(_euler_matrix(euler)) @ _LPS  # fixed -> moving, inverted, in RAS

  angle = np.degrees(np.arccos(np.clip((np.trace(matrix[:3, :3]) - 1) / 2, -1.0, 1.0)))
  if angle > settings.max_rotation_deg:
    raise RegistrationFailed(f"registration lands implausibly far: a rotation of {angle:.0f} "
                             f"degrees (limit {settings.max_rotation_deg:g})")
  centre_b = nib.affines.apply_affine(baseline.affine, np.argwhere(brain_b).mean(0))
  centre_f = nib.affines.apply_affine(followup.affine, np.argwhere(brain_f).mean(0))
  apart = float(np.linalg.norm(nib.affines.apply_affine(matrix, centre_f) - centre_b))
  if apart > settings.max_centre_mm:
    raise RegistrationFailed(f"registration lands implausibly far: the brains' centres end "
                             f"{apart:.0f} mm apart (limit {settings.max_centre_mm:g})")
  if similarity < settings.min_similarity:
    raise RegistrationFailed(f"the visits look like different brains: intensity correlation "
                             f"{similarity:.2f} after registration (floor "
                             f"{settings.min_similarity:g})")
  return Rigid(matrix=matrix, similarity=similarity, seconds=time.perf_counter() - start)


def _box(lo: np.ndarray, hi: np.ndarray) -> str:
  return ", ".join(f"{a:.0f}..{b:.0f}" for a, b in zip(lo, hi))


def resample(array: np.ndarray, source_affine: np.ndarray, matrix: np.ndarray,
             target_affine: np.ndarray, target_shape: tuple[int, int, int],
             order: int) -> np.ndarray:
  """`array` on its source grid onto the target grid; `matrix` maps source scanner mm to target
  scanner mm. order 0 (labels) keeps the dtype; order 1 (intensities, probabilities) gives
  float32. Outside the source's field of view is 0."""
  voxel = np.linalg.inv(source_affine) @ np.linalg.inv(matrix) @ target_affine
  data = np.asarray(array)
  out = ndimage.affine_transform(data if order == 0 else data.astype(np.float32, copy=False),
                                 voxel[:3, :3], voxel[:3, 3], output_shape=tuple(target_shape),
                                 order=order, mode="constant", cval=0)
  return out
