"""A run's held-out fold: which subjects it holds (the one rule every run, score and split name
follows), and a training run's model on it or on another labelled cohort (`evaluate --workdir`)."""
import pathlib
import sys
from typing import Callable, Iterable, Mapping, TypeVar

import ml_collections
import numpy as np

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, patch_records
from uresnet_jax.inference import predictor
from uresnet_jax.model import run_folder
from uresnet_jax.training import scoring

T = TypeVar("T")


def split(items: Iterable[T], fold_of: Mapping[str, int], eval_fold: int,
          name: Callable[[T], str] = str) -> tuple[list[T], list[T]]:
  """(training, held-out) among `items`, in their order: those whose fold (`fold_of[name(item)]`)
  is `eval_fold` are held out, every other fold trains, an item with no fold is in neither."""
  training, held_out = [], []
  for item in items:
    fold = fold_of.get(name(item))
    if fold is not None:
      (held_out if fold == eval_fold else training).append(item)
  return training, held_out


def subject(record: nifti_io.SubjectRecord) -> str:
  """A cohort record's name in a fold assignment: `split`'s key for records."""
  return record.subject


def predict_with_run(workdir: pathlib.Path, cohort: str | None, checkpoint: str = "latest"
                     ) -> tuple[list[nifti_io.SubjectRecord], dict[str, np.ndarray], str]:
  """A run's model applied to its own held-out fold, or to every labelled subject of `cohort`:
  (records, subject -> labels on the native grid, the cohort scored). A `cohort` whose content is
  the run's own (moved or copied) is scored on the held-out fold only, never on training subjects."""
  config = predictor.read_run_config(workdir)
  model, _ = predictor.from_workdir(workdir, checkpoint)
  experiment = run_folder.read_experiment(workdir)
  held_out_only = cohort is None
  cohort = cohort if cohort is not None else config.data.cohort
  records = [r for r in nifti_io.read_cohort(cohort) if r.labels is not None]
  if not held_out_only and experiment is not None:
    own = patch_records.cohort_fingerprint(records, config.data.channels)
    held_out_only = own == experiment["cohort_fingerprint"]
  if held_out_only:
    records = held_out_records(workdir, config, records, cohort)
    subjects = scoring.load_eval_subjects(records, model.info)
    return records, {s.prepared.subject: model.predict_labels(s.prepared) for s in subjects}, cohort
  if not records:
    raise InputError(f"{cohort}: no subject with expert labels to score")
  predicted = {}
  for record in records:  # another cohort: refuse scans that need a brain mask they lack
    try:
      predicted[record.subject] = model.predict_labels(model.load(record, require_stripped=True))
    except InputError as e:
      print(f"warning: {e}; subject skipped", file=sys.stderr)
  return records, predicted, str(cohort)


def held_out_records(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                     records: list[nifti_io.SubjectRecord] | None = None,
                     cohort: str | None = None) -> list[nifti_io.SubjectRecord]:
  """The run's held-out fold (config.data.eval_fold) among `records` (default: the labelled
  subjects of the run's own cohort)."""
  cohort = cohort or config.data.cohort
  if records is None:
    records = [r for r in nifti_io.read_cohort(cohort) if r.labels is not None]
  experiment = run_folder.read_experiment(workdir)
  fold_of = experiment["fold_of_subject"] if experiment else _fold_assignment_of_records(config)
  records = split(records, fold_of, config.data.eval_fold, subject)[1]
  if not records:
    raise InputError(f"{workdir}: no held-out subjects of fold {config.data.eval_fold} in {cohort}")
  return records


def _fold_assignment_of_records(config: ml_collections.ConfigDict) -> dict[str, int]:
  """Folds of a run that predates experiment.json, read from its patch records."""
  builder = patch_records.UresnetPatches(config=patch_records.patches_config_from(config),
                                        data_dir=pathlib.Path(config.data.records_dir).expanduser())
  if not builder.data_path.exists():  # read only: the fold assignment is the records' metadata
    raise InputError(f"{builder.data_path}: the run's patch records are not built, so its "
                     "held-out fold is unknown; score another cohort with --cohort")
  return patch_records.get_fold_assignment(builder)
