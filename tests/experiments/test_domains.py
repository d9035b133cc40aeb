"""Tests for the held-out phantom domains: the overlap check, the cohorts, the end-to-end scores."""
import json
import pathlib

import pytest

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.experiments import domains
from uresnet_jax.model import run_folder

from configs import release
from conftest import run_main


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


@pytest.mark.slow
def test_main_scores_every_domain_and_training_never_sees_them(tmp_path):
  """The release ranges on the tiny scale, end to end: domains.json per domain, and the held-out
  knobs' values in no training subject but in every subject of their domain."""
  data = tmp_path / "data"
  workdir = tmp_path / "run"
  code, out, err = run_main(workdir, data, f"--config.domains.root={data / 'domains'}",
                            config="configs/release.py:tiny")
  assert code == 0, err[-3000:]
  result = json.loads((workdir / run_folder.DOMAINS).read_text())
  config = release.get_config("tiny")
  assert list(result) == [domains.IN_DOMAIN, *config.domains.held_out]
  for name, r in result.items():
    assert r["dice"]["wmh"]["n_subjects"] == config.domains.subjects
    assert 0.0 <= r["dice"]["wmh"]["dice_mean"] <= 1.0
    assert set(r["realism"]) >= {"wmh_mean_z", "brain_p99_z", "load_pct"}
    assert f"| {name} |" in out

  def truth(root):
    model = json.loads((pathlib.Path(root) / phantom.GENERATIVE_MODEL).read_text())
    return model["subjects"]

  checks = {"thick_8mm": lambda t, c: float(c["protocol"].split("x")[2]),
            "csf_unsuppressed": lambda t, c: t["flair_csf"],
            "bright_lesions": lambda t, c: t["lesion_intensity"],
            "strong_deformation": lambda t, c: t["deformation_mm"]}
  training = truth(data / "cohort")
  clinical = {r["subject"]: r["clinical"] for r in _records(data / "cohort")}
  for name, value in checks.items():
    (key, (lo, hi)), = config.domains.held_out[name].items()
    for subject, t in training.items():
      assert not lo <= value(t, clinical[subject]) <= hi, (name, subject)
    held = pathlib.Path(result[name]["cohort"])
    held_clinical = {r["subject"]: r["clinical"] for r in _records(held)}
    for subject, t in truth(held).items():
      assert lo - 1e-3 <= value(t, held_clinical[subject]) <= hi + 1e-3, (name, subject)


def _records(root: pathlib.Path) -> list[dict]:
  return [json.loads(p.read_text()) for p in sorted(root.glob("sub-*/clinical.json"))]
