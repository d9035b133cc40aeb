"""longitudinal/registration: a planted rigid transform recovered, resampling there and back, and
each implausible result ending in its one line."""
import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from uresnet_jax.longitudinal import config, registration
from uresnet_jax.phantom.fields import rotation_matrix

SHAPE = (56, 64, 48)  # 2 mm voxels: a 112 x 128 x 96 mm field of view


def _affine(zooms, angle_deg: float = 0.0) -> np.ndarray:
  """A grid centred on the scanner origin, tilted `angle_deg` about left-right."""
  a = np.eye(4)
  a[:3, :3] = rotation_matrix([angle_deg, 0.0, 0.0]) @ np.diag(zooms)
  a[:3, 3] = -a[:3, :3] @ (np.array(SHAPE) - 1) / 2
  return a


def _brain(seed: int) -> tuple[np.ndarray, np.ndarray]:
  """A textured ellipsoid (smooth random tissue, two dark 'ventricles') and its mask."""
  grid = np.stack(np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in SHAPE], indexing="ij"))
  mask = ((grid[0] / 24)**2 + (grid[1] / 28)**2 + (grid[2] / 20)**2) < 1
  rng = np.random.default_rng(seed)
  tissue = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
  tissue = 1000 + 4000 * tissue / tissue.std()
  for side in (-1, 1):
    tissue[((grid[0] - 5 * side) / 3)**2 + (grid[1] / 10)**2 + (grid[2] / 5)**2 < 1] = 200
  return (np.clip(tissue, 0, None) * mask).astype(np.float32), mask.astype(np.uint8)


def _planted(affine: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Follow-up -> baseline: 3, -2, 4 degrees about the brain's centre, a (4, -3, 2.5) mm shift."""
  centre = nib.affines.apply_affine(affine, np.argwhere(mask).mean(0))
  m = np.eye(4)
  m[:3, :3] = rotation_matrix([3.0, -2.0, 4.0])
  m[:3, 3] = centre - m[:3, :3] @ centre + [4.0, -3.0, 2.5]
  return m


def _pair(other_subject: bool = False):
  """A baseline on a 2 mm grid and its follow-up on a tilted 2 x 2 x 2.5 mm grid: the planted
  transform, 0.8 x the contrast, fresh noise. `other_subject`: another brain's texture."""
  settings = config.get_config().registration
  base_affine = _affine((2.0, 2.0, 2.0))
  data, mask = _brain(0)
  planted = _planted(base_affine, mask)
  follow_affine = _affine((2.0, 2.0, 2.5), angle_deg=8.0)
  source = _brain(1)[0] if other_subject else data
  moved = registration.resample(source, base_affine, np.linalg.inv(planted), follow_affine,
                                SHAPE, order=1)
  moved_mask = registration.resample(mask, base_affine, np.linalg.inv(planted), follow_affine,
                                     SHAPE, order=0)
  rng = np.random.default_rng(2)
  moved = (0.8 * moved + rng.normal(0, 50, SHAPE)).clip(0) * moved_mask
  baseline = nib.Nifti1Image(data, base_affine)
  followup = nib.Nifti1Image(moved.astype(np.float32), follow_affine)
  return baseline, followup, mask, moved_mask, planted, settings


def test_recovers_the_planted_transform_within_half_a_millimetre():
  baseline, followup, mask, moved_mask, planted, settings = _pair()
  rigid = registration.register_rigid(baseline, followup, baseline_mask=mask,
                                      followup_mask=moved_mask, settings=settings)
  base_points = nib.affines.apply_affine(baseline.affine, np.argwhere(mask))
  follow_points = nib.affines.apply_affine(np.linalg.inv(planted), base_points)
  recovered = nib.affines.apply_affine(rigid.matrix, follow_points)
  error = np.linalg.norm(recovered - base_points, axis=1)
  assert error.max() < 0.5, error.max()
  assert rigid.similarity > settings.min_similarity
  assert rigid.seconds > 0
  # Without masks the nonzero voxels of the skull-stripped images are the brains.
  unmasked = registration.register_rigid(baseline, followup, settings=settings)
  assert np.abs(unmasked.matrix - rigid.matrix).max() < 0.5


def test_resample_there_and_back():
  data, mask = _brain(0)
  labels = mask * (1 + (data > 2000)).astype(np.uint8)
  source, target = _affine((2.0, 2.0, 2.0)), _affine((1.5, 2.0, 2.5), angle_deg=10.0)
  planted = _planted(source, mask)
  # The identity onto the same grid returns the array itself, dtype kept for labels.
  same = registration.resample(labels, source, np.eye(4), source, SHAPE, order=0)
  assert same.dtype == np.uint8 and np.array_equal(same, labels)
  # A translation by one voxel shifts the array by one voxel.
  step = np.eye(4)
  step[:3, 3] = source[:3, 0]
  shifted = registration.resample(data, source, step, source, SHAPE, order=1)
  assert shifted.dtype == np.float32
  np.testing.assert_allclose(shifted[1:], data[:-1], atol=1e-2)
  # There (onto a finer, tilted grid) and back: labels agree away from label borders.
  there = registration.resample(labels, source, planted, target, (75, 64, 48), order=0)
  back = registration.resample(there, target, np.linalg.inv(planted), source, SHAPE, order=0)
  interior = ndimage.minimum_filter(labels, 3) == ndimage.maximum_filter(labels, 3)
  interior &= ndimage.binary_erosion(mask, iterations=4)
  assert interior.sum() > 1000
  assert (back[interior] == labels[interior]).mean() > 0.99


def test_no_overlap_of_the_fields_of_view():
  baseline, followup, mask, moved_mask, _, settings = _pair()
  elsewhere = followup.affine.copy()
  elsewhere[1, 3] += 400.0  # the follow-up's brain 40 cm from the baseline's in scanner space
  followup = nib.Nifti1Image(np.asarray(followup.dataobj), elsewhere)
  with pytest.raises(registration.RegistrationFailed, match="^no overlap of the fields of view"):
    registration.register_rigid(baseline, followup, baseline_mask=mask, followup_mask=moved_mask,
                                settings=settings)


@pytest.mark.parametrize("knob,value,line", [
    ("max_rotation_deg", 2.0, "lands implausibly far: a rotation of 5 degrees"),
    ("max_centre_mm", 0.0, r"lands implausibly far: the brains' centres end \d+ mm apart"),
])
def test_implausibly_far(knob, value, line):
  baseline, followup, mask, moved_mask, _, settings = _pair()
  settings[knob] = value  # the planted turn is 5.4 degrees; the centres end within a millimetre
  with pytest.raises(registration.RegistrationFailed, match=f"^registration {line}"):
    registration.register_rigid(baseline, followup, baseline_mask=mask, followup_mask=moved_mask,
                                settings=settings)


def test_different_brains_fall_below_the_similarity_floor():
  baseline, followup, mask, moved_mask, _, settings = _pair(other_subject=True)
  with pytest.raises(registration.RegistrationFailed,
                     match="^the visits look like different brains: intensity correlation"):
    registration.register_rigid(baseline, followup, baseline_mask=mask, followup_mask=moved_mask,
                                settings=settings)


def test_empty_mask():
  baseline, followup, mask, _, _, settings = _pair()
  with pytest.raises(registration.RegistrationFailed, match="^empty brain mask"):
    registration.register_rigid(baseline, followup, baseline_mask=mask,
                                followup_mask=np.zeros(SHAPE), settings=settings)
