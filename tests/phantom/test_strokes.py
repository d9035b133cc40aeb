"""Tests for the stroke-realism knobs of the phantom: arterial territories, small cortical infarcts,
swelling, thalamic infarcts, recent lacunes, embolic showers and asymmetric ventricles, each on one
subject's canvas."""
import numpy as np
import pytest
from scipy import ndimage

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


def _strokes(canvas, seed=0, **knobs):
  cv, texture = canvas
  return strokes(np.random.default_rng(seed), cv, load_anatomy(), texture, 1.0, _config(**knobs),
                 np.random.default_rng(seed + 100))


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
