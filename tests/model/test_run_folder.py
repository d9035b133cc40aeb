"""A run's folder: its files written whole and read back, its evaluations, its recorded training
time, and the lock a training run holds."""
import json

import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.model import run_folder
from uresnet_jax.training import scoring


def test_write_eval_makes_step_and_latest_and_reads_them_back(tmp_path):
  rows = [{"subject": "a", "wmh_dice": 0.5, "stroke_dice": float("nan"), "wmh_expert_ml": 1.0,
           "stroke_expert_ml": 0.0}]
  summary = scoring.summarize(rows)
  for step in (10, 20):
    run_folder.write_eval(tmp_path, rows, summary, step, step / 10)
  eval_dir = tmp_path / run_folder.EVAL
  assert json.loads((eval_dir / "latest" / "summary.json").read_text())["step"] == 20
  assert (eval_dir / "10" / "subjects.csv").read_text().startswith("subject,wmh_dice")
  assert sorted(p.name for p in eval_dir.iterdir()) == ["10", "20", "latest"]
  assert run_folder.read_eval(tmp_path, 10)["epoch"] == 1.0
  assert run_folder.eval_summary(run_folder.read_eval(tmp_path, 10)).keys() == summary.keys()
  assert run_folder.read_eval(tmp_path, 30) is None
  assert run_folder.read_eval(tmp_path, train=True) is None
  assert [s["step"] for s in run_folder.eval_history(tmp_path)] == [10, 20]
  assert [r["subject"] for r in run_folder.eval_subjects(tmp_path)] == ["a"]
  run_folder.write_eval(tmp_path, rows, summary, 20, 2.0, train=True)
  assert run_folder.read_eval(tmp_path, train=True)["step"] == 20


def test_training_time_is_recorded_not_read_from_file_times(tmp_path):
  assert run_folder.training_minutes(tmp_path) is None  # nothing recorded
  run_folder.write_experiment(tmp_path, {"cohort_fingerprint": "abc"})
  experiment = run_folder.read_experiment(tmp_path)
  assert experiment["cohort_fingerprint"] == "abc" and "started" in experiment
  experiment["started"] = "2026-01-01T10:00:00+00:00"
  (tmp_path / run_folder.EXPERIMENT).write_text(json.dumps(experiment))
  run_folder.write_eval(tmp_path, [{"subject": "a"}], {}, 1)
  recorded = run_folder.read_eval(tmp_path)
  recorded["written"] = "2026-01-01T10:30:00+00:00"
  (tmp_path / run_folder.EVAL / "latest" / "summary.json").write_text(json.dumps(recorded))
  assert run_folder.training_minutes(tmp_path) == pytest.approx(30.0)
  del experiment["started"]  # a run that predates the record
  (tmp_path / run_folder.EXPERIMENT).write_text(json.dumps(experiment))
  assert run_folder.training_minutes(tmp_path) is None


def test_config_and_the_calibrated_stroke_threshold(tmp_path):
  from configs import tiny
  assert run_folder.read_config(tmp_path) is None and not run_folder.is_run(tmp_path)
  with pytest.raises(InputError, match="no config.json"):
    run_folder.record_stroke_threshold(tmp_path, 0.8, {})
  run_folder.write_config(tmp_path, tiny.get_config())
  assert run_folder.is_run(tmp_path)
  run_folder.record_stroke_threshold(tmp_path, 0.8, {"tta": False})
  stored = run_folder.read_config(tmp_path)
  assert stored["predict"]["stroke_threshold"] == 0.8 and stored["seed"] == tiny.get_config().seed
  (tmp_path / run_folder.CONFIG).write_text("{")
  with pytest.raises(InputError, match="config.json: not valid JSON"):
    run_folder.read_config(tmp_path)


def test_a_run_refused_in_a_workdir_it_created_leaves_no_workdir(tmp_path):
  new, kept = tmp_path / "runs" / "new", tmp_path / "kept"
  kept.mkdir()
  for workdir in (new, kept):
    with pytest.raises(InputError, match="refused"):
      with run_folder.lock(workdir):
        assert (workdir / run_folder.LOCK).read_text() != ""
        raise InputError("refused")
  assert not (tmp_path / "runs").exists()  # nor the parent it made
  assert kept.is_dir()  # a workdir the user made is never removed
  written = tmp_path / "written"
  with pytest.raises(InputError):
    with run_folder.lock(written):
      (written / run_folder.CONFIG).write_text("{}")
      raise InputError("refused later")
  assert (written / run_folder.CONFIG).exists()  # a workdir holding output is kept


def test_a_second_run_on_a_locked_workdir_is_refused(tmp_path):
  with run_folder.lock(tmp_path):
    with pytest.raises(InputError, match=r"another training run \(pid \d+\)"):
      with run_folder.lock(tmp_path):
        pass
