"""finetune: a pretrained model adapted to a few labelled scans, checked on held-out ones, exported."""
import json
import shutil
import pytest

import jax
import ml_collections
import numpy as np

from conftest import run_module, two_tiny_subjects
from uresnet_jax.experiments import finetune
from uresnet_jax.inference import predictor
from uresnet_jax.model import checkpoints, run_folder


TINY_RATES = ("--wmh_rate=0.005", "--stroke_rate=0.02")  # the tiny config's: a quick test


def _run(*args):
  return run_module("finetune", *args, timeout=900)


def _max_difference(a, b) -> float:
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)))


def test_finetune_starts_from_the_pretrained_weights_and_exports(tiny_run, tmp_path):
  pretrained = tiny_run[1]
  cohort = two_tiny_subjects(tiny_run, tmp_path / "cohort")
  out = tmp_path / "ft"
  result = _run(f"--model={pretrained}", f"--cohort={cohort}", f"--workdir={out}",
                "--epochs=1", *TINY_RATES)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "held-out wmh Dice: pretrained" in result.stdout
  summary = json.loads((out / run_folder.FINETUNE).read_text())
  assert summary["held_out"] and summary["trained_on"]
  assert not set(summary["held_out"]) & set(summary["trained_on"])
  for key in ("held_out_dice_before", "held_out_dice_after"):
    assert summary[key]["wmh"]["n_subjects"] == len(summary["held_out"])
  config = predictor.read_run_config(out)
  assert config.train.epochs == 1 and config.data.num_folds == 2  # 2 subjects: one held out
  assert (config.sampling.wmh_rate, config.sampling.stroke_rate) == (0.005, 0.02)
  _, original = predictor.load_variables(pretrained)
  _, start = checkpoints.restore_variables(out, config, "0")
  assert _max_difference(start, original) == 0  # training began at the pretrained weights
  _, adapted = checkpoints.restore_variables(out, config)
  assert _max_difference(adapted, original) > 0
  # the export is a model predict and finetune accept, holding the adapted weights
  _, exported = predictor.load_variables(out / "export")
  assert _max_difference(exported, adapted) < 1e-6
  # the same workdir resumed from another pretrained model is refused
  other = _run(f"--model={out / 'export'}", f"--cohort={cohort}", f"--workdir={out}",
               "--epochs=1")
  assert other.returncode == 1 and "Traceback" not in other.stderr
  assert "another pretrained model" in other.stderr.strip().splitlines()[-1]


def test_one_labelled_subject_is_refused_in_one_line(tiny_run, tmp_path):
  data, pretrained = tiny_run[0], tiny_run[1]
  cohort = tmp_path / "cohort"
  shutil.copytree(data / "cohort", cohort)
  lines = (cohort / "subjects.csv").read_text().splitlines()
  (cohort / "subjects.csv").write_text("\n".join(lines[:2]) + "\n")
  result = _run(f"--model={pretrained}", f"--cohort={cohort}", f"--workdir={tmp_path / 'ft'}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "at least 2" in result.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "ft").exists()


@pytest.mark.slow
def test_a_sampling_rate_outside_0_1_is_refused_in_one_line(tmp_path):
  result = _run(f"--cohort={tmp_path}", f"--workdir={tmp_path / 'ft'}", "--wmh_rate=0")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "--wmh_rate=0.0: must be in (0, 1]" in result.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "ft").exists()


def test_few_scans_are_sampled_at_the_papers_rates_and_a_third_is_held_out(tmp_path):
  pretrained = ml_collections.ConfigDict({"data": {}, "train": {}, "sampling": {
      "wmh_rate": 0.01, "stroke_rate": 0.3}})  # the bundled model's rates
  config = finetune.finetune_config(pretrained, "model", "latest", "cohort", tmp_path,
                                    num_subjects=5, epochs=10, learning_rate=1e-4, batch_size=32)
  assert (config.sampling.wmh_rate, config.sampling.stroke_rate) == (0.2, 0.8)
  assert config.data.num_folds == 3  # a third held out
  for subjects, folds in ((4, 3), (3, 3), (2, 2)):
    assert finetune.finetune_config(pretrained, "model", "latest", "cohort", tmp_path, subjects, 10,
                                    1e-4, 32).data.num_folds == folds
