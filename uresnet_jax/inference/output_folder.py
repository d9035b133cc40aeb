"""`predict`'s output folder: refused, resumed or emptied once, each scan staged then recorded.

Each scan's files are written into OUT/.partial/<scan> and moved into place when it finishes, then
its record OUT/scans/<scan>.json (rows, files, the run's fingerprint) is written: a rerun of the
same command after a kill skips the scans whose record and files are whole. OUT/run.json holds
the fingerprint (model checksum, settings, inputs); a rerun with others is refused.
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
from typing import Iterator, Sequence

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import scan_inputs
from uresnet_jax.inference import run_settings, scan_work

RUN_FILE = "run.json"  # the fingerprint (model checksum, settings, inputs) of a folder's results
SCANS_DIR = "scans"  # <scan>.json per finished scan: written last, so it marks a whole result
PARTIAL_DIR = ".partial"  # a scan's files while it is being segmented


def fingerprint(settings: run_settings.RunSettings, scans: Sequence[scan_inputs.Scan]) -> str:
  """One hash of everything a scan's result depends on: the model, the options, the inputs."""
  described = {"model": settings.checksum, "options": settings.options.to_dict(),
               "probabilities": settings.probabilities, "bids": settings.bids,
               "scans": [[s.name, dataclasses.asdict(s.record)] for s in scans]}
  return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def check(output: pathlib.Path, overwrite: bool) -> None:
  """Refuses a folder holding files that are not a run's (no run.json), as
  atomic.check_output_folder does; a folder with a run.json may be resumed."""
  if output.is_dir() and (output / RUN_FILE).is_file():
    return
  atomic.check_output_folder(output, overwrite)


def write_fingerprint(folder: pathlib.Path, run_fingerprint: str) -> None:
  atomic.write_text(folder / RUN_FILE, json.dumps({"fingerprint": run_fingerprint}))


@contextlib.contextmanager
def opened(output: pathlib.Path, run_fingerprint: str, overwrite: bool) -> Iterator[None]:
  """Holds `output` for one run: checked, emptied with `overwrite`, resumed when its run.json has
  this fingerprint and refused when it has another. A run that ends in an InputError with nothing
  done leaves no folder it made."""
  check(output, overwrite)
  fresh = overwrite or not output.exists()
  try:
    with _writing(output):
      output.mkdir(parents=True, exist_ok=True)
      _claim(output, run_fingerprint, overwrite)
    yield
  except InputError:
    if fresh and not any((output / SCANS_DIR).glob("*.json")):  # nothing done: leave no folder
      shutil.rmtree(output, ignore_errors=True)
    raise


@contextlib.contextmanager
def _writing(output: pathlib.Path) -> Iterator[None]:
  """An OSError while making the folder ready becomes one line."""
  try:
    yield
  except OSError as e:
    raise InputError(f"{output}: cannot write the results there ({e.strerror})") from None


def _claim(output: pathlib.Path, run_fingerprint: str, overwrite: bool) -> None:
  """Makes `output` ready: emptied with `overwrite`, refused when its run.json has
  another fingerprint, cleared of what a killed run left half-written, then fingerprinted."""
  run_file = output / RUN_FILE
  if overwrite:
    for entry in output.iterdir():
      if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
      else:
        entry.unlink()
  if run_file.is_file():
    try:
      recorded = json.loads(run_file.read_text())["fingerprint"]
    except (ValueError, KeyError, TypeError):
      recorded = None
    if recorded != run_fingerprint:
      raise InputError(f"{output}: holds results of another model, settings or input (see "
                       f"{run_file}); pass --overwrite to replace them, or choose another --output")
  shutil.rmtree(output / PARTIAL_DIR, ignore_errors=True)  # a scan a kill interrupted
  atomic.remove_leftovers(output)  # and a write it interrupted
  write_fingerprint(output, run_fingerprint)


def staged(out: pathlib.Path, name: str) -> pathlib.Path:
  """The folder one scan's files are written into while it is segmented."""
  stage = out / PARTIAL_DIR / name
  stage.mkdir(parents=True, exist_ok=True)
  return stage


def _record_file(out: pathlib.Path, name: str) -> pathlib.Path:
  return out / SCANS_DIR / f"{name}.json"


def finished(out: pathlib.Path, name: str, run_fingerprint: str) -> dict | None:
  """A scan's earlier result when its record is whole, of this run's fingerprint, and every file it
  lists is there at its recorded size; None (segment it again) otherwise."""
  try:
    record = json.loads(_record_file(out, name).read_text())
    if record["fingerprint"] != run_fingerprint:
      return None
    if all((out / f).stat().st_size == size for f, size in record["files"].items()):
      return record
  except (OSError, ValueError, KeyError, TypeError, AttributeError):
    pass
  return None


def commit(out: pathlib.Path, stage: pathlib.Path, result: scan_work.ScanResult,
           run_fingerprint: str) -> dict:
  """Moves a finished scan's files from `stage` into `out`, then writes its record (last)."""
  sizes = {}
  for rel in result.files:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage / rel, target)
    sizes[rel] = target.stat().st_size
  record = {"fingerprint": run_fingerprint, "volumes": result.volumes, "lesions": result.lesions,
            "review": result.review, "files": sizes}
  (out / SCANS_DIR).mkdir(exist_ok=True)
  atomic.write_text(_record_file(out, result.volumes["subject"]), json.dumps(
      record, default=lambda value: value.item()))  # numpy scalars
  shutil.rmtree(stage, ignore_errors=True)
  return record


def clear_staging(out: pathlib.Path) -> None:
  """Removes the staging of scans (all committed or abandoned)."""
  shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
