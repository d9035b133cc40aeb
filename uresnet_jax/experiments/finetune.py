"""Adapts a pretrained model to a handful of a user's labelled scans, checks it on scans it did not
train on, and exports the result.

Run: python -m uresnet_jax.finetune --model=ARTIFACT|WORKDIR --cohort=MANIFEST --workdir=DIR
The cohort's subjects are split as the paper's folds are (stratified by stroke): a third of them (at
least one) are held out, the pretrained weights are trained further on the rest with the pretrained
model's own settings (patch sampling, loss, preprocessing) and a smaller learning rate, then both
the pretrained and the adapted model are scored on the held-out subjects (DIR/finetune.json) and
the adapted model is exported to DIR/export. Rerunning resumes an interrupted run.
"""
import json
import pathlib
from typing import Sequence

import ml_collections

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, patch_records
from uresnet_jax.inference import export, predictor
from uresnet_jax.model import run_folder
from uresnet_jax.training import held_out, loop, prepare_data, scoring

# The paper's sampling rates: a handful of scans should give every patch it can, whatever rates the
# pretrained model's large cohort was sampled at (the bundled model's are 0.01 and 0.3).
WMH_RATE, STROKE_RATE = 0.2, 0.8
HELD_OUT_FOLD = 0


def finetune_config(pretrained: ml_collections.ConfigDict, model: str, checkpoint: str,
                    cohort: str, workdir: pathlib.Path, num_subjects: int, epochs: int,
                    learning_rate: float, batch_size: int, wmh_rate: float = WMH_RATE,
                    stroke_rate: float = STROKE_RATE) -> ml_collections.ConfigDict:
  """The pretrained model's config on the user's cohort, starting from its weights (`model` at
  `checkpoint`): a third held out, a short schedule."""
  config = pretrained.copy_and_resolve_references()
  config.data.cohort = str(cohort)
  config.data.records_dir = str(workdir / run_folder.RECORDS)
  config.data.generate_phantom_if_missing = False
  config.data.num_folds = 3 if num_subjects >= 3 else 2
  config.data.eval_fold = HELD_OUT_FOLD
  config.train.epochs = epochs
  config.train.learning_rate = learning_rate
  config.train.decay_epoch = epochs  # no decay inside so short a schedule
  config.train.batch_size = batch_size
  config.sampling.wmh_rate = wmh_rate
  config.sampling.stroke_rate = stroke_rate
  config.train.eval_every = epochs
  config.train.eval_train_subjects = False
  config.train.init_from = str(model)  # the loop seeds step 0 from it, as any warm start
  config.train.init_checkpoint = checkpoint
  return config


def _score(config: ml_collections.ConfigDict, variables: dict,
           records: Sequence[nifti_io.SubjectRecord]) -> dict:
  """Mean Dice per class of `variables` on `records`, through the one prediction path."""
  model = predictor.from_variables(config, variables)
  subjects = scoring.load_eval_subjects(records, model.info)
  return scoring.summarize(scoring.evaluate_subjects(model, subjects))


def finetune(model: str, cohort: str, workdir: str | pathlib.Path, epochs: int = 10,
             learning_rate: float | None = None, batch_size: int | None = None,
             wmh_rate: float = WMH_RATE, stroke_rate: float = STROKE_RATE,
             checkpoint: str = "latest") -> dict:
  """Trains, scores and exports; returns what finetune.json holds."""
  workdir = pathlib.Path(workdir)
  pretrained, variables = predictor.load_variables(model, checkpoint)
  records = [r for r in nifti_io.read_cohort(cohort) if r.labels is not None]
  if len(records) < 2:
    raise InputError(f"{cohort}: {len(records)} labelled subject(s); fine-tuning needs at least 2 "
                     "(one to train on, one to check the result on)")
  config = finetune_config(pretrained, model, checkpoint, cohort, workdir, len(records), epochs,
                           learning_rate or pretrained.train.learning_rate / 10,
                           batch_size or min(pretrained.train.batch_size, 32), wmh_rate,
                           stroke_rate)
  workdir.mkdir(parents=True, exist_ok=True)
  builder = prepare_data.ensure_records(config)
  fold_of = patch_records.get_fold_assignment(builder)
  test_records = held_out.split(records, fold_of, config.data.eval_fold, held_out.subject)[1]
  before = _score(config, variables, test_records)
  after = loop.train_and_evaluate(config, str(workdir))
  exported = workdir / run_folder.EXPORT
  export.export_model(workdir, exported, overwrite=True)
  result = {"pretrained": str(model), "cohort": str(cohort), "epochs": epochs,
            "learning_rate": config.train.learning_rate,
            "held_out": [r.subject for r in test_records],
            "trained_on": sorted(held_out.split(fold_of, fold_of, config.data.eval_fold)[0]),
            "held_out_dice_before": before, "held_out_dice_after": after,
            "export": str(exported)}
  atomic.write_text(workdir / run_folder.FINETUNE, json.dumps(result, indent=1))
  return result


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import cli
  model = flags.DEFINE_string("model", None, "The pretrained model: a training workdir or an "
                              "exported model folder. Default: the bundled release model.")
  cohort = flags.DEFINE_string("cohort", None, "Your labelled scans: a manifest (subjects.csv) or "
                               "a folder holding one, 2 to 10 subjects.")
  workdir = flags.DEFINE_string("workdir", None, "Folder for the run, its records, finetune.json "
                                "and export/.")
  epochs = flags.DEFINE_integer("epochs", 10, "Passes over your scans' patches.")
  learning_rate = flags.DEFINE_float("learning_rate", None,
                                     "Default: a tenth of the pretrained model's.")
  batch_size = flags.DEFINE_integer("batch_size", None,
                                    "Default: the pretrained model's, at most 32.")
  wmh_rate = flags.DEFINE_float("wmh_rate", WMH_RATE, "Share of your WMH voxels used as patch "
                                 "centres (the paper's; lower it for a quicker run).")
  stroke_rate = flags.DEFINE_float("stroke_rate", STROKE_RATE, "Share of your stroke voxels used "
                                   "as patch centres (the paper's).")
  checkpoint = flags.DEFINE_string("checkpoint", "latest", "Of a pretrained workdir: latest or a "
                                   "saved step.")

  def main() -> None:
    for name, holder in (("cohort", cohort), ("workdir", workdir)):
      if not holder.value:
        raise InputError(f"--{name} is required")
    if epochs.value < 1:
      raise InputError(f"--epochs={epochs.value}: must be at least 1")
    for holder in (wmh_rate, stroke_rate):
      if not 0 < holder.value <= 1:
        raise InputError(f"--{holder.name}={holder.value}: must be in (0, 1]")
    result = finetune(str(predictor.model_path(model.value)), cohort.value, workdir.value,
                      epochs.value, learning_rate.value, batch_size.value, wmh_rate.value,
                      stroke_rate.value, checkpoint.value)
    for cls in ("wmh", "stroke"):
      b, a = result["held_out_dice_before"][cls], result["held_out_dice_after"][cls]
      print(f"held-out {cls} Dice: pretrained {b['dice_mean']:.3f}, adapted {a['dice_mean']:.3f} "
            f"(n={a['n_subjects']})")
    print(f"adapted model: {result['export']} (predict --model={result['export']})")

  cli.run_cli(main, logging.ERROR)

