"""`predict`'s output folder: refused, resumed or emptied once, locked while a run writes there,
each scan staged then recorded, and a full disk told in one line.

Each scan's files are written into OUT/.partial/<scan> and moved into place when it finishes, then
its record OUT/scans/<scan>.json (rows, files, the run's fingerprint) is written: a rerun of the
same command after a kill or a full disk skips the scans whose record and files are whole.
OUT/run.json holds the fingerprint (model checksum, settings, inputs); a rerun with others is
refused. OUT/.predict.lock, held with flock while a run writes, makes a second run refuse.
"""
import contextlib
import dataclasses
import errno
import fcntl
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
LOCK_FILE = ".predict.lock"  # flock-ed, holding the writer's pid, while a run writes in the folder
MB = 1e6


def fingerprint(settings: run_settings.RunSettings, scans: Sequence[scan_inputs.Scan]) -> str:
  """One hash of everything a scan's result depends on: the model, the options, the inputs."""
  described = {"model": settings.checksum, "options": settings.options.to_dict(),
               "probabilities": settings.probabilities, "bids": settings.bids,
               "scans": [[s.name, dataclasses.asdict(s.record),
                          *([s.dicom.identity()] if s.dicom else [])] for s in scans]}
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
  """Holds `output` for one run: checked, locked against another run, emptied with `overwrite`,
  resumed when its run.json has this fingerprint and refused when it has another. A run that ends
  in an InputError with nothing done leaves no folder it made; a full disk is one InputError."""
  check(output, overwrite)
  fresh = overwrite or not output.exists()
  made = not output.exists()
  try:
    with _writing(output):
      output.mkdir(parents=True, exist_ok=True)
      lock = _lock(output)
  except InputError:
    if made:
      with contextlib.suppress(OSError):
        output.rmdir()  # only when empty: not once another run has put its lock there
    raise
  try:
    try:
      with full_disk_told(output, output, resumable=True):
        with _writing(output):
          _claim(output, run_fingerprint, overwrite)
        yield
    except InputError:
      if fresh and not any((output / SCANS_DIR).glob("*.json")):  # nothing done: leave no folder
        shutil.rmtree(output, ignore_errors=True)
      raise
  finally:
    _unlock(output, lock)


@contextlib.contextmanager
def full_disk_told(output: pathlib.Path, work: pathlib.Path, resumable: bool) -> Iterator[None]:
  """A full disk (ENOSPC) while writing `work` (`output`, or a process's part of it) becomes one
  InputError line naming `output`, with the space free and about what one scan needs."""
  try:
    yield
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise
    raise _disk_full(output, work, resumable) from None


@contextlib.contextmanager
def _writing(output: pathlib.Path) -> Iterator[None]:
  """An OSError while making the folder ready becomes one line: a full disk, or why not."""
  try:
    yield
  except OSError as e:
    if e.errno == errno.ENOSPC:
      raise _disk_full(output, output, resumable=True) from None
    raise InputError(f"{output}: cannot write the results there ({e.strerror})") from None


def _lock(output: pathlib.Path) -> int:
  """Takes the folder's lock (its file descriptor) or refuses, naming the run that holds it."""
  path = output / LOCK_FILE
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
      os.close(fd)
      raise InputError(f"{output}: another predict is writing here (pid {pid}); wait for it or "
                       "choose another --output") from None
    try:
      if os.stat(path).st_ino == os.fstat(fd).st_ino:  # not a file its last holder removed
        break
    except FileNotFoundError:
      pass
    os.close(fd)
  try:
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
  except OSError:
    _unlock(output, fd)
    raise
  return fd


def _unlock(output: pathlib.Path, fd: int) -> None:
  (output / LOCK_FILE).unlink(missing_ok=True)  # before the unlock: the next run makes its own
  os.close(fd)


def _claim(output: pathlib.Path, run_fingerprint: str, overwrite: bool) -> None:
  """Makes the locked `output` ready: emptied with `overwrite`, refused when its run.json has
  another fingerprint, cleared of what a killed run left half-written, then fingerprinted."""
  run_file = output / RUN_FILE
  if overwrite:
    for entry in output.iterdir():
      if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
      elif entry.name != LOCK_FILE:
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


def _disk_full(output: pathlib.Path, work: pathlib.Path, resumable: bool) -> InputError:
  """The full disk's line: about what one scan needs is the mean of `work`'s finished scans (else
  what the unfinished one had written), whose files are then removed to free their space."""
  sizes = [s for p in (work / SCANS_DIR).glob("[!.]*.json") if (s := _used(work, p)) is not None]
  unfinished = sum(_allocated(f) for f in (work / PARTIAL_DIR).rglob("*") if f.is_file())
  shutil.rmtree(work / PARTIAL_DIR, ignore_errors=True)
  if sizes:
    need = f"; about {max(sum(sizes) / len(sizes), 0.1 * MB) / MB:.1f} MB needed per scan"
  elif unfinished:  # the first scan: what it had written when the disk filled
    need = f"; at least {max(unfinished, 0.1 * MB) / MB:.1f} MB needed per scan"
  else:
    need = ""
  existing = next(p for p in (output, *output.parents) if p.exists())
  free = shutil.disk_usage(existing).free / MB
  kept = ": finished scans are kept" if resumable else ""
  return InputError(f"{output}: the disk is full ({free:.1f} MB free{need}); free space and "
                    f"rerun{kept}")


def _allocated(path: pathlib.Path) -> int:
  """Bytes a file takes on its disk (whole blocks), not its length."""
  return path.stat().st_blocks * 512


def _used(out: pathlib.Path, record_file: pathlib.Path) -> int | None:
  """A finished scan's bytes on disk: its record and the files it lists."""
  try:
    files = json.loads(record_file.read_text())["files"]
    return _allocated(record_file) + sum(_allocated(out / f) for f in files)
  except (OSError, ValueError, KeyError, TypeError, AttributeError):
    return None


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
