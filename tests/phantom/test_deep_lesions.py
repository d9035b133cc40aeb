"""Tests for where phantom/lesions.py:deep_lesions puts WMH (the ventricle wall, below the tentorium),
on test_strokes' subject canvas."""
import numpy as np

from uresnet_jax.phantom.lesions import Borders, deep_lesions

from test_strokes import _config, canvas  # noqa: F401 (canvas: a fixture)


def _deep(cv, probability: float, seed: int, knob: str = "juxtaventricular_probability"
          ) -> np.ndarray:
  """Deep lesions (as labelled) of one draw, 30 of them at severity 0.5."""
  config = _config(**{knob: probability}, deep_count=(30.0, 30.0))
  _, label = deep_lesions(np.random.default_rng(seed), cv, 0.5, 10**6,
                          Borders(edge=0.5, shrink=0.3, halo=1.0), config)
  return label >= 0.5


def test_juxtaventricular_lesions_lie_on_the_ventricle_wall(canvas):
  cv, _ = canvas
  for seed in range(2):
    deep, wall = _deep(cv, 0.0, seed), _deep(cv, 1.0, seed)
    assert deep.sum() > 300 and wall.sum() > 300, (seed, deep.sum(), wall.sum())
    near_deep, near_wall = (float((cv.vdist[m] < 2.5).mean()) for m in (deep, wall))
    assert near_deep < 0.01 and near_wall > 0.3, (seed, near_deep, near_wall)


def test_infratentorial_lesions_lie_in_the_brainstem_and_cerebellum(canvas):
  cv, _ = canvas
  for seed in range(2):
    cerebral = _deep(cv, 0.0, seed, "infratentorial_probability")
    below = _deep(cv, 1.0, seed, "infratentorial_probability")
    assert below.sum() > 300, (seed, below.sum())
    low_cerebral, low_below = (float((cv.mni[2][m] < -5).mean()) for m in (cerebral, below))
    assert low_cerebral < 0.15 and low_below > 0.9, (seed, low_cerebral, low_below)
    in_brainstem = below & (np.abs(cv.mni[0]) < 12) & (cv.mni[1] > -42)
    assert in_brainstem.sum() > 20, (seed, in_brainstem.sum())  # not only the cerebellum
