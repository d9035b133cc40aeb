"""The release in one command, end to end on the tiny config: train, calibrate, export, gate
(phantom domains and a labelled cohort standing in for the real scans), model card."""
import json

from conftest import run_module
from uresnet_jax.experiments import release_gate


def test_release_in_one_command_on_the_tiny_config(tiny_run, tmp_path):
  data, previous, _, _ = tiny_run
  run, export = tmp_path / "run", tmp_path / "export"
  args = ("--config=configs/release.py:tiny", f"--workdir={run}", f"--output={export}",
          f"--real={data / 'cohort' / 'subjects.csv'}",
          "--calibration_subjects=2", "--sources=the tiny run's phantom cohort",
          f"--config.data.cohort={tmp_path / 'cohort'}",
          f"--config.data.records_dir={tmp_path / 'tfds'}")
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
  assert json.loads((run / "domains.json").read_text()) == json.loads(
      (run / "gate" / "candidate" / "domains.json").read_text())
  # The model to beat is never overwritten.
  again = run_module("release", *args[:2], f"--output={previous}", f"--against={previous}")
  assert again.returncode == 1 and "is the model to beat" in again.stderr
