"""Tests for uresnet_jax.data.sampling: rates, shifts, extraction, padding, determinism,
Fig. A.10."""
import numpy as np
import pytest

from uresnet_jax.data import sampling


def _labels(num_wmh: int, num_stroke: int, shape=(20, 20, 3), seed=0) -> np.ndarray:
  labels = np.zeros(shape, np.uint8)
  flat = np.random.default_rng(seed).permutation(labels.size)
  labels.flat[flat[:num_wmh]] = 1
  labels.flat[flat[num_wmh:num_wmh + num_stroke]] = 2
  return labels


@pytest.mark.parametrize("num_wmh, num_stroke, wmh_rate, stroke_rate, want_wmh, want_stroke", [
    (103, 7, 0.2, 0.8, 21, 6),  # round(20.6), round(5.6)
    (2, 1, 0.2, 0.8, 1, 1),  # round(0.4) = 0, but a present class gets at least one
    (50, 0, 0.2, 0.8, 10, 0),  # no stroke: none sampled
    (50, 10, 0.0, 1.0, 0, 10),  # rate 0 samples nothing, rate 1 everything
])
def test_sample_centres_rates(num_wmh, num_stroke, wmh_rate, stroke_rate, want_wmh, want_stroke):
  labels = _labels(num_wmh, num_stroke)
  c = sampling.sample_centres(labels, wmh_rate=wmh_rate, stroke_rate=stroke_rate, max_shift=4,
                              rng=np.random.default_rng(1))
  assert np.sum(c.lesion_class == 1) == want_wmh
  assert np.sum(c.lesion_class == 2) == want_stroke
  x, y, z = c.lesion_voxel.T
  np.testing.assert_array_equal(labels[x, y, z], c.lesion_class)  # each is a voxel of its class
  assert len(np.unique(c.lesion_voxel, axis=0)) == len(c)  # without replacement
  assert len(c) == len(c.centre) == len(c.offset)


def test_sample_centres_empty_labels():
  c = sampling.sample_centres(np.zeros((5, 5, 2), np.uint8), wmh_rate=0.2, stroke_rate=0.8,
                              max_shift=3, rng=np.random.default_rng(0))
  assert len(c) == 0 and c.centre.shape == (0, 3) and c.offset.shape == (0, 2)


@pytest.mark.parametrize("max_shift", [0, 3])
def test_shift_bounds(max_shift):
  labels = _labels(400, 100, shape=(30, 30, 4))
  c = sampling.sample_centres(labels, wmh_rate=1.0, stroke_rate=1.0, max_shift=max_shift,
                              rng=np.random.default_rng(2))
  assert c.offset.min() == -max_shift and c.offset.max() == max_shift  # both ends reached
  np.testing.assert_array_equal(c.centre[:, :2], c.lesion_voxel[:, :2] + c.offset)
  np.testing.assert_array_equal(c.centre[:, 2], c.lesion_voxel[:, 2])  # slice never shifts


def test_sample_centres_rejects_bad_arguments():
  labels = _labels(5, 0)
  with pytest.raises(ValueError, match="rate"):
    sampling.sample_centres(labels, wmh_rate=1.5, stroke_rate=0.8, max_shift=0,
                            rng=np.random.default_rng(0))
  with pytest.raises(ValueError, match="max_shift"):
    sampling.sample_centres(labels, wmh_rate=0.2, stroke_rate=0.8, max_shift=-1,
                            rng=np.random.default_rng(0))


def test_determinism():
  labels = _labels(200, 30)
  kwargs = dict(wmh_rate=0.2, stroke_rate=0.8, max_shift=8)
  a = sampling.sample_centres(labels, rng=np.random.default_rng([7, 3]), **kwargs)
  b = sampling.sample_centres(labels, rng=np.random.default_rng([7, 3]), **kwargs)
  c = sampling.sample_centres(labels, rng=np.random.default_rng([8, 3]), **kwargs)
  for field in ("lesion_voxel", "lesion_class", "offset", "centre"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.centre, c.centre)


@pytest.mark.parametrize("patch_size", [8, 7])
def test_extract_inside_equals_volume_slice(patch_size):
  rng = np.random.default_rng(3)
  image = rng.normal(size=(30, 25, 4, 2)).astype(np.float32)
  labels = rng.integers(0, 3, size=(30, 25, 4)).astype(np.uint8)
  centre = np.array([[10, 12, 0], [15, 5, 3], [20, 20, 2]])
  patches, patch_labels = sampling.extract_patches(image, labels, centre, patch_size, -3.0)
  assert patches.shape == (3, patch_size, patch_size, 2) and patches.dtype == np.float32
  assert patch_labels.shape == (3, patch_size, patch_size) and patch_labels.dtype == np.uint8
  for i, (x, y, z) in enumerate(centre):
    x0, y0 = x - patch_size // 2, y - patch_size // 2
    np.testing.assert_array_equal(patches[i], image[x0:x0 + patch_size, y0:y0 + patch_size, z])
    np.testing.assert_array_equal(patch_labels[i],
                                  labels[x0:x0 + patch_size, y0:y0 + patch_size, z])
  # Even P: the centre voxel sits at index P/2 of the patch.
  np.testing.assert_array_equal(patches[:, patch_size // 2, patch_size // 2],
                                image[centre[:, 0], centre[:, 1], centre[:, 2]])


def test_extract_pads_outside_volume():
  image = np.arange(6 * 5 * 2, dtype=np.float32).reshape(6, 5, 2, 1) + 1.0
  labels = np.ones((6, 5, 2), np.uint8)
  # A corner centre, a centre beyond the volume, and a patch larger than the image.
  patches, patch_labels = sampling.extract_patches(
      image, labels, np.array([[0, 0, 1], [8, -3, 0], [3, 2, 0]]), 16, -3.0)
  inside = np.zeros((3, 16, 16), bool)
  inside[0, 8:14, 8:13] = True  # x 0..5, y 0..4 of the volume
  inside[1, 0:6, 11:16] = True  # x starts at 0 (= 8 - 8), y starts at -11
  inside[2, 5:11, 6:11] = True
  np.testing.assert_array_equal(patches[..., 0][~inside], -3.0)
  np.testing.assert_array_equal(patch_labels[~inside], 0)
  np.testing.assert_array_equal(patch_labels[inside], 1)
  np.testing.assert_array_equal(patches[0, 8:14, 8:13, 0], image[:, :, 1, 0])
  np.testing.assert_array_equal(patches[1, 0:6, 11:16, 0], image[:, :, 0, 0])
  np.testing.assert_array_equal(patches[2, 5:11, 6:11, 0], image[:, :, 0, 0])


def test_extract_no_centres():
  patches, patch_labels = sampling.extract_patches(
      np.zeros((4, 4, 2, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 3)), 8, 0.)
  assert patches.shape == (0, 8, 8, 3) and patch_labels.shape == (0, 8, 8)


def _lesion_frequency(max_shift: int, patch_size: int = 64) -> np.ndarray:
  """Share of patches with a lesion at each patch position, over scattered 1-voxel lesions."""
  labels = _labels(800, 0, shape=(128, 128, 4), seed=4)
  image = np.zeros(labels.shape + (1,), np.float32)
  counts = np.zeros((patch_size, patch_size))
  for seed in range(3):
    c = sampling.sample_centres(labels, wmh_rate=1.0, stroke_rate=1.0, max_shift=max_shift,
                                rng=np.random.default_rng(seed))
    _, patch_labels = sampling.extract_patches(image, labels, c.centre, patch_size, 0.0)
    counts += (patch_labels > 0).sum(axis=0)
  return counts / (3 * 800)


def test_shift_spreads_lesions_over_the_patch():
  """The paper's Figure A.10: without the shift lesions pile up at the patch centre."""
  noc, shifted = _lesion_frequency(0), _lesion_frequency(32)
  mid = 32
  assert noc[mid, mid] == 1.0
  assert noc[mid, mid] / noc.mean() > 30  # peaked: ~1 / lesion density
  assert shifted[mid, mid] / shifted.mean() < 1.5  # near-flat
  blocks = shifted.reshape(8, 8, 8, 8).mean(axis=(1, 3))  # 8x8-voxel blocks
  assert blocks.max() / blocks.mean() < 1.5 and blocks.min() / blocks.mean() > 0.6


def test_healthy_tissue_centres_lie_in_the_brain_off_lesions_and_leave_lesion_centres_alone():
  labels = _labels(60, 10, shape=(30, 30, 4))
  brain = np.zeros(labels.shape, bool)
  brain[5:25, 5:25] = True
  lesions_only = sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                                         rng=np.random.default_rng(7))
  both = sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                                 rng=np.random.default_rng(7), brain=brain, healthy_rate=0.5)
  n = len(lesions_only)
  assert len(both) == n + round(0.5 * n)
  np.testing.assert_array_equal(both.centre[:n], lesions_only.centre)  # drawn first, unchanged
  healthy = both.centre[n:]
  assert np.all(both.lesion_class[n:] == 0) and np.all(both.offset[n:] == 0)
  assert brain[tuple(healthy.T)].all() and np.all(labels[tuple(healthy.T)] == 0)
  assert len({tuple(c) for c in healthy}) == len(healthy)  # distinct voxels
  with pytest.raises(ValueError, match="brain mask"):
    sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                            rng=np.random.default_rng(7), healthy_rate=0.5)


def test_bright_share_centres_that_share_of_healthy_patches_on_bright_tissue():
  labels = _labels(60, 10, shape=(30, 30, 4))
  brain = np.zeros(labels.shape, bool)
  brain[5:25, 5:25] = True
  bright = np.zeros(labels.shape, bool)
  bright[5:8, 5:25] = True  # a bright healthy rim
  for share in (0.0, 0.5, 1.0):
    centres = sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                                      rng=np.random.default_rng(7), brain=brain,
                                      healthy_rate=1.0, bright=bright, bright_share=share)
    healthy = centres.centre[centres.lesion_class == 0]
    on_bright = (bright & (labels == 0))[tuple(healthy.T)]
    assert brain[tuple(healthy.T)].all() and np.all(labels[tuple(healthy.T)] == 0)
    assert on_bright.sum() >= round(share * len(healthy)), (share, on_bright.sum())
    if share == 1.0:
      assert on_bright.all()
  with pytest.raises(ValueError, match="bright"):
    sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                            rng=np.random.default_rng(7), brain=brain, healthy_rate=1.0,
                            bright_share=0.5)
  with pytest.raises(ValueError, match="bright_share"):
    sampling.sample_centres(labels, wmh_rate=0.5, stroke_rate=1.0, max_shift=4,
                            rng=np.random.default_rng(7), brain=brain, healthy_rate=1.0,
                            bright=bright, bright_share=1.5)


def test_slice_share_draws_slices_uniformly_not_voxels():
  labels = _labels(200, 40, shape=(40, 40, 10))
  brain = np.zeros(labels.shape, bool)
  brain[2:38, 2:38, 1:9] = True
  brain[18:22, 18:22, 0] = brain[18:22, 18:22, 9] = True  # top and bottom: 16 voxels each
  kwargs = dict(wmh_rate=1.0, stroke_rate=1.0, max_shift=4, brain=brain, healthy_rate=4.0)
  plain = sampling.sample_centres(labels, rng=np.random.default_rng(3), **kwargs)
  none = sampling.sample_centres(labels, rng=np.random.default_rng(3), slice_share=0.0, **kwargs)
  np.testing.assert_array_equal(plain.centre, none.centre)  # a share of 0 changes nothing
  uniform = sampling.sample_centres(labels, rng=np.random.default_rng(3), slice_share=1.0, **kwargs)
  healthy = uniform.centre[uniform.lesion_class == 0]
  assert len(healthy) == len(plain.centre[plain.lesion_class == 0]) == 960
  assert brain[tuple(healthy.T)].all() and np.all(labels[tuple(healthy.T)] == 0)
  per_slice = np.bincount(healthy[:, 2], minlength=10)
  assert per_slice.min() > 960 / 10 / 2  # every slice about 96, the 16-voxel ones included
  random_edges = np.isin(plain.centre[plain.lesion_class == 0][:, 2], (0, 9)).sum()
  assert per_slice[[0, 9]].sum() > 10 * max(random_edges, 1)
  half = sampling.sample_centres(labels, rng=np.random.default_rng(3), slice_share=0.5,
                                 bright=brain, bright_share=0.5, **kwargs)
  assert (half.lesion_class == 0).sum() == 960
  with pytest.raises(ValueError, match="slice_share"):
    sampling.sample_centres(labels, rng=np.random.default_rng(3), slice_share=0.6,
                            bright=brain, bright_share=0.5, **kwargs)


def test_dark_share_centres_that_share_of_healthy_patches_on_dark_tissue_after_the_others():
  labels = _labels(60, 10, shape=(30, 30, 4))
  brain = np.zeros(labels.shape, bool)
  brain[5:25, 5:25] = True
  dark = np.zeros(labels.shape, bool)
  dark[12:16, 12:16] = True  # a dark healthy ventricle
  kwargs = dict(wmh_rate=0.5, stroke_rate=1.0, max_shift=4, brain=brain, healthy_rate=1.0,
                bright=brain, bright_share=0.3)
  plain = sampling.sample_centres(labels, rng=np.random.default_rng(7), **kwargs)
  none = sampling.sample_centres(labels, rng=np.random.default_rng(7), dark=dark, dark_share=0.0,
                                 **kwargs)
  np.testing.assert_array_equal(plain.centre, none.centre)  # a share of 0 changes nothing
  centres = sampling.sample_centres(labels, rng=np.random.default_rng(7), dark=dark,
                                    dark_share=0.5, **kwargs)
  healthy = centres.centre[centres.lesion_class == 0]
  assert len(healthy) == len(plain.centre[plain.lesion_class == 0])
  assert brain[tuple(healthy.T)].all() and np.all(labels[tuple(healthy.T)] == 0)
  k_dark = min(round(0.5 * len(healthy)), (dark & (labels == 0)).sum())
  assert k_dark > 10
  assert (dark & (labels == 0))[tuple(healthy[-k_dark:].T)].all()  # the dark ones are drawn last
  for rate in (0.1, 0.125, 0.3, 0.5):  # few healthy patches (5: 2 + 2 + 2 > 5): each share rounds up, none goes negative
    few = sampling.sample_centres(labels, rng=np.random.default_rng(7), dark=dark, dark_share=0.3,
                                  **{**kwargs, "healthy_rate": rate, "bright_share": 0.3,
                                     "slice_share": 0.3})
    assert (few.lesion_class == 0).sum() == max(1, round(rate * (plain.lesion_class > 0).sum()))
  with pytest.raises(ValueError, match="dark mask"):
    sampling.sample_centres(labels, rng=np.random.default_rng(7), dark_share=0.5, **kwargs)
  with pytest.raises(ValueError, match="dark_share"):
    sampling.sample_centres(labels, rng=np.random.default_rng(7), dark=dark, dark_share=0.8,
                            **kwargs)
