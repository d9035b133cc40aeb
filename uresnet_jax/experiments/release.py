"""Builds a bundled release model in one command: train (resuming a stopped run), calibrate its
stroke threshold, export it, gate it (the phantom's held-out domains and any real labelled scans,
beside the model it would replace) and write its model card.

Run: python -m uresnet_jax.release --config=configs/release_round3.py --workdir=runs/release_round3
         --output=runs/release_round3/export --against=uresnet_jax/release_model
         [--real=MS/subjects.csv,STROKE/subjects.csv --sources="..."]
Exits 1 when the new model fails the gate or does not beat --against; the export, gate.md and the
card are written either way, for a person to read before copying the export over the bundle.
"""
import pathlib
import sys
from typing import Sequence

import ml_collections

from uresnet_jax.common.errors import InputError
from uresnet_jax.experiments import calibration, domains, model_card, release_gate
from uresnet_jax.inference import export
from uresnet_jax.model import run_folder
from uresnet_jax.training import loop


def build_release(config: ml_collections.ConfigDict, config_file: str, workdir: pathlib.Path,
                  output: pathlib.Path, against: str | None, real: Sequence[str],
                  sources: str = "", calibration_subjects: int = 12) -> dict:
  """Every step of a release, each resumable or cheap to redo; returns release_gate's result."""
  if against and pathlib.Path(against).resolve() == output.resolve():
    raise InputError(f"--output={output} is the model to beat: export elsewhere, and copy it over "
                     "once it passes")
  domains.check_held_out(config)
  loop.use_compilation_cache(config)
  steps = ("trained", "calibrated", "exported", "gated", "card written")
  gate = workdir / run_folder.GATE
  loop.train_and_evaluate(config, str(workdir))
  _done(steps[0], workdir)
  chosen = calibration.calibrate(workdir, calibration_subjects, write=True)["chosen"]
  _done(f"{steps[1]} (stroke threshold {chosen:g})", workdir)
  export.export_model(workdir, output, overwrite=True)
  _done(steps[2], output)
  result = release_gate.run_gate(config, config_file, str(output), against, real, gate, True,
                                 sources)
  # The card's domain table: the exported model's, at its calibrated threshold.
  run_folder.write_domains(workdir, run_folder.read_domains(gate / release_gate.CANDIDATE))
  _done(steps[3], gate / release_gate.REPORT_FILE)
  model_card.write_card(workdir, output, gate / release_gate.RESULT_FILE)
  _done(steps[4], output / model_card.CARD)
  return result


def _done(step: str, where: pathlib.Path) -> None:
  print(f"{step}: {where}", flush=True)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import cli
  config_flag = config_flags.DEFINE_config_file("config", None, "The release config.")
  workdir = flags.DEFINE_string("workdir", None, "The training run (resumed when it exists).")
  output = flags.DEFINE_string("output", None, "Folder for the exported model and its card.")
  against = flags.DEFINE_string("against", None, "The model it must beat, e.g. the bundled "
                                "uresnet_jax/release_model.")
  real = flags.DEFINE_list("real", [], "Manifests (subjects.csv) of real labelled cohorts to "
                           "check it on (a `labelled` column says which classes each labels).")
  sources = flags.DEFINE_string("sources", "", "Where the real scans come from (datasets, "
                                "licences), for the model card.")
  subjects = flags.DEFINE_integer("calibration_subjects", 12, "Phantom subjects the stroke "
                                  "threshold is chosen on.")

  def main() -> None:
    config = cli.get_config(config_flag)
    if config is None or not workdir.value or not output.value:
      raise InputError("--config, --workdir and --output are required")
    result = build_release(config, flags.FLAGS["config"].config_filename,
                           pathlib.Path(workdir.value), pathlib.Path(output.value), against.value,
                           real.value, sources.value, subjects.value)
    print((pathlib.Path(workdir.value) / run_folder.GATE / release_gate.REPORT_FILE).read_text(),
          end="")
    if not release_gate.passed(result):
      sys.exit(1)

  cli.run_cli(main, logging.WARNING)
