"""One case per bad input and per CLI that can meet it: one `error:` line naming the file and the
problem, a non-zero exit, no traceback, and nothing half-written where the output would go."""
import dataclasses
import pathlib
import shutil
from typing import Callable

import nibabel as nib
import numpy as np
import pytest

from conftest import run_module


@dataclasses.dataclass(frozen=True)
class Case:
  cli: str  # module under uresnet_jax
  make: Callable[[pathlib.Path, tuple], list[str]]  # (tmp_path, tiny_run) -> arguments
  expected: tuple[str, ...]  # every one appears in the error line
  output: str = "out"  # the output path under tmp_path that must hold nothing new


def _copy_cohort(tmp: pathlib.Path, run) -> pathlib.Path:
  cohort = tmp / "cohort"
  shutil.copytree(run[0] / "cohort", cohort)
  return cohort


def _truncated_flair(tmp, run):
  cohort = _copy_cohort(tmp, run)
  flair = cohort / "sub-001" / "flair.nii.gz"
  flair.write_bytes(flair.read_bytes()[:300])
  return cohort


def _labels_out_of_range(tmp, run):
  cohort = _copy_cohort(tmp, run)
  labels = nib.load(cohort / "sub-002" / "labels.nii.gz")
  data = np.asarray(labels.dataobj).copy()
  data[0, 0, 0] = 7
  nib.save(nib.Nifti1Image(data, labels.affine), cohort / "sub-002" / "labels.nii.gz")
  return cohort


def _manifest_without_flair(tmp, run):
  cohort = _copy_cohort(tmp, run)
  lines = (cohort / "subjects.csv").read_text().splitlines()
  (cohort / "subjects.csv").write_text("\n".join(l.replace("flair", "flare", 1) for l in lines))
  return cohort


def _wmh_in_one_subject(tmp, run):
  """WMH labels only in sub-000: the fold without it has no WMH subject."""
  cohort = _copy_cohort(tmp, run)
  for path in sorted(cohort.glob("sub-*/labels.nii.gz"))[1:]:
    labels = nib.load(path)
    data = np.asarray(labels.dataobj).copy()
    data[data == 1] = 0
    nib.save(nib.Nifti1Image(data, labels.affine, labels.header), path)
  return cohort


def _manifest_without_t1(tmp, run):
  cohort = _copy_cohort(tmp, run)
  rows = [l.split(",") for l in (cohort / "subjects.csv").read_text().splitlines()]
  drop = rows[0].index("t1")
  (cohort / "subjects.csv").write_text("\n".join(",".join(r[:drop] + r[drop + 1:]) for r in rows))
  return cohort


def _reproduce(cohort_fn, *overrides: str, grid_file: str | None = None):
  """`reproduce` on the tiny grid; `grid_file` is put in the workdir first as its grid.json."""
  def make(tmp, run):
    cohort = cohort_fn(tmp, run) if cohort_fn else run[0] / "cohort"
    if grid_file is not None:
      (tmp / "out").mkdir()
      (tmp / "out" / "grid.json").write_text(grid_file)
    return ["--config=configs/reproduce.py:tiny", f"--workdir={tmp / 'out'}",
            f"--config.data.cohort={cohort}", f"--config.data.records_dir={tmp / 'tfds'}",
            "--config.data.generate_phantom_if_missing=false", *overrides]
  return make


def _main(cohort_fn):
  def make(tmp, run):
    cohort = cohort_fn(tmp, run)
    return ["--config=configs/tiny.py", f"--workdir={tmp / 'out'}",
            f"--config.data.cohort={cohort}", f"--config.data.records_dir={tmp / 'tfds'}",
            "--config.data.generate_phantom_if_missing=false"]
  return make


def _scan(tmp: pathlib.Path, name: str, data: np.ndarray, zooms=(1.0, 1.0, 4.0)) -> pathlib.Path:
  path = tmp / name
  nib.save(nib.Nifti1Image(data, np.diag([*zooms, 1.0])), path)
  return path


def _predict(make_input: Callable[[pathlib.Path, tuple], list[str]]):
  def make(tmp, run):
    return [f"--model={run[1]}", f"--output={tmp / 'out'}", *make_input(tmp, run)]
  return make


def _bad_scan(data: np.ndarray, *expected: str) -> Case:
  """`predict` on one scan `f.nii.gz` holding `data`."""
  return Case("predict", _predict(lambda t, r: [f"--input={_scan(t, 'f.nii.gz', data)}"]),
              ("f.nii.gz", *expected))


def _flair_of(run, subject="sub-000") -> pathlib.Path:
  return run[0] / "cohort" / subject / "flair.nii.gz"


def _bad_artifact(change: str):
  def make(tmp, run):
    art = tmp / "artifact"
    result = run_module("export", f"--workdir={run[1]}", f"--output={art}")
    assert result.returncode == 0, result.stderr
    if change == "checksum":
      with open(art / "weights.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    else:
      text = (art / "manifest.json").read_text()
      (art / "manifest.json").write_text(text.replace('"format_version": 1', '"format_version": 7'))
    return [f"--model={art}", f"--input={_flair_of(run)}", f"--output={tmp / 'out'}"]
  return make


def _existing_output(tmp, run):
  (tmp / "out").mkdir()
  (tmp / "out" / "keep.txt").write_text("earlier results")
  return [f"--input={_flair_of(run)}"]


def _another_run(tmp, run):
  """An output folder holding a run of another model or settings (its run.json says so)."""
  arguments = _existing_output(tmp, run)
  (tmp / "out" / "run.json").write_text('{"fingerprint": "another model"}')
  return arguments


CASES = {
    # phantom
    "phantom: zero subjects": Case("phantom", lambda t, r: [f"--out={t / 'out'}", "--subjects=0"],
                                   ("--subjects=0",)),
    "phantom: out is a file": Case("phantom", lambda t, r: [
        f"--out={(t / 'out').write_text('x') and t / 'out'}", "--subjects=1"], ("out",)),
    # main, with its record build
    "main: truncated FLAIR": Case("main", _main(_truncated_flair), ("sub-001", "flair.nii.gz")),
    "main: labels outside {0,1,2}": Case("main", _main(_labels_out_of_range),
                                         ("sub-002", "labels.nii.gz", "{0, 1, 2}")),
    "main: manifest lacks flair": Case("main", _main(_manifest_without_flair),
                                       ("subjects.csv", "flair")),
    "main: missing cohort": Case("main", _main(lambda t, r: t / "nowhere"), ("nowhere",)),
    "main: a fold without WMH subjects": Case("main", _main(_wmh_in_one_subject),
                                              ("fold", "no subject with WMH")),
    # reproduce
    "reproduce: unknown variant": Case("reproduce", _reproduce(
        None, "--config.reproduce.architectures=('uresnet','nocc')"), ("architectures", "'nocc'")),
    "reproduce: unknown loss": Case("reproduce", _reproduce(
        None, "--config.reproduce.losses=('cross_entropy','dicee')"), ("'dicee'",)),
    "reproduce: channel the cohort lacks": Case("reproduce", _reproduce(_manifest_without_t1),
                                                ("f_t1", "'t1'", "sub-000")),
    "reproduce: workdir of another grid": Case("reproduce", _reproduce(
        None, grid_file='{"seed": 5}'), ("out", "another grid", "seed")),
    # evaluate
    "evaluate: not a run folder": Case("evaluate", lambda t, r: [
        f"--workdir={t}", f"--output={t / 'out'}"], ("config.json",)),
    "evaluate: missing predictions": Case("evaluate", lambda t, r: [
        f"--cohort={r[0] / 'cohort'}", f"--predictions={t / 'none'}", f"--output={t / 'out'}"],
        ("none", "not found")),
    # predict
    "predict: not a NIfTI": Case("predict", _predict(lambda t, r: [
        f"--input={(t / 'scan.nii.gz').write_bytes(b'not nifti') and t / 'scan.nii.gz'}"]),
        ("scan.nii.gz", "NIfTI")),
    "predict: 4D scan": _bad_scan(np.ones((20, 20, 4, 3), np.float32), "3D"),
    "predict: Inf voxels": _bad_scan(np.full((20, 20, 4), np.inf, np.float32), "NaN or Inf"),
    "predict: all zero": _bad_scan(np.zeros((20, 20, 4), np.float32), "empty brain mask"),
    "predict: smaller than the stride": _bad_scan(np.ones((5, 5, 3), np.float32), "stride"),
    "predict: brain mask on another grid": Case("predict", _predict(lambda t, r: [
        f"--input={_flair_of(r)}",
        f"--brain_mask={_scan(t, 'mask.nii.gz', np.ones((9, 9, 9), np.uint8))}"]),
        ("mask.nii.gz", "shape")),
    "predict: folder without scans": Case("predict", _predict(lambda t, r: [
        f"--input={(t / 'empty').mkdir() or t / 'empty'}"]), ("empty", "no NIfTI")),
    "predict: BIDS without FLAIR": Case("predict", _predict(lambda t, r: [
        f"--input={(t / 'bids' / 'sub-1' / 'anat').mkdir(parents=True) or t / 'bids'}"]),
        ("bids", "FLAIR")),
    "predict: output holds results": Case("predict", _predict(_existing_output),
                                          ("out", "--overwrite")),
    "predict: output holds another run's results": Case("predict", _predict(_another_run),
                                                        ("out", "another model", "--overwrite")),
    "predict: output cannot be written": Case("predict", lambda t, r: [
        f"--model={r[1]}", f"--input={_flair_of(r)}",
        f"--output={(t / 'file').write_text('x') and t / 'file' / 'out'}"],
        ("file/out", "cannot write")),
    "predict: artifact checksum": Case("predict", _bad_artifact("checksum"),
                                       ("weights.npz", "SHA-256")),
    "predict: artifact format version": Case("predict", _bad_artifact("version"),
                                             ("manifest.json", "format version 7")),
    # export
    "export: run without checkpoints": Case("export", lambda t, r: [
        f"--workdir={(t / 'run').mkdir() or shutil.copy(r[1] / 'config.json', t / 'run') and t / 'run'}",
        f"--output={t / 'out'}"], ("run", "checkpoints")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_line_and_no_partial_output(name, tiny_run, tmp_path):
  case = CASES[name]
  args = case.make(tmp_path, tiny_run)
  before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
  result = run_module(case.cli, *args)
  assert result.returncode != 0, result.stdout[-2000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, result.stderr[-3000:]
  for text in case.expected:
    assert text in errors[0], (text, errors[0])
  after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
  new = [p for p in after if p not in before and not str(p).startswith("tfds")]
  half_written = [p for p in new if p.name.startswith((".tmp-", ".old-")) or "incomplete" in str(p)]
  assert not half_written, half_written
  if case.cli in ("predict", "export", "evaluate", "reproduce"):
    assert not [p for p in new if str(p).startswith(case.output)], new
