"""Healthy bright tissue of real FLAIR in the phantom: slice gaps, skull strips, edge-shell
statistics, and each knob visible in a generated scan."""

import numpy as np
import pytest
from scipy import ndimage

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom import config as phantom_config
from uresnet_jax.phantom import bright_tissue
from uresnet_jax.phantom.acquisition import slice_profile
from uresnet_jax.phantom.realism import edge_stats



def test_slice_profile_sees_the_thickness_not_the_gap():
  np.testing.assert_allclose(slice_profile(4, 6.0, 6.0), [0.25] * 4)
  np.testing.assert_allclose(slice_profile(4, 8.0, 4.0), [0, 0.5, 0.5, 0])  # 2 mm gap each side
  assert slice_profile(3, 9.0, 0.5).tolist() == [0, 1, 0]  # thinner than a sub-slice


def test_skull_strip_dilates_erodes_and_keeps():
  grid = np.indices((40, 40, 9)).astype(float)
  brain = ((grid[0] - 20)**2 + (grid[1] - 20)**2 < 12**2) & (grid[2] > 1) & (grid[2] < 7)
  same, none = bright_tissue.skull_strip(brain, (1.0, 1.0, 3.0), 0.0)
  assert (same == brain).all() and not none.any()
  loose, band = bright_tissue.skull_strip(brain, (1.0, 1.0, 3.0), 2.5)
  assert (loose >= brain).all() and band.any() and not (band & brain).any()
  assert (loose == (brain | band)).all()
  tight, none = bright_tissue.skull_strip(brain, (1.0, 1.0, 3.0), -2.0)
  assert (tight <= brain).all() and tight.sum() < brain.sum() and not none.any()


def test_edge_stats_see_a_bright_edge_and_bright_deep_tissue():
  grid = np.indices((64, 64, 3)).astype(float)
  radius = np.hypot(grid[0] - 32, grid[1] - 32)
  brain = radius < 28
  rng = np.random.default_rng(0)
  flair = np.where(brain, 1.0 + 0.05 * rng.standard_normal(brain.shape), 0.0)
  labels = np.zeros(brain.shape, np.uint8)
  labels[30:34, 30:34] = 1
  flair[labels == 1] = 1.5
  dark = edge_stats(flair, labels, brain, (1.0, 1.0, 5.0))
  flair[brain & (radius > 26)] = 1.6  # a bright rim 2 voxels wide, inside the 3 mm shell
  bright = edge_stats(flair, labels, brain, (1.0, 1.0, 5.0))
  assert bright["edge_median_z"] > dark["edge_median_z"] + 0.5
  assert bright["edge_bright_pct"] > 30 > dark["edge_bright_pct"]
  assert dark["wmh_p10_healthy_z"] > 3  # lesions far above healthy tissue


@pytest.mark.parametrize("key, value", [("slice_gap_mm", (-1.0, 0.0)), ("csf_flow", (0.5, 0.1)),
                                        ("random_contrast_probability", 1.5),
                                        ("choroid_plexus_mm", (0.0, 2.0))])
def test_unsampleable_realism_range_is_an_input_error(key, value):
  config = phantom_config.get_config()
  config[key] = value
  with pytest.raises(InputError, match=key):
    phantom.validate_config(config)


def _release_phantom():
  from configs import release
  config = release.get_config().phantom
  config.num_workers = 1
  for key in ("edge_rim", "sulcal_csf", "choroid_plexus", "csf_flow", "mask_margin_mm",
              "slice_gap_mm"):
    config[key] = (0.0, 0.0)
  config.random_contrast_probability = 0.0
  return config


def _stats(subject):
  zooms = [float(z) for z in subject["clinical"]["protocol"].split("x")]
  return edge_stats(subject["flair"], subject["labels"], subject["brain_mask"], zooms)


@pytest.mark.slow
def test_each_bright_tissue_knob_shows_in_the_scan():
  """Same subject with one knob at a time: the brightness lands where that tissue is."""
  config = _release_phantom()
  base = phantom.generate_subject(0, 5, config)
  assert base["truth"]["real_random_contrast"] is False
  config.sulcal_csf = (0.7, 0.7)
  sulci = phantom.generate_subject(0, 5, config)
  assert _stats(sulci)["edge_median_z"] > _stats(base)["edge_median_z"] + 0.2
  config.sulcal_csf = (0.0, 0.0)
  config.choroid_plexus = (2.0, 2.0)
  choroid = phantom.generate_subject(0, 5, config)
  lifted = choroid["flair"].astype(float) - base["flair"].astype(float)
  assert (lifted > 500).sum() > 20  # a bright glomus (x1000 intensity units) ...
  zooms = [float(z) for z in base["clinical"]["protocol"].split("x")]
  depth = ndimage.distance_transform_edt(base["brain_mask"] > 0, sampling=(*zooms[:2], 1e4))
  assert np.median(depth[lifted > 500]) > 15  # ... deep in the brain, in the atria
  config.choroid_plexus = (0.0, 0.0)
  config.mask_margin_mm = (3.0, 3.0)
  loose = phantom.generate_subject(0, 5, config)
  assert loose["brain_mask"].sum() > 1.1 * base["brain_mask"].sum()
  assert (loose["labels"] == base["labels"]).all()  # the truth does not move
  assert loose["clinical"]["icv_ml"] == base["clinical"]["icv_ml"]


@pytest.mark.slow
def test_a_cavity_like_sulci_takes_the_sulcal_brightening_inside_the_infarct_only():
  """An old cortical infarct's cavity is as bright as the sulcal CSF around it, not darker."""
  config = _release_phantom()
  config.sulcal_csf = (0.6, 0.6)
  config.stroke_probability, config.stroke_type_weights = 1.0, (1.0, 0.0, 0.0)
  config.old_infarct_probability = 1.0
  dark = phantom.generate_subject(0, 5, config)
  config.cavity_like_sulci = True
  like = phantom.generate_subject(0, 5, config)
  lifted = like["flair"].astype(float) - dark["flair"].astype(float)
  stroke = like["labels"] == 2
  assert (like["labels"] == dark["labels"]).all()
  assert stroke.any() and (lifted[stroke] > 50).sum() > 100  # the cavity is brighter ...
  assert lifted.min() > -10  # nothing darker (Rician noise moves a dim voxel by a few units)
  zooms = [float(z) for z in like["clinical"]["protocol"].split("x")]
  near = ndimage.distance_transform_edt(~stroke, sampling=zooms) <= 2 * max(zooms)
  assert near[np.abs(lifted) > 1].mean() > 0.9  # ... and little else (small unlabelled cavities)
