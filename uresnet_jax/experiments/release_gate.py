"""The bundled model's release gate: real validation scans scored as a user scores them (`predict`,
then `evaluate`), and the phantom's held-out domains, against the thresholds of config.release_gate.

Run: python -m uresnet_jax.release_gate --config=configs/release_round3.py --model=CANDIDATE
         --real=REAL/ms/subjects.csv,REAL/stroke/subjects.csv --against=uresnet_jax/release_model
         --output=OUT
Writes OUT/gate.json and OUT/gate.md; exits 1 when the candidate fails a check or does not beat
the model given by --against. The real scans are
the user's to supply (never shipped): a stroke-free cohort (every subject labelled `wmh+stroke`)
gives the false-stroke and WMH checks, a stroke cohort (`labelled` may be `stroke`) the stroke
checks.
"""
import csv
import dataclasses
import json
import math
import pathlib
import sys
from typing import Sequence

import ml_collections
import numpy as np

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import scan_inputs
from uresnet_jax.evaluation import labelled_cohort
from uresnet_jax.experiments import domains
from uresnet_jax.inference import predictor, segment

RESULT_FILE = "gate.json"
PHANTOM = "phantom"  # the first word of every phantom check's name
REPORT_FILE = "gate.md"
CANDIDATE, CURRENT = "candidate", "current"  # each model's scores, in a folder of its own


@dataclasses.dataclass(frozen=True)
class Check:
  """One release criterion on one scan, cohort or domain: passed when value is on the right side
  of limit (NaN never passes)."""
  name: str
  where: str
  value: float
  limit: float
  at_least: bool  # value >= limit passes (else value <= limit)

  @property
  def passed(self) -> bool:
    return bool(self.value >= self.limit if self.at_least else self.value <= self.limit)


def real_checks(rows: Sequence[dict], gate: ml_collections.ConfigDict) -> list[Check]:
  """The real-scan criteria from evaluate's metrics rows (one per subject and class): on every
  subject with expert stroke, stroke Dice and the share of its infarct called stroke; on every
  subject labelled free of stroke, the false stroke; the mean WMH Dice over subjects with expert
  WMH."""
  checks, wmh_dice = [], []
  for row in rows:
    if row["expert_labelled"] != "yes":
      continue
    subject = row["subject"]
    if row["class"] == "stroke" and row["expert_volume_ml"] > 0:
      checks.append(Check("stroke Dice", subject, row["dice"], gate.stroke_dice_min, True))
      checks.append(Check("infarct called stroke, %", subject, row["called_stroke_pct"],
                          gate.stroke_called_min_pct, True))
    elif row["class"] == "stroke":
      checks.append(Check("false stroke, mL", subject, row["false_stroke_ml"],
                          gate.false_stroke_max_ml, False))
    elif row["class"] == "wmh" and row["expert_volume_ml"] > 0:
      wmh_dice.append(row["dice"])
  if wmh_dice:
    checks.append(Check("mean WMH Dice", f"{len(wmh_dice)} scans with expert WMH",
                        float(np.mean(wmh_dice)), gate.wmh_dice_mean_min, True))
  return checks


def phantom_checks(result: dict, gate: ml_collections.ConfigDict) -> list[Check]:
  """The phantom criteria from domains.evaluate_domains' result: the median false stroke on the
  stroke-free subjects of every domain."""
  return [Check(f"{PHANTOM} false stroke median, mL", name, r["dice"]["false_stroke"]["median_ml"],
                gate.phantom_false_stroke_median_max_ml, False)
          for name, r in result.items() if r["dice"]["false_stroke"]["n_subjects"]]


def _margin(checks: Sequence[Check]) -> float:
  """How far the checks pass (or fail) in all, each in units of its limit."""
  margin = 0.0
  for c in checks:
    scale = max(abs(c.limit), 1e-3)
    value = c.value if math.isfinite(c.value) else (-1e3 if c.at_least else 1e3)
    margin += ((value - c.limit) if c.at_least else (c.limit - value)) / scale
  return margin


def score(checks: Sequence[Check]) -> tuple[int, int, float, float]:
  """(real-scan checks passed, checks passed, real-scan margin, phantom margin): how two models are
  ranked, in that order. Where the real scans and the phantom disagree, the real scans win: with
  as many checks passed, the phantom's many domains never outweigh the real scans' margin."""
  real = [c for c in checks if not c.name.startswith(PHANTOM)]
  synthetic = [c for c in checks if c.name.startswith(PHANTOM)]
  return (sum(c.passed for c in real), sum(c.passed for c in checks), _margin(real),
          _margin(synthetic))


def beats(candidate: Sequence[Check], current: Sequence[Check]) -> bool:
  """The candidate passes more real-scan checks than the current model, or as many and more
  checks in all, or as many of both and passes the real scans by a larger margin, or by as large
  a one and the phantom by a larger margin."""
  return score(candidate) > score(current)


def score_real_cohort(model: predictor.Predictor, model_path: pathlib.Path, manifest: str,
                      output: pathlib.Path) -> list[dict]:
  """`predict` then `evaluate` one labelled cohort, as a user would; returns evaluate's rows."""
  scans = scan_inputs.find_scans(manifest)
  predictions = output / "predictions"
  _, failures = segment.predict_scans(model, scans, predictions, model.options, str(model_path),
                                      overwrite=True)
  if failures:
    raise InputError(f"{manifest}: {len(failures)} scan(s) failed: {'; '.join(failures)}")
  labelled_cohort.evaluate_cohort(manifest, {"model": predictions}, output / "evaluation")
  with open(output / "evaluation" / "metrics.csv", newline="") as f:
    return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> float | str:
  try:
    return float(text)
  except ValueError:
    return text


def gate_model(config: ml_collections.ConfigDict, model_arg: str | None, manifests: Sequence[str],
               output: pathlib.Path, phantom: bool) -> dict:
  """Every check for one model; predictions, evaluations and domain scores under `output`."""
  path = predictor.model_path(model_arg)
  model = predictor.load_model(model_arg)
  rows, checks = [], []
  for i, manifest in enumerate(manifests):
    cohort_rows = score_real_cohort(model, path, manifest, output / f"real{i}")
    rows += cohort_rows
    checks += real_checks(cohort_rows, config.release_gate)
  if phantom:
    result = domains.evaluate_domains(config, model, output)
    checks += phantom_checks(result, config.release_gate)
  return {"model": str(path), "rows": rows, "checks": [dataclasses.asdict(c) | {"passed": c.passed}
                                                       for c in checks]}


def _tally(who: str, checks: Sequence[Check]) -> str:
  real, passed, real_margin, phantom_margin = score(checks)
  n_real = sum(not c.name.startswith(PHANTOM) for c in checks)
  return (f"{who}: {passed} of {len(checks)} checks passed, {real} of {n_real} on real scans "
          f"(margin {real_margin:+.2f} on real scans, {phantom_margin:+.2f} on the phantom)")


def run_gate(config: ml_collections.ConfigDict, config_file: str, model: str | None,
             against: str | None, manifests: Sequence[str], output: pathlib.Path, phantom: bool,
             sources: str = "") -> dict:
  """Gates `model` (beside `against`), writes output/gate.json and gate.md; returns gate.json."""
  if "release_gate" not in config:
    raise InputError("the config has no release_gate section (configs/release.py has one)")
  if not manifests and not phantom:
    raise InputError("nothing to check: give real manifests, or score the phantom domains")
  result = {"config": config_file, "sources": sources,
            "candidate": gate_model(config, model, manifests, output / CANDIDATE, phantom)}
  if against:
    result["current"] = gate_model(config, against, manifests, output / CURRENT, phantom)
  atomic.write_text(output / RESULT_FILE, json.dumps(result, indent=1))
  atomic.write_text(output / REPORT_FILE, format_report(result["candidate"], result.get("current")))
  return result


def passed(result: dict) -> bool:
  """Every check of the candidate passed, and it beats the current model when there is one."""
  candidate = checks_of(result["candidate"])
  return all(c.passed for c in candidate) and (
      "current" not in result or beats(candidate, checks_of(result["current"])))


def checks_of(result: dict) -> list[Check]:
  """The checks of one model's gate result (gate.json's candidate or current)."""
  return [Check(**{k: v for k, v in c.items() if k != "passed"}) for c in result["checks"]]


def format_report(candidate: dict, current: dict | None) -> str:
  """gate.md: every check, the candidate beside the current model."""
  lines = ["| check | where | limit | candidate | current |" if current else
           "| check | where | limit | candidate |", "|---|---|---|---|---|" if current else
           "|---|---|---|---|"]
  others = {(c.name, c.where): c for c in checks_of(current)} if current else {}

  def cell(c: Check | None) -> str:
    return "–" if c is None else f"{c.value:.3f} {'pass' if c.passed else '**FAIL**'}"

  for c in checks_of(candidate):
    sign = "≥" if c.at_least else "≤"
    row = [c.name, c.where, f"{sign} {c.limit:g}", cell(c)]
    if current:
      row.append(cell(others.get((c.name, c.where))))
    lines.append("| " + " | ".join(row) + " |")
  lines.append("\n" + _tally("candidate", checks_of(candidate)))
  if current:
    verdict = "beats" if beats(checks_of(candidate), checks_of(current)) else "does not beat"
    lines.append(f"{_tally('current', checks_of(current))}; the candidate {verdict} it")
  return "\n".join(lines) + "\n"


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import cli
  config_flag = config_flags.DEFINE_config_file(
      "config", None, "The release config: its release_gate thresholds and phantom domains.")
  model = flags.DEFINE_string("model", None, "The candidate: a training workdir or an exported "
                              "model (default: the bundled model).")
  against = flags.DEFINE_string("against", None, "The model the candidate must beat, e.g. the "
                                "bundled uresnet_jax/release_model.")
  real = flags.DEFINE_list("real", [], "Manifests (subjects.csv) of real labelled cohorts.")
  output = flags.DEFINE_string("output", None, "Folder for gate.json, gate.md and the scores.")
  phantom = flags.DEFINE_bool("phantom", True, "Also score the phantom's held-out domains.")
  sources = flags.DEFINE_string("sources", "", "Where the real scans come from (datasets, "
                                "licences), for the model card.")

  def main() -> None:
    config = cli.get_config(config_flag)
    if config is None or not output.value:
      raise InputError("--config and --output are required")
    result = run_gate(config, flags.FLAGS["config"].config_filename, model.value, against.value,
                      real.value, pathlib.Path(output.value), phantom.value, sources.value)
    print((pathlib.Path(output.value) / REPORT_FILE).read_text(), end="")
    if not passed(result):
      sys.exit(1)

  cli.run_cli(main, logging.WARNING)  # library INFO chatter (JAX backends, TFDS) only on request
