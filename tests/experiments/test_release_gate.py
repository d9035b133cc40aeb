"""Tests for the release gate: the checks on evaluate's rows and the domain scores, the ranking of
two models, the command's refusals (tests/experiments/test_release.py runs it end to end)."""
import math

import ml_collections
import pytest

from conftest import run_module
from uresnet_jax.experiments import release_gate

GATE = ml_collections.ConfigDict(dict(stroke_dice_min=0.4, stroke_called_min_pct=50.0,
                                      false_stroke_max_ml=1.0, wmh_dice_mean_min=0.45,
                                      phantom_false_stroke_median_max_ml=0.5))


def _row(subject, cls, labelled="yes", **values):
  row = dict(subject=subject, **{"class": cls}, expert_labelled=labelled, dice=math.nan,
             expert_volume_ml=0.0, false_stroke_ml=math.nan, called_stroke_pct=math.nan)
  return row | values


def test_real_checks_per_scan_and_class():
  rows = [
      _row("stroke1", "wmh", labelled="no"),  # an ISLES-like scan: WMH not labelled, not checked
      _row("stroke1", "stroke", dice=0.45, expert_volume_ml=4.2, called_stroke_pct=48.0),
      _row("ms1", "wmh", dice=0.3, expert_volume_ml=10.0),
      _row("ms1", "stroke", false_stroke_ml=0.4),
      _row("ms2", "wmh", dice=0.7, expert_volume_ml=3.0),
      _row("ms2", "stroke", false_stroke_ml=1.6),
      _row("ms3", "wmh", dice=math.nan, expert_volume_ml=0.0),  # no expert WMH: not in the mean
      _row("ms3", "stroke", false_stroke_ml=math.nan),  # NaN never passes
  ]
  checks = {(c.name, c.where): c for c in release_gate.real_checks(rows, GATE)}
  assert checks[("stroke Dice", "stroke1")].passed
  assert not checks[("infarct called stroke, %", "stroke1")].passed
  assert checks[("false stroke, mL", "ms1")].passed
  assert not checks[("false stroke, mL", "ms2")].passed
  assert not checks[("false stroke, mL", "ms3")].passed
  mean = checks[("mean WMH Dice", "2 scans with expert WMH")]
  assert mean.value == pytest.approx(0.5) and mean.passed
  assert len(checks) == 6  # nothing for the unlabelled WMH of stroke1


def test_phantom_checks_skip_domains_without_stroke_free_subjects():
  result = {"in_domain": {"dice": {"false_stroke": {"median_ml": 0.2, "n_subjects": 4}}},
            "loose": {"dice": {"false_stroke": {"median_ml": 0.7, "n_subjects": 3}}},
            "all_stroke": {"dice": {"false_stroke": {"median_ml": math.nan, "n_subjects": 0}}}}
  checks = release_gate.phantom_checks(result, GATE)
  assert [(c.where, c.passed) for c in checks] == [("in_domain", True), ("loose", False)]


def test_a_candidate_beats_by_real_checks_then_all_checks_then_real_then_phantom_margin():
  check = release_gate.Check
  current = [check("a", "x", 0.3, 0.4, True), check("b", "y", 2.0, 1.0, False),
             check("phantom b", "z", 0.4, 0.5, False)]
  one_pass = [check("a", "x", 0.41, 0.4, True), check("b", "y", 5.0, 1.0, False),
              check("phantom b", "z", 0.4, 0.5, False)]
  closer = [check("a", "x", 0.35, 0.4, True), check("b", "y", 1.5, 1.0, False),
            check("phantom b", "z", 0.4, 0.5, False)]
  real_wins = [check("a", "x", 0.41, 0.4, True), check("b", "y", 2.0, 1.0, False),
               check("phantom b", "z", 0.9, 0.5, False)]  # the phantom check now fails
  assert release_gate.beats(one_pass, current)  # more checks passed, however far the other
  assert release_gate.beats(closer, current) and not release_gate.beats(current, closer)
  assert not release_gate.beats(current, current)
  assert release_gate.beats(real_wins, current)  # real scans win over the phantom
  assert not release_gate.beats(current, real_wins)
  # As many checks passed: the real scans' margin decides before the phantom's, however many
  # phantom checks there are; the phantom's decides only between equal real margins.
  phantom_ok = [check(f"phantom {i}", "z", 0.0, 0.5, False) for i in range(10)]
  phantom_worse = [check(f"phantom {i}", "z", 0.3, 0.5, False) for i in range(10)]
  better_real = [check("a", "x", 0.35, 0.4, True), check("b", "y", 2.0, 1.0, False)]
  assert release_gate.beats(better_real + phantom_worse, current[:2] + phantom_ok)
  assert not release_gate.beats(current[:2] + phantom_ok, better_real + phantom_worse)
  assert release_gate.beats(current[:2] + phantom_ok, current[:2] + phantom_worse)


def test_gate_command_refuses_a_config_without_a_gate(tmp_path):
  result = run_module("release_gate", "--config=configs/tiny.py", f"--output={tmp_path / 'g'}",
                      "--phantom=false", "--real=x.csv")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "error: the config has no release_gate section (configs/release.py has one)")
  assert not (tmp_path / "g").exists()
