"""Tests for the held-out phantom domains: the overlap check and the cohorts (their end-to-end
scores: tests/experiments/test_release.py, which trains the release config once for both)."""
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.experiments import domains

from configs import release


def test_release_domains_lie_outside_training():
  config = release.get_config()
  domains.check_held_out(config)  # the release config passes
  assert set(config.domains.held_out) == {"thick_8mm", "csf_unsuppressed", "bright_lesions",
                                          "strong_deformation", "bright_cortex", "choroid_plexus",
                                          "loose_skull_strip", "csf_flow"}


@pytest.mark.parametrize("name, changes, message", [
    ("faint", {"lesion_intensity": (1.0, 1.2)}, "overlaps the training range"),
    ("thick", {"random_thickness_mm": (6.0, 9.0)}, "slice thicknesses"),
    ("bad_knob", {"no_such_knob": 1.0}, "not a phantom knob"),
    ("calibrated", {"calibrate": True}, "only range knobs"),
    ("in_domain", {"noise_std": (0.2, 0.3)}, "reserved"),
])
def test_overlapping_or_unknown_domains_are_refused(name, changes, message):
  config = release.get_config()
  config.domains.held_out[name] = changes
  with pytest.raises(InputError, match=message):
    domains.check_held_out(config)


def test_domain_seed_must_differ_from_training():
  config = release.get_config()
  config.domains.seed = config.seed
  with pytest.raises(InputError, match="config.domains.seed"):
    domains.check_held_out(config)


def test_listed_protocols_count_as_training_thicknesses():
  config = release.get_config()
  config.phantom.random_protocol_probability = 0.0  # training draws the listed protocols only
  config.domains.held_out = {"thick_6mm": {"protocols": ((1.0, 1.0, 6.5),),
                                           "protocol_weights": (1.0,)}}
  with pytest.raises(InputError, match="slice thicknesses"):
    domains.check_held_out(config)
  config.domains.held_out = {"thick_8mm": {"protocols": ((1.0, 1.0, 8.0),),
                                           "protocol_weights": (1.0,)}}
  domains.check_held_out(config)
