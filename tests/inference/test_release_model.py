"""The bundled release model (uresnet_jax/release_model): small, trained with configs/release.py,
then configs/release_round2.py ... configs/release_round18.py, documented (its real-scan scores
included), and what `predict` and `finetune` use without --model."""
import csv
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import ROOT, subprocess_env, two_tiny_subjects
from uresnet_jax.inference import artifact, predictor
from uresnet_jax.experiments import model_card
from uresnet_jax.model import run_folder
from uresnet_jax.training import warm_start
from uresnet_jax.evaluation import metrics
from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError

from configs import release, release_round18


def test_bundled_model_is_small_documented_and_the_release_run():
  folder = predictor.BUNDLED_MODEL
  size = sum(f.stat().st_size for f in folder.iterdir())
  assert size <= 10e6, size
  manifest = artifact.load(folder).manifest  # checksums verified
  trained = manifest["training_config"]
  expected = release_round18.get_config()
  assert trained["phantom"]["random_protocol_probability"] == 1.0
  assert trained["sampling"]["healthy_rate"] == expected.sampling.healthy_rate > 0
  assert trained["sampling"]["slice_share"] == expected.sampling.slice_share > 0
  assert 0 < trained["predict"]["stroke_threshold"] < 1  # calibrated ...
  assert trained["predict"]["tta"] == expected.predict.tta  # ... on flip-averaged probabilities
  assert manifest["predict"] == trained["predict"]  # what predict applies
  assert not os.path.isabs(trained["train"]["init_from"]) and trained["train"]["init_from"]
  assert set(trained["domains"]["held_out"]) == set(expected.domains.held_out)
  assert not os.path.isabs(manifest["source"]["workdir"])  # no machine's path in the repo
  card = (folder / model_card.CARD).read_text()
  assert trained["phantom"]["embolic_count"] == list(expected.phantom.embolic_count)
  for name in (*expected.domains.held_out, "in_domain", "Known limits", "Intended use",
               "Results on real scans"):
    assert name in card


def test_bundled_loader_is_the_packages_artifact_module_with_its_checksum():
  """Export copies inference/artifact.py into every bundle: a fix there must reach the bundled copy,
  and the manifest's SHA-256 must be the copy's, or the bundle no longer loads."""
  bundled = predictor.BUNDLED_MODEL / artifact.LOADER
  assert bundled.read_bytes() == pathlib.Path(artifact.__file__).read_bytes()
  manifest = json.loads((predictor.BUNDLED_MODEL / artifact.MANIFEST).read_text())
  assert manifest["files"][artifact.LOADER] == hashlib.sha256(bundled.read_bytes()).hexdigest()


@pytest.mark.slow
def test_predict_without_model_uses_the_bundled_one(tmp_path):
  """A new in-domain phantom subject (a seed neither training nor the domains used): the bundled
  model finds its WMH."""
  config = release.get_config().phantom
  config.num_workers = 1
  config.stroke_probability = 0.0
  cohort = tmp_path / "cohort"
  phantom.write_cohort(cohort, 1, 4242, config)
  out = tmp_path / "out"
  result = subprocess.run(
      [sys.executable, "-m", "uresnet_jax.predict", f"--input={cohort / 'sub-000' / 'flair.nii.gz'}",
       f"--brain_mask={cohort / 'sub-000' / 'brain_mask.nii.gz'}", f"--output={out}"],
      cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  labels = np.asarray(nib.load(out / "flair_labels.nii.gz").dataobj)
  truth = np.asarray(nib.load(cohort / "sub-000" / "labels.nii.gz").dataobj)
  # A hard subject (3.8 mL of faint WMH, 1.1 x 6.5 mm voxels): the model finds some of it (0.16
  # measured); a broken or untrained model finds none.
  assert metrics.dice(truth, labels, 1) > 0.1
  assert float(next(csv.DictReader((out / "volumes.csv").open()))["wmh_ml"]) > 0
  assert str(predictor.BUNDLED_MODEL) in (out / "report.md").read_text()


def test_missing_bundle_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(predictor, "BUNDLED_MODEL", tmp_path / "none")
  with pytest.raises(InputError, match="no bundled model"):
    predictor.load_model(None)


def test_finetune_without_model_adapts_the_bundled_one(tiny_run, tmp_path):
  cohort = two_tiny_subjects(tiny_run, tmp_path / "cohort")
  out = tmp_path / "ft"
  result = subprocess.run(
      [sys.executable, "-m", "uresnet_jax.finetune", f"--cohort={cohort}",
       f"--workdir={out}", "--epochs=1", "--wmh_rate=0.005", "--stroke_rate=0.02"], cwd=ROOT, env=subprocess_env(),
      capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-2000:]
  began = json.loads((out / run_folder.PRETRAINED).read_text())
  assert began["model"] == str(predictor.BUNDLED_MODEL)
  bundled = artifact.load(predictor.BUNDLED_MODEL).weights
  assert began["weights_sha256"] == warm_start.weights_digest(bundled)
  assert artifact.load(out / "export").manifest["training_config"]["model"]["base_width"] == (
      release.get_config().model.base_width)
