"""The release in one command, end to end on the tiny config: train, calibrate, export, gate
(phantom domains and a labelled cohort standing in for the real scans), model card; and the
held-out domains it scores, which training never sees."""
import json
import pathlib

import pytest

from configs import release as release_config
from conftest import run_module
from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.experiments import domains, release, release_gate
from uresnet_jax.model import run_folder


def test_release_in_one_command_on_the_tiny_config(tiny_run, tmp_path):
  data, previous, _, _ = tiny_run
  run, export = tmp_path / "run", tmp_path / "export"
  real = tmp_path / "real.csv"  # one stroke-free scan of the tiny cohort: the real checks' flow
  header, row = (data / "cohort" / "subjects.csv").read_text().splitlines()[:2]
  real.write_text(f"{header}\n" + ",".join(
      str(data / "cohort" / v) if v.endswith(".nii.gz") else v for v in row.split(",")) + "\n")
  args = ("--config=configs/release.py:tiny", f"--workdir={run}", f"--output={export}",
          f"--real={real}", "--calibration_subjects=1", "--sources=the tiny run's phantom cohort",
          f"--config.data.cohort={tmp_path / 'cohort'}",
          f"--config.data.records_dir={tmp_path / 'tfds'}",
          "--config.data.phantom_subjects=2",  # one to train on, one held out: the flow, for time
          "--config.phantom.num_workers=1")  # in-process: no worker start-up for 3 subjects
  result = run_module("release", *args)
  gate = json.loads((run / "gate" / "gate.json").read_text())
  assert result.returncode == (0 if release_gate.passed(gate) else 1), result.stderr[-2000:]
  for step in ("trained:", "calibrated (stroke threshold", "exported:", "gated:", "card written:"):
    assert step in result.stdout, result.stdout
  stored = json.loads((run / "config.json").read_text())
  calibration = json.loads((run / "stroke_calibration.json").read_text())
  assert stored["predict"]["stroke_threshold"] == calibration["chosen"]
  manifest = json.loads((export / "manifest.json").read_text())
  assert manifest["predict"]["stroke_threshold"] == calibration["chosen"]  # the export carries it
  assert gate["candidate"]["model"] == str(export) and "current" not in gate
  names = {c["name"] for c in gate["candidate"]["checks"]}
  assert "phantom false stroke median, mL" in names and "false stroke, mL" in names
  card = (export / "MODEL_CARD.md").read_text()
  assert "## Results on real scans" in card and "the tiny run's phantom cohort" in card
  scores = json.loads((run / run_folder.DOMAINS).read_text())
  assert scores == json.loads((run / "gate" / "candidate" / run_folder.DOMAINS).read_text())
  _check_domains(scores, tmp_path / "cohort", result.stdout)
  # The model to beat is never overwritten: refused before anything runs (the CLI's one-line
  # error for an InputError: tests/common/test_cli.py).
  with pytest.raises(InputError, match="is the model to beat"):
    release.build_release(release_config.get_config("tiny"), "configs/release.py:tiny", run,
                          previous, str(previous), [])


def _check_domains(scores: dict, training_cohort: pathlib.Path, stdout: str) -> None:
  """Every held-out domain scored, and each held-out knob's values in no training subject but in
  every subject of its domain."""
  config = release_config.get_config("tiny")
  assert list(scores) == [domains.IN_DOMAIN, *config.domains.held_out]
  for name, r in scores.items():
    assert r["dice"]["wmh"]["n_subjects"] == config.domains.subjects
    assert 0.0 <= r["dice"]["wmh"]["dice_mean"] <= 1.0
    assert set(r["realism"]) >= {"wmh_mean_z", "brain_p99_z", "load_pct"}
    assert f"| {name} |" in stdout

  def truth(root):
    return json.loads((pathlib.Path(root) / phantom.GENERATIVE_MODEL).read_text())["subjects"]

  checks = {"thick_8mm": lambda t, c: float(c["protocol"].split("x")[2]),
            "csf_unsuppressed": lambda t, c: t["flair_csf"],
            "bright_lesions": lambda t, c: t["lesion_intensity"],
            "strong_deformation": lambda t, c: t["deformation_mm"]}
  training = truth(training_cohort)
  clinical = {r["subject"]: r["clinical"] for r in _records(training_cohort)}
  for name, value in checks.items():
    (key, (lo, hi)), = config.domains.held_out[name].items()
    for subject, t in training.items():
      assert not lo <= value(t, clinical[subject]) <= hi, (name, subject)
    held = pathlib.Path(scores[name]["cohort"])
    held_clinical = {r["subject"]: r["clinical"] for r in _records(held)}
    for subject, t in truth(held).items():
      assert lo - 1e-3 <= value(t, held_clinical[subject]) <= hi + 1e-3, (name, subject)


def _records(root: pathlib.Path) -> list[dict]:
  return [json.loads(p.read_text()) for p in sorted(root.glob("sub-*/clinical.json"))]
