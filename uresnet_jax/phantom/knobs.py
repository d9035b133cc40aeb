"""A knob's value drawn from its (lo, hi) range, and the check that every knob can be sampled."""
from typing import Sequence

import ml_collections
import numpy as np

from uresnet_jax.common.errors import InputError


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
  """A value drawn uniformly from a knob's (lo, hi) range."""
  return float(rng.uniform(bounds[0], bounds[1]))


RANGE_KEYS = (
    "random_inplane_mm", "random_thickness_mm", "oblique_deg", "head_scale", "rotation_deg",
    "translation_mm", "deformation_mm", "ventricle_enlargement_mm", "flair_gm", "flair_csf",
    "wmh_mean_z", "wmh_p10_z", "brain_p99_z", "lesion_intensity", "halo_gain",
    "wmh_heterogeneity", "wmh_edge_mm", "label_shrink_mm", "label_max_csf", "label_min_wmh_mm3",
    "halo_mm", "noise_std", "bias_field_std", "t1_gm", "t1_csf", "t1_wmh", "t1_gliosis",
    "pv_decay_mm", "pv_cap_weight", "pv_texture", "deep_count", "deep_radius_mm",
    "deep_elongation", "deep_cluster_probability", "deep_cluster_size", "lacune_count",
    "lacune_diameter_mm", "cortical_half_angle_deg", "gliotic_rim_mm", "infarct_intensity",
    "age_years", "head_aspect", "sulcal_widening_mm", "fov_extra_mm", "edge_rim", "edge_rim_mm",
    "ependymal", "ependymal_mm", "blur_mm", "ringing", "ghosting", "slice_gap_mm",
    "random_contrast", "edge_irregularity", "mask_margin_mm", "dura", "sulcal_csf",
    "choroid_plexus", "choroid_plexus_mm", "csf_flow", "cortical_extent", "recent_swelling",
    "embolic_count", "ventricle_asymmetry", "voxel_noise", "sulci_depth_mm", "sulci_width_mm",
    "striatocapsular_centre_z_mm", "infarct_irregularity", "infarct_heterogeneity",
    "tissue_sharpening")
_PROBABILITY_KEYS = ("random_protocol_probability", "stroke_probability",
                     "extra_lacune_probability", "old_infarct_probability", "male_probability",
                     "diabetes_probability", "smoking_probability",
                      "random_contrast_probability", "thalamic_probability",
                      "recent_lacune_probability", "juxtaventricular_probability",
                      "infratentorial_probability")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the first knob that cannot be sampled."""
  for key in RANGE_KEYS:
    value = config[key]
    if len(value) != 2 or not value[0] <= value[1]:
      raise InputError(f"config.{key}={tuple(value)}: expected a (lo, hi) range with lo <= hi")
  for key in _PROBABILITY_KEYS:
    if not 0 <= config[key] <= 1:
      raise InputError(f"config.{key}={config[key]}: expected a probability in [0, 1]")
  if not config.protocols or any(len(p) != 3 or min(p) <= 0 for p in config.protocols):
    raise InputError(f"config.protocols={config.protocols}: expected (in-plane, in-plane, "
                     "thickness) triples in mm, all > 0")
  for key, count in (("protocol_weights", len(config.protocols)), ("stroke_type_weights", 3),
                     ("cortical_territory_weights", 4)):
    weights = config[key]
    if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
      raise InputError(f"config.{key}={weights}: expected {count} weights >= 0, not all 0")
  if not 0 < config.wmh_model.clip_pct[0] < config.wmh_model.clip_pct[1]:
    raise InputError(f"config.wmh_model.clip_pct={config.wmh_model.clip_pct}: "
                     "expected 0 < lo < hi")
  if config.random_inplane_mm[0] <= 0 or config.random_thickness_mm[0] <= 0:
    raise InputError("config.random_inplane_mm / random_thickness_mm: spacings must be > 0")
  if config.num_workers < 1:
    raise InputError(f"config.num_workers={config.num_workers}: expected at least 1")
  for key, codes in [("orientation", config.orientation)] + [
      ("orientations", c) for c in config.orientations]:
    axes = sorted(str(codes).translate(str.maketrans("LPI", "RAS")))
    if len(codes) != 3 or axes != ["A", "R", "S"]:
      raise InputError(f"config.{key}: {codes!r} is not three axis codes such as RAS or LPS")
  if not 0 <= config.ringing[1] < 1:
    raise InputError(f"config.ringing={tuple(config.ringing)}: the share of k-space cut must be "
                     "in [0, 1)")
  if not 0 < config.cortical_extent[0] <= config.cortical_extent[1] <= 1:
    raise InputError(f"config.cortical_extent={tuple(config.cortical_extent)}: expected shares in "
                     "(0, 1]")
  if config.slice_gap_mm[0] < 0 or config.choroid_plexus_mm[0] <= 0:
    raise InputError(f"config.slice_gap_mm={tuple(config.slice_gap_mm)} / choroid_plexus_mm="
                     f"{tuple(config.choroid_plexus_mm)}: a gap must be >= 0 and a radius > 0")
  if config.voxel_noise[0] < 0:
    raise InputError(f"config.voxel_noise={tuple(config.voxel_noise)}: a noise std must be >= 0")
  if config.sulci_depth_mm[0] < 0 or config.sulci_width_mm[0] <= 0 or config.sulci_spacing_mm <= 0:
    raise InputError(f"config.sulci_depth_mm={tuple(config.sulci_depth_mm)} / sulci_width_mm="
                     f"{tuple(config.sulci_width_mm)} / sulci_spacing_mm={config.sulci_spacing_mm}: "
                     "a depth must be >= 0, a width and a spacing > 0")
  if (config.infarct_irregularity[0] < 0 or config.infarct_heterogeneity[0] < 0
      or config.infarct_texture_mm <= 0):
    raise InputError(f"config.infarct_irregularity={tuple(config.infarct_irregularity)} / "
                     f"infarct_heterogeneity={tuple(config.infarct_heterogeneity)} / "
                     f"infarct_texture_mm={config.infarct_texture_mm}: amplitudes must be >= 0, "
                     "a spacing > 0")
  if not 0 <= config.tissue_sharpening[0] <= config.tissue_sharpening[1] <= 1:
    raise InputError(f"config.tissue_sharpening={tuple(config.tissue_sharpening)}: expected "
                     "shares in [0, 1]")
  if config.head_aspect[0] <= 0:
    raise InputError(f"config.head_aspect={tuple(config.head_aspect)}: factors must be > 0")
