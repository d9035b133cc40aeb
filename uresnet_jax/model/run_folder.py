"""A training run's folder (its workdir): the name of every file in it, how each is read and written
(atomically), and the lock a training run holds; every other module asks here, never spells a name.

  config.json              the resolved config; calibration later records the stroke threshold
  experiment.json          the cohort fingerprint, fold assignment and data order; when it started
  pretrained.json          a warm-started run's source model and a digest of its weights
  checkpoints/<step>/      Orbax checkpoints; damaged_checkpoints/ those set aside
  eval/<step>/, eval/latest/, eval_train/...   subjects.csv and summary.json of each evaluation
  stroke_calibration.json  the stroke threshold's calibration table
  domains.json             the held-out phantom domains' scores
  gate/                    the release gate's scores (gate.json, gate.md, candidate/, current/)
  tensorboard/             the training curves
  records/, export/, finetune.json   a fine-tuning run's patch records, exported model, result
  .lock                    flock-ed, holding the trainer's pid, while a run trains
"""
import contextlib
import csv
import datetime
import fcntl
import io
import json
import os
import pathlib
from typing import Iterator

import ml_collections

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError

CONFIG = "config.json"
EXPERIMENT = "experiment.json"
PRETRAINED = "pretrained.json"
CHECKPOINTS = "checkpoints"
DAMAGED_CHECKPOINTS = "damaged_checkpoints"
EVAL = "eval"
EVAL_TRAIN = "eval_train"
LATEST = "latest"
STROKE_CALIBRATION = "stroke_calibration.json"
DOMAINS = "domains.json"
GATE = "gate"
TENSORBOARD = "tensorboard"
RECORDS = "records"
EXPORT = "export"
FINETUNE = "finetune.json"
LOCK = ".lock"
_SUBJECTS, _SUMMARY = "subjects.csv", "summary.json"
_RECORDED = ("step", "epoch", "written")  # what an evaluation's summary.json adds to the summary


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: pathlib.Path) -> dict | None:
  """A JSON file's content, None when it is missing, one InputError line when it is damaged."""
  if not path.is_file():
    return None
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise InputError(f"{path}: not valid JSON ({e.msg})") from None


def _write_json(path: pathlib.Path, content: dict, indent: int = 1, **options) -> None:
  atomic.write_text(path, json.dumps(content, indent=indent, **options))


# ------------------------------------------------------------------------------------ the config

def read_config(workdir: os.PathLike | str) -> dict | None:
  """The run's config.json as dicts, None when it has none."""
  return _read_json(pathlib.Path(workdir) / CONFIG)


def write_config(workdir: os.PathLike | str, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as config.json."""
  atomic.write_text(pathlib.Path(workdir) / CONFIG,
                    config.to_json_best_effort(indent=2, sort_keys=True))


def record_stroke_threshold(workdir: os.PathLike | str, threshold: float,
                            predict_defaults: dict) -> None:
  """Stores a calibrated stroke threshold in config.json's predict section (`predict_defaults`
  when the run predates one), from which export copies it into the model."""
  workdir = pathlib.Path(workdir)
  stored = read_config(workdir)
  if stored is None:
    raise InputError(f"{workdir}: no {CONFIG} (not a training run folder)")
  stored.setdefault("predict", predict_defaults)["stroke_threshold"] = threshold
  _write_json(workdir / CONFIG, stored, indent=2)


# ------------------------------------------------------------------------ experiment, pretrained

def read_experiment(workdir: os.PathLike | str) -> dict | None:
  """The cohort fingerprint, fold assignment and data order the run trained on, if recorded."""
  return _read_json(pathlib.Path(workdir) / EXPERIMENT)


def write_experiment(workdir: os.PathLike | str, record: dict) -> None:
  """Records what a fresh run trains on, and when it started (the model card's training time)."""
  _write_json(pathlib.Path(workdir) / EXPERIMENT, {**record, "started": _now()})


def read_pretrained(workdir: os.PathLike | str) -> dict | None:
  """The model a warm-started run began at ({"model", "weights_sha256"}); None: random weights."""
  return _read_json(pathlib.Path(workdir) / PRETRAINED)


def write_pretrained(workdir: os.PathLike | str, model: str, weights_sha256: str) -> None:
  """Records a warm start's source, so a resume from other weights is refused."""
  record = {"model": model, "weights_sha256": weights_sha256}
  _write_json(pathlib.Path(workdir) / PRETRAINED, record, indent=None)


# ----------------------------------------------------------------------------------- checkpoints

def checkpoint_dir(workdir: os.PathLike | str) -> pathlib.Path:
  """The Orbax checkpoints' folder, absolute (as Orbax wants it)."""
  return pathlib.Path(workdir).absolute() / CHECKPOINTS


def checkpoint_steps(workdir: os.PathLike | str) -> list[int]:
  """The steps saved in the run's checkpoints folder, oldest first."""
  folder = pathlib.Path(workdir) / CHECKPOINTS
  if not folder.is_dir():
    return []
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def damaged_dir(checkpoints: os.PathLike | str) -> pathlib.Path:
  """Where damaged checkpoints of a checkpoints folder are set aside."""
  return pathlib.Path(checkpoints).parent / DAMAGED_CHECKPOINTS


def is_run(path: os.PathLike | str) -> bool:
  """Whether `path` is a training run's folder (it has config.json)."""
  return (pathlib.Path(path) / CONFIG).is_file()


def model_files(workdir: os.PathLike | str, checkpoint: str = "latest") -> list[pathlib.Path]:
  """The files that make a run's model: config.json and one checkpoint ("latest" or a step)."""
  workdir = pathlib.Path(workdir)
  step = checkpoint if checkpoint.isdigit() else str(max(checkpoint_steps(workdir), default=-1))
  return [workdir / CONFIG, *sorted((workdir / CHECKPOINTS / step).rglob("*"))]


# ----------------------------------------------------------------------------------- evaluations

def write_eval(workdir: os.PathLike | str, rows: list[dict], summary: dict, step: int,
               epoch: float | None = None, train: bool = False) -> pathlib.Path:
  """Writes eval/<step>/{subjects.csv,summary.json} (eval_train/ for the training subjects) and
  refreshes eval/latest; summary.json also records the step, epoch and time written."""
  eval_dir = pathlib.Path(workdir) / (EVAL_TRAIN if train else EVAL)
  eval_dir.mkdir(parents=True, exist_ok=True)
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  recorded = {"step": step, "epoch": epoch, "written": _now(), **summary}
  for name in (str(step), LATEST):
    with atomic.replacing(eval_dir / name) as tmp:
      tmp.mkdir()
      (tmp / _SUBJECTS).write_text(text.getvalue())
      (tmp / _SUMMARY).write_text(json.dumps(recorded, indent=2))
  return eval_dir / str(step)


def read_eval(workdir: os.PathLike | str, step: int | str = LATEST, train: bool = False
              ) -> dict | None:
  """An evaluation's summary.json (with its step, epoch and time written), or None."""
  return _read_json(pathlib.Path(workdir) / (EVAL_TRAIN if train else EVAL) / str(step) / _SUMMARY)


def eval_summary(recorded: dict) -> dict:
  """read_eval's result less what write_eval added: the summary the evaluation returned."""
  return {k: v for k, v in recorded.items() if k not in _RECORDED}


def eval_history(workdir: os.PathLike | str, train: bool = False) -> list[dict]:
  """Every evaluation's summary.json of the run (eval_train/ for the training subjects)."""
  folder = pathlib.Path(workdir) / (EVAL_TRAIN if train else EVAL)
  return [json.loads(p.read_text()) for p in sorted(folder.glob(f"*/{_SUMMARY}"))
          if p.parent.name != LATEST]


def eval_subjects(workdir: os.PathLike | str, step: int | str = LATEST) -> list[dict]:
  """The held-out subjects' rows of an evaluation (subjects.csv)."""
  with open(pathlib.Path(workdir) / EVAL / str(step) / _SUBJECTS, newline="") as f:
    return list(csv.DictReader(f))


def training_minutes(workdir: os.PathLike | str) -> float | None:
  """Minutes from the run's start to its last evaluation, as recorded; None for a run that
  predates the records."""
  experiment, last = read_experiment(workdir), read_eval(workdir)
  if not experiment or not last or "started" not in experiment or "written" not in last:
    return None
  start = datetime.datetime.fromisoformat(experiment["started"])
  return (datetime.datetime.fromisoformat(last["written"]) - start).total_seconds() / 60


# ------------------------------------------------------------------ calibration, domains, lock

def read_calibration(workdir: os.PathLike | str) -> dict | None:
  """The stroke threshold's calibration (table, choice, held-out fold), for the model card."""
  return _read_json(pathlib.Path(workdir) / STROKE_CALIBRATION)


def write_calibration(workdir: os.PathLike | str, result: dict) -> None:
  """Keeps the whole calibration table beside the threshold config.json records."""
  _write_json(pathlib.Path(workdir) / STROKE_CALIBRATION, result)


def read_domains(folder: os.PathLike | str) -> dict | None:
  """The held-out domains' scores in a run (or in the release gate's folder of one model)."""
  return _read_json(pathlib.Path(folder) / DOMAINS)


def write_domains(folder: os.PathLike | str, result: dict) -> None:
  """Keeps the domain scores for the model card and the release gate."""
  _write_json(pathlib.Path(folder) / DOMAINS, result, default=list)


@contextlib.contextmanager
def lock(workdir: os.PathLike | str) -> Iterator[None]:
  """Holds <workdir>/.lock while a run trains in it: a second run started on the same workdir is
  refused (the lock is the kernel's, so a killed run leaves none behind). A run that fails before
  writing anything into a workdir it created leaves no workdir (nor parent it created) behind."""
  workdir = pathlib.Path(workdir)
  created = [d for d in (workdir, *workdir.parents) if not d.exists()]  # innermost first
  workdir.mkdir(parents=True, exist_ok=True)
  try:
    with open(workdir / LOCK, "a+") as held:
      try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        held.seek(0)
        holder = held.read().strip() or "?"
        raise InputError(f"{workdir}: another training run (pid {holder}) is using it; wait for "
                         "it to finish or use another --workdir") from None
      held.seek(0)
      held.truncate()
      held.write(str(os.getpid()))
      held.flush()
      yield
  except BaseException:
    if created and [p.name for p in workdir.iterdir()] == [LOCK]:
      (workdir / LOCK).unlink()
      for folder in created:
        folder.rmdir()
    raise
