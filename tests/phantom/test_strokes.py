"""Tests for the stroke-realism knobs of the phantom: arterial territories, small cortical infarcts,
swelling, thalamic infarcts, recent lacunes, embolic showers, asymmetric ventricles and the deep
infarcts' height, outline and texture, each on one subject's canvas (or one small subject)."""
import numpy as np
import pytest
from scipy import ndimage

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom import config as phantom_config
from uresnet_jax.phantom.anatomy import Canvas, geometry, load_anatomy
from uresnet_jax.phantom.fields import smooth_noise
from uresnet_jax.phantom.lesions import strokes


def _config(**knobs):
  config = phantom_config.get_config()
  config.protocols = ((1.0, 1.0, 3.0),)
  config.deformation_mm = (0.0, 0.0)
  config.stroke_probability = 1.0
  config.stroke_type_weights = (1.0, 0.0, 0.0)
  config.extra_lacune_probability = 0.0
  config.old_infarct_probability = 0.0
  for key, value in knobs.items():
    config[key] = value
  return config


def _canvas(enlarge_mm: float = 0.0, asymmetry: float = 0.0):
  config, anatomy = _config(), load_anatomy()
  rng = np.random.default_rng(0)
  geo = geometry(rng, 0, anatomy, config, np.ones(3), config.fov_mm)
  return Canvas(rng, geo, enlarge_mm, anatomy, config, asymmetry)


@pytest.fixture(scope="module")
def canvas():
  cv = _canvas()
  texture = smooth_noise(np.random.default_rng(1), cv.grid, 5.0, 1)[0]
  return cv, texture


def _strokes(canvas, seed=0, lobes=None, **knobs):
  cv, texture = canvas
  return strokes(np.random.default_rng(seed), cv, load_anatomy(), texture, 1.0, _config(**knobs),
                 np.random.default_rng(seed + 100), lobes)


def _centroid_mni(cv, fraction):
  inside = fraction >= 0.5
  return np.array([cv.mni[a][inside].mean() for a in range(3)])


@pytest.mark.parametrize("weights, kind, where", [
    ((1.0, 0.0, 0.0, 0.0), "cortical", lambda c: abs(c[0]) > 25),  # lateral convexity
    ((0.0, 1.0, 0.0, 0.0), "cortical_aca", lambda c: abs(c[0]) < 22 and c[2] > 25),  # medial, high
    ((0.0, 0.0, 1.0, 0.0), "cortical_pca", lambda c: c[1] < -45),  # occipital
    ((0.0, 0.0, 0.0, 1.0), "cortical_watershed", lambda c: abs(c[0]) > 15 and c[2] > 20),
])
def test_cortical_infarcts_lie_in_their_arterial_territory(canvas, weights, kind, where):
  for seed in range(2):
    stroke, _, kinds = _strokes(canvas, seed, cortical_territory_weights=weights)
    assert kinds == kind
    assert (stroke >= 0.5).sum() > 0
    centroid = _centroid_mni(canvas[0], stroke)
    assert where(centroid), (kind, centroid.round(1))


def test_a_small_extent_scales_the_wedge_down_towards_the_cortex(canvas):
  cv = canvas[0]
  full, _, _ = _strokes(canvas, 3, cortical_extent=(1.0, 1.0))
  small, _, _ = _strokes(canvas, 3, cortical_extent=(0.3, 0.3))
  n_full, n_small = (full >= 0.5).sum(), (small >= 0.5).sum()
  assert 0 < n_small < n_full / 5
  # Its voxels are the outer part of the full wedge: farther from the ventricles on average.
  assert cv.vdist[small >= 0.5].mean() > cv.vdist[full >= 0.5].mean()


def test_a_recent_infarct_swells_over_the_sulci_but_never_the_ventricles(canvas):
  cv = canvas[0]
  dry, _, _ = _strokes(canvas, 4)
  swollen, _, _ = _strokes(canvas, 4, recent_swelling=(1.0, 1.0))
  added = (swollen >= 0.5) & (dry < 0.5)
  assert added.sum() > 100
  assert (cv.gm + cv.wm)[added].mean() < 0.5  # what it takes in is CSF
  assert not ((swollen > 0) & (cv.vdist < 0)).any()
  old, cavity, _ = _strokes(canvas, 4, old_infarct_probability=1.0)
  old_swollen, _, _ = _strokes(canvas, 4, recent_swelling=(1.0, 1.0), old_infarct_probability=1.0)
  assert cavity.any()
  np.testing.assert_array_equal(old, old_swollen)  # old infarcts do not swell


def test_thalamic_infarcts_and_recent_lacunes(canvas):
  stroke, _, kinds = _strokes(canvas, 5, stroke_type_weights=(0.0, 1.0, 0.0),
                              thalamic_probability=1.0)
  centroid = _centroid_mni(canvas[0], stroke)
  assert kinds == "thalamic" and abs(centroid[0]) < 20 and -32 < centroid[1] < -8, centroid
  lacunar = dict(stroke_type_weights=(0.0, 0.0, 1.0), lacune_count=(2, 2))
  stroke_old, cavity_old, _ = _strokes(canvas, 6, **lacunar)
  stroke_new, cavity_new, _ = _strokes(canvas, 6, recent_lacune_probability=1.0, **lacunar)
  assert cavity_old.sum() > 0 and cavity_new.sum() == 0  # recent: bright, no CSF cavity
  np.testing.assert_array_equal(stroke_old >= 0.5, stroke_new >= 0.5)  # the same lacunes


def test_an_embolic_shower_adds_small_infarcts(canvas):
  alone, _, kinds = _strokes(canvas, 7)
  shower, _, kinds_shower = _strokes(canvas, 7, embolic_count=(4, 4))
  assert kinds == "cortical" and kinds_shower == "cortical+embolic"
  count = [ndimage.label(s >= 0.5)[1] for s in (alone, shower)]
  assert count[1] > count[0], count
  assert ((alone >= 0.5) & (shower < 0.5)).sum() == 0  # the first infarct is unchanged


def test_ventricle_asymmetry_enlarges_one_side_more():
  sides = []
  for asymmetry in (0.0, 0.6):
    cv = _canvas(enlarge_mm=5.0, asymmetry=asymmetry)
    ventricle = cv.vdist < 0
    sides.append([(ventricle & (cv.mni[0] > 0)).sum(), (ventricle & (cv.mni[0] < 0)).sum()])
  (right0, left0), (right1, left1) = sides
  assert right1 / left1 > 1.15 * right0 / left0, sides  # positive asymmetry: the right one


_DEEP = dict(stroke_type_weights=(0.0, 1.0, 0.0), extra_lacune_probability=1.0,
             embolic_count=(2, 2))  # striatocapsular, a lacune and two emboli


def test_a_zero_outline_field_is_the_smooth_ellipsoid_bit_for_bit(canvas):
  for seed in range(3):
    smooth = _strokes(canvas, seed, **_DEEP)
    zero = _strokes(canvas, seed, np.zeros(canvas[0].grid.shape, np.float32), **_DEEP)
    assert smooth[2] == zero[2]
    for a, b in zip(smooth[:2], zero[:2]):
      np.testing.assert_array_equal(a, b)


def _surface_share(fraction):
  inside = fraction >= 0.5
  return (inside & ~ndimage.binary_erosion(inside)).sum() / inside.sum(), inside.sum()


def test_irregularity_lobulates_a_striatocapsular_infarct_at_about_its_volume(canvas):
  cv = canvas[0]
  field = smooth_noise(np.random.default_rng(2), cv.grid, 4.0, 1)[0]
  for seed in range(3):
    smooth, _, kinds = _strokes(canvas, seed, stroke_type_weights=(0.0, 1.0, 0.0))
    lobed, _, _ = _strokes(canvas, seed, 0.3 * field, stroke_type_weights=(0.0, 1.0, 0.0))
    (share_smooth, n_smooth), (share_lobed, n_lobed) = map(_surface_share, (smooth, lobed))
    assert kinds == "striatocapsular" and n_smooth > 300
    assert share_lobed > 1.1 * share_smooth, (seed, share_smooth, share_lobed)
    assert 0.6 < n_lobed / n_smooth < 1.4, (seed, n_smooth, n_lobed)


def test_a_high_striatocapsular_centre_reaches_the_corona_radiata(canvas):
  for seed in range(2):
    low, _, _ = _strokes(canvas, seed, stroke_type_weights=(0.0, 1.0, 0.0),
                         striatocapsular_centre_z_mm=(0.0, 2.0))
    high, _, _ = _strokes(canvas, seed, stroke_type_weights=(0.0, 1.0, 0.0),
                          striatocapsular_centre_z_mm=(25.0, 28.0))
    z_low, z_high = _centroid_mni(canvas[0], low)[2], _centroid_mni(canvas[0], high)[2]
    assert z_high > 18 > z_low + 10, (seed, z_low, z_high)


@pytest.mark.slow
def test_heterogeneity_makes_a_recent_infarct_patchy_and_changes_nothing_else():
  """One small subject with a recent striatocapsular infarct: the neutral knobs draw no field
  (another knot spacing changes no bit); heterogeneity leaves the labels and T1 as they were and
  spreads the FLAIR inside the infarct."""
  config = phantom_config.get_config()
  config.num_workers = 1
  config.protocols, config.protocol_weights = ((1.0, 1.0, 5.0),), (1.0,)
  config.stroke_probability, config.stroke_type_weights = 1.0, (0.0, 1.0, 0.0)
  config.old_infarct_probability, config.extra_lacune_probability = 0.0, 0.0
  plain = phantom.generate_subject(0, 4, config)
  config.infarct_texture_mm = 2.0
  neutral = phantom.generate_subject(0, 4, config)
  for key in ("flair", "t1", "labels", "brain_mask", "wm"):
    np.testing.assert_array_equal(neutral[key], plain[key])
  config.infarct_heterogeneity = (0.4, 0.4)
  patchy = phantom.generate_subject(0, 4, config)
  for key in ("t1", "labels", "brain_mask", "wm"):
    np.testing.assert_array_equal(patchy[key], plain[key])
  assert plain["truth"]["infarct_heterogeneity"] == 0.0
  assert patchy["truth"]["infarct_heterogeneity"] == 0.4
  infarct = plain["labels"] == 2
  assert infarct.sum() > 50
  spread = [s["flair"][infarct].std() / s["flair"][infarct].mean() for s in (plain, patchy)]
  assert spread[1] > 1.5 * spread[0], spread


def test_a_negative_irregularity_is_an_input_error():
  config = phantom_config.get_config()
  config.infarct_irregularity = (-0.1, 0.2)
  with pytest.raises(InputError, match="infarct_irregularity"):
    phantom.validate_config(config)
