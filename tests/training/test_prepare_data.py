"""Which cohorts get the phantom generated: missing or half-generated ones, never a user's own."""
import pytest

from configs import tiny
from uresnet_jax.common.errors import InputError
from uresnet_jax.training import prepare_data


def _config(cohort, generate=True):
  config = tiny.get_config()
  config.data.cohort = str(cohort)
  config.data.generate_phantom_if_missing = generate
  return config


def test_missing_cohort_without_generation_is_a_clear_error(tmp_path):
  with pytest.raises(InputError, match="cohort not found"):
    prepare_data.ensure_cohort(_config(tmp_path / "nowhere", generate=False))


def test_existing_cohorts_are_left_alone(tmp_path, monkeypatch):
  monkeypatch.setattr(prepare_data.phantom, "write_cohort", lambda *a: pytest.fail("generated"))
  manifest_cohort = tmp_path / "mine"
  (manifest_cohort / "sub-000").mkdir(parents=True)
  (manifest_cohort / "subjects.csv").write_text("subject,flair,labels\n")
  challenge = tmp_path / "challenge" / "Utrecht" / "0"
  challenge.mkdir(parents=True)
  for cohort in (manifest_cohort, tmp_path / "challenge", manifest_cohort / "subjects.csv"):
    prepare_data.ensure_cohort(_config(cohort))


def test_interrupted_phantom_is_completed(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(prepare_data.phantom, "write_cohort", lambda *a: calls.append(a))
  cohort = tmp_path / "phantom"
  (cohort / "sub-000").mkdir(parents=True)
  (cohort / ".tmp-sub-001").mkdir()
  prepare_data.ensure_cohort(_config(cohort))
  assert len(calls) == 1 and calls[0][0] == cohort
