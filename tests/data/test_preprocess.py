"""Tests for preprocess: orientation, 1 mm grid, mask, z-score and the inverse map to native."""
import pathlib

import nibabel as nib
from nibabel import orientations
import numpy as np
import pytest
from scipy import ndimage

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import preprocess
from uresnet_jax.data.nifti_io import SubjectVolumes, Volume

REORIENTED = ["LPS", "SRA", "IAL"]  # flipped, permuted, permuted and flipped voxel axes


def _affine(zooms, origin=(12.0, -30.0, 7.0)) -> np.ndarray:
  affine = np.diag([*zooms, 1.0])
  affine[:3, 3] = origin
  return affine


def _native(canonical: np.ndarray, zooms, codes: str) -> tuple[np.ndarray, np.ndarray]:
  """A native (data, affine) in voxel orientation `codes` whose RAS reordering is `canonical`."""
  ras = nib.Nifti1Image(canonical, _affine(zooms))
  native = ras.as_reoriented(orientations.ornt_transform(orientations.axcodes2ornt("RAS"),
                                                          orientations.axcodes2ornt(codes)))
  return np.asarray(native.dataobj), native.affine


def _blobs(shape, sigma_vox, seed=0) -> np.ndarray:
  field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma_vox)
  labels = np.zeros(shape, np.uint8)
  labels[field > 0.8 * field.std()] = 1
  labels[field < -1.2 * field.std()] = 2
  return labels


@pytest.mark.parametrize("codes", REORIENTED)
def test_canonical_of_reoriented_equals_ras(codes):
  ras = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
  data, affine = _native(ras, (0.5, 0.7, 3.0), codes)
  canonical, canonical_affine = preprocess.to_canonical(data, affine)
  np.testing.assert_array_equal(canonical, ras)
  np.testing.assert_allclose(canonical_affine, _affine((0.5, 0.7, 3.0)), atol=1e-9)
  reference = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
  np.testing.assert_array_equal(canonical, reference.get_fdata())


@pytest.mark.parametrize("zooms, shape, grid", [
    ((0.47, 0.47, 6.0), (512, 512, 3), (241, 241, 3)),
    ((0.94, 0.94, 6.5), (256, 200, 2), (241, 188, 2)),
    ((1.0, 1.0, 4.0), (30, 20, 5), (30, 20, 5)),
])
def test_grid_covers_fov_at_1mm_keeping_thickness(zooms, shape, grid):
  geometry = preprocess.make_geometry(shape, _affine(zooms), 1.0)
  assert geometry.grid_shape == grid
  assert geometry.grid_zooms == pytest.approx((1.0, 1.0, zooms[2]))
  centre = lambda affine, n: nib.affines.apply_affine(affine, (np.array(n) - 1) / 2)
  np.testing.assert_allclose(centre(geometry.grid_affine, grid), centre(_affine(zooms), shape), atol=1e-9)
  resampled, affine = preprocess.resample_inplane(np.ones(shape, np.float32), _affine(zooms))
  assert resampled.shape == grid
  np.testing.assert_allclose(affine, geometry.grid_affine)


def test_brain_mask_fills_holes_per_slice_or_uses_given():
  flair = np.zeros((9, 9, 2), np.float32)
  flair[2:7, 2:7, :] = 1.0
  flair[4, 4, 0] = 0.0  # a hole inside a slice
  flair[0, 0:9, 1] = 0.0
  mask = preprocess.brain_mask(flair)
  assert mask.dtype == bool and mask[4, 4, 0] and mask.sum() == 50
  given = np.zeros_like(mask)
  given[1, 1, 1] = True
  np.testing.assert_array_equal(preprocess.brain_mask(flair, given), given)


def test_zscore_in_mask():
  rng = np.random.default_rng(0)
  image = rng.uniform(100, 200, (20, 20, 3)).astype(np.float32)  # uniform: z within +-1.8, no clipping
  mask = np.zeros(image.shape, bool)
  mask[3:17, 4:15, :] = True
  z = preprocess.zscore_in_mask(image, mask, clip_low=-3.0)
  assert z.dtype == np.float32
  assert z[mask].mean() == pytest.approx(0, abs=1e-5) and z[mask].std() == pytest.approx(1, abs=1e-5)
  assert np.all(z[~mask] == -3.0)
  image[5, 5, 1] = -1e4  # an outlier inside the brain is clipped
  z = preprocess.zscore_in_mask(image[..., None], mask, clip_low=-2.5)
  assert z.shape == image.shape + (1,) and z.min() == -2.5 and z[5, 5, 1, 0] == -2.5
  with pytest.raises(InputError, match="constant"):
    preprocess.zscore_in_mask(np.ones_like(image), mask)


@pytest.mark.parametrize("zooms, shape, sigma_mm", [
    ((0.47, 0.47, 6.0), (200, 180, 3), 12.0),
    ((0.94, 0.94, 6.5), (100, 90, 3), 12.0),
])
@pytest.mark.parametrize("codes", ["RAS"] + REORIENTED)
def test_label_round_trip_agrees(zooms, shape, sigma_mm, codes):
  ras = _blobs(shape, (sigma_mm / zooms[0], sigma_mm / zooms[1], 0.5))
  data, affine = _native(ras, zooms, codes)
  geometry = preprocess.make_geometry(data.shape, affine, 1.0)
  back = preprocess.to_native(preprocess.to_grid(data, geometry, order=0), geometry)
  assert back.shape == data.shape and back.dtype == np.uint8
  assert (back == data).mean() >= 0.99


@pytest.mark.parametrize("codes", ["RAS"] + REORIENTED)
def test_label_round_trip_exact_at_1mm(codes):
  data, affine = _native(_blobs((30, 25, 4), (3, 3, 0.5)), (1.0, 1.0, 4.0), codes)
  geometry = preprocess.make_geometry(data.shape, affine, 1.0)
  np.testing.assert_array_equal(preprocess.to_native(preprocess.to_grid(data, geometry, 0), geometry), data)


def _volumes(flair, labels=None, mask=None, affine=None, subject="s9") -> SubjectVolumes:
  affine = _affine((0.5, 0.5, 5.0)) if affine is None else affine
  wrap = lambda d: None if d is None else Volume(d, affine)
  return SubjectVolumes(subject, {"flair": Volume(flair, affine, path=None)}, wrap(labels), wrap(mask))


def test_prepare_subject():
  rng = np.random.default_rng(1)
  flair = np.zeros((40, 36, 3), np.float32)
  flair[6:34, 5:31, :] = rng.normal(50, 10, (28, 26, 3))
  flair[flair < 0] = 1.0
  labels = _blobs(flair.shape, (4, 4, 0.5)) * (flair > 0)
  data, affine = _native(flair, (0.5, 0.5, 5.0), "LPS")
  native_labels, _ = _native(labels, (0.5, 0.5, 5.0), "LPS")
  prepared = preprocess.prepare_subject(_volumes(data, native_labels, affine=affine), clip_low=-3.0)
  assert prepared.subject == "s9"
  assert prepared.image.shape == (20, 18, 3, 1) and prepared.image.dtype == np.float32
  assert prepared.labels.shape == (20, 18, 3) and prepared.labels.dtype == np.uint8
  assert prepared.mask.dtype == bool and prepared.mask.sum() == 14 * 13 * 3
  image = prepared.image[..., 0]
  assert np.all(image[~prepared.mask] == -3.0) and image.min() >= -3.0
  inside = image[prepared.mask]
  assert abs(inside.mean()) < 0.1 and abs(inside.std() - 1) < 0.1
  assert prepared.geometry.native_shape == data.shape
  back = preprocess.to_native(prepared.labels, prepared.geometry)
  assert (back == native_labels).mean() > 0.9  # small blobs: many edge voxels


def test_prepare_subject_uses_given_mask_and_stacks_channels():
  flair = np.random.default_rng(2).uniform(1, 2, (10, 10, 2)).astype(np.float32)
  mask = np.zeros(flair.shape, bool)
  mask[2:8, 2:8] = True
  affine = _affine((1.0, 1.0, 3.0))
  volumes = SubjectVolumes("s1", {"flair": Volume(flair, affine), "t1": Volume(flair * 3, affine)},
                           None, Volume(mask, affine))
  prepared = preprocess.prepare_subject(volumes)
  assert prepared.labels is None and prepared.image.shape == (10, 10, 2, 2)
  np.testing.assert_array_equal(prepared.mask, mask)
  np.testing.assert_allclose(prepared.image[..., 0], prepared.image[..., 1], atol=1e-5)


def test_prepare_subject_empty_or_constant_brain_raises_naming_subject():
  affine = _affine((1.0, 1.0, 3.0))
  volumes = SubjectVolumes("s3", {"flair": Volume(np.zeros((6, 6, 2), np.float32), affine,
                                                  path=pathlib.Path("x/FLAIR.nii.gz"))}, None, None)
  with pytest.raises(InputError, match=r"^s3: FLAIR\.nii\.gz: empty brain mask"):
    preprocess.prepare_subject(volumes)
  with pytest.raises(InputError, match=r"^s9: flair: channel 0 has constant intensity"):
    preprocess.prepare_subject(_volumes(np.ones((6, 6, 2), np.float32)))
