"""`python -m uresnet_jax.predict` end to end with the tiny run's model: a folder with good scans in
two orientations and bad ones, BIDS in and out, an exported artifact, refusals, a killed run, a
second run on the same output and a full disk."""
import csv
import json
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from browser import Browser, look_at_report
from conftest import ROOT, run_module, subprocess_env
from uresnet_jax.data import nifti_io, scan_inputs
from uresnet_jax.inference import segment as predict_module, tables


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
  return run_module(module, *args)


def _reoriented(path: pathlib.Path, axcodes: str) -> nib.Nifti1Image:
  """The same image stored in another voxel order (and so another affine)."""
  img = nib.load(path)
  ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine),
                                         nib.orientations.axcodes2ornt(axcodes))
  return img.as_reoriented(ornt)


@pytest.fixture(scope="module")
def scans(tiny_run, tmp_path_factory) -> pathlib.Path:
  """sub-000 as stored, the same scan stored LPS with qform code 2, sub-001, and five bad scans."""
  data, _, _, _ = tiny_run
  folder = tmp_path_factory.mktemp("scans")
  cohort = data / "cohort"
  (folder / "a_ras.nii.gz").write_bytes((cohort / "sub-000" / "flair.nii.gz").read_bytes())
  lps = _reoriented(cohort / "sub-000" / "flair.nii.gz", "LPS")
  lps.set_qform(lps.affine, code=2)
  lps.set_sform(lps.affine, code=4)
  nib.save(lps, folder / "a_lps.nii.gz")
  (folder / "b.nii.gz").write_bytes((cohort / "sub-001" / "flair.nii.gz").read_bytes())
  (folder / "bad_truncated.nii.gz").write_bytes((folder / "b.nii.gz").read_bytes()[:400])
  affine = np.diag([1.0, 1.0, 4.0, 1.0])
  nan = np.ones((30, 30, 4), np.float32)
  nan[3, 3, 1] = np.nan
  nib.save(nib.Nifti1Image(nan, affine), folder / "bad_nan.nii.gz")
  nib.save(nib.Nifti1Image(np.zeros((30, 30, 4), np.float32), affine), folder / "bad_zero.nii.gz")
  nib.save(nib.Nifti1Image(np.ones((30, 30), np.float32), np.eye(4)), folder / "bad_2d.nii.gz")
  head = nib.load(folder / "b.nii.gz")
  nib.save(nib.Nifti1Image(np.asarray(head.dataobj, np.float32) + 50, head.affine),
           folder / "bad_head.nii.gz")
  nib.save(nib.Nifti1Image(np.ones((4, 4, 3), np.float32), affine), folder / "bad_small.nii.gz")
  (folder / "bad_maskgrid.nii.gz").write_bytes((folder / "b.nii.gz").read_bytes())
  return folder


@pytest.fixture(scope="module")
def folder_run(tiny_run, scans, tmp_path_factory):
  _, workdir, _, _ = tiny_run
  out = tmp_path_factory.mktemp("out") / "pred"
  exclusion = tmp_path_factory.mktemp("exclusion")
  b = nib.load(scans / "b.nii.gz")
  nib.save(nib.Nifti1Image(np.ones(b.shape, np.uint8), b.affine), exclusion / "b.nii.gz")
  nib.save(nib.Nifti1Image(np.ones((9, 9, 9), np.uint8), b.affine),
           exclusion / "bad_maskgrid.nii.gz")  # an exclusion mask on another grid
  result = _cli("predict", f"--model={workdir}", f"--input={scans}", f"--output={out}",
                f"--exclusion_mask={exclusion}", "--probabilities")
  return out, result


def test_bad_scans_are_reported_one_line_each_and_skipped(folder_run, scans):
  out, result = folder_run
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  expected = {"bad_truncated": "NIfTI", "bad_nan": "NaN", "bad_zero": "empty brain mask",
              "bad_2d": "3D", "bad_head": "not skull-stripped", "bad_small": "stride",
              "bad_maskgrid": "differs from bad_maskgrid.nii.gz shape"}
  for name, problem in expected.items():
    assert any(f"{name}.nii.gz" in l and problem in l for l in errors), (name, errors)
  assert errors[-1].startswith("error: 7 of 10 scan(s) failed")
  assert not list(out.glob("bad_*"))
  report = (out / "report.md").read_text()
  assert "7 scan(s) failed" in report and "bad_head" in report


def test_labels_lie_on_each_input_grid_and_agree_across_orientations(folder_run, scans):
  out, result = folder_run
  for name in ("a_ras", "a_lps", "b"):
    source = nib.load(scans / f"{name}.nii.gz")
    labels = nib.load(out / f"{name}_labels.nii.gz")
    assert labels.shape == source.shape and labels.get_data_dtype() == np.uint8
    np.testing.assert_allclose(labels.affine, source.affine, atol=1e-5)
    for form in ("qform", "sform"):
      assert int(labels.header[f"{form}_code"]) == int(source.header[f"{form}_code"])
    assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 1, 2}
    probs = nib.load(out / f"{name}_probabilities.nii.gz")
    assert probs.shape == source.shape + (3,)
    np.testing.assert_allclose(np.asarray(probs.dataobj).sum(-1), 1.0, atol=1e-4)
  assert nib.load(out / "a_lps_labels.nii.gz").header["qform_code"] == 2
  ras = np.asarray(nib.load(out / "a_ras_labels.nii.gz").dataobj)
  lps = _reoriented(out / "a_lps_labels.nii.gz", "".join(nib.aff2axcodes(
      nib.load(scans / "a_ras.nii.gz").affine)))
  np.testing.assert_array_equal(np.asarray(lps.dataobj), ras)
  assert "s per scan" in result.stdout


def test_volume_and_lesion_tables(folder_run):
  out, _ = folder_run
  with open(out / "volumes.csv") as f:
    rows = {r["subject"]: r for r in csv.DictReader(f)}
  assert sorted(rows) == ["a_lps", "a_ras", "b"]
  assert list(next(iter(rows.values()))) == list(tables.VOLUME_COLUMNS)
  a = rows["a_ras"]
  assert rows["a_lps"]["wmh_ml"] == a["wmh_ml"]
  for cls in ("wmh", "stroke"):
    assert float(a[f"{cls}_ml_low"]) <= float(a[f"{cls}_ml"]) <= float(a[f"{cls}_ml_high"])
  assert a["icv_source"] == "skull-stripped scan" and float(a["icv_ml"]) > 500
  assert float(a["wmh_pct_icv"]) == pytest.approx(100 * float(a["wmh_ml"]) / float(a["icv_ml"]),
                                                  rel=1e-4)
  b = rows["b"]  # excluded everywhere
  assert float(b["wmh_ml"]) == float(b["stroke_ml"]) == float(b["wmh_ml_high"]) == 0.0
  assert float(b["excluded_ml"]) > 0
  with open(out / "lesions.csv") as f:
    lesion_rows = list(csv.DictReader(f))
  a_lesions = [r for r in lesion_rows if r["subject"] == "a_ras"]
  assert len(a_lesions) == int(a["wmh_lesions"]) + int(a["stroke_lesions"]) > 0
  assert {r["location"] for r in a_lesions} <= {"periventricular", "deep", "juxtacortical",
                                                "infratentorial"}
  total = sum(float(r["volume_ml"]) for r in a_lesions if r["class"] == "wmh")
  assert total == pytest.approx(float(a["wmh_ml"]), rel=1e-3)
  assert not [r for r in lesion_rows if r["subject"] == "b"]
  assert {p.name for p in (out / "qc").glob("*.png")} == {"a_ras.png", "a_lps.png", "b.png"}
  assert "(qc/a_ras.png)" in (out / "report.md").read_text()
  from PIL import Image
  assert Image.open(out / "qc" / "a_ras.png").width >= 1600


def test_report_html_shows_every_scan_in_a_browser(folder_run):
  out, _ = folder_run
  with open(out / "volumes.csv") as f:
    names = [r["subject"] for r in csv.DictReader(f)]
  with Browser() as browser:
    seen = look_at_report(browser, out / "report.html")
  assert [s["name"] for s in seen["scans"]] == names
  assert all(s["images"] > 0 and s["decoded"] == s["images"] for s in seen["scans"])
  assert (seen["with_overlay"] != seen["without_overlay"]).any()
  assert seen["errors"] == []
  assert not list(out.rglob(".partial")) and not list(out.parent.glob(".tmp-*"))


def test_existing_output_is_refused_and_left_untouched(folder_run, tiny_run, scans):
  out, _ = folder_run
  before = sorted(p.name for p in out.iterdir())
  result = _cli("predict", f"--model={tiny_run[1]}", f"--input={scans / 'b.nii.gz'}",
                f"--output={out}")
  assert result.returncode == 1 and "--overwrite" in result.stderr
  assert result.stderr.strip().count("\n") == 0
  assert sorted(p.name for p in out.iterdir()) == before


def test_minimum_lesion_size_and_tta_options(tiny_run, scans, tmp_path):
  from uresnet_jax.inference import predictor
  _, workdir, _, _ = tiny_run
  model, _ = predictor.from_workdir(workdir)
  found = scan_inputs.find_scans(scans / "a_ras.nii.gz")
  options = model.options.copy_and_resolve_references()
  base, _ = predict_module.predict_scans(model, found, tmp_path / "base", options, "m")
  options.min_lesion_mm3 = 1e9
  none, _ = predict_module.predict_scans(model.with_options(options), found, tmp_path / "big",
                                         options, "m")
  assert base[0]["wmh_lesions"] > 0 and none[0]["wmh_lesions"] == none[0]["stroke_lesions"] == 0
  assert none[0]["wmh_ml"] == 0.0
  options.min_lesion_mm3, options.tta = 0.0, True
  tta, _ = predict_module.predict_scans(model.with_options(options), found, tmp_path / "tta",
                                        options, "m")
  assert tta[0]["wmh_ml"] != base[0]["wmh_ml"]  # the flips change the probabilities
  assert model.compilations == 1  # three runs and the flips: one shape bucket


@pytest.fixture(scope="module")
def artifact(tiny_run, tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp("export") / "model"
  result = _cli("export", f"--workdir={tiny_run[1]}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  return out


def test_bids_in_and_out_with_the_exported_model(artifact, folder_run, scans, tmp_path):
  bids = tmp_path / "bids"
  (bids / "sub-01" / "ses-1" / "anat").mkdir(parents=True)
  (bids / "sub-02" / "anat").mkdir(parents=True)
  (bids / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
  (bids / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_FLAIR.nii.gz").write_bytes(
      (scans / "a_lps.nii.gz").read_bytes())
  (bids / "sub-02" / "anat" / "sub-02_T1w.nii.gz").write_bytes((scans / "b.nii.gz").read_bytes())
  out = tmp_path / "derivatives"
  result = _cli("predict", f"--model={artifact}", f"--input={bids}", f"--output={out}", "--bids")
  assert result.returncode == 0, result.stderr
  dseg = out / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_desc-uresnet_dseg.nii.gz"
  assert dseg.is_file() and not (out / "sub-02").exists()  # no FLAIR for sub-02
  description = json.loads((out / "dataset_description.json").read_text())
  assert description["DatasetType"] == "derivative"
  assert (out / "volumes.tsv").read_text().splitlines()[1].startswith("sub-01_ses-1\t")
  # the artifact gives the labels the training workdir gave for the same scan
  workdir_labels = np.asarray(nib.load(folder_run[0] / "a_lps_labels.nii.gz").dataobj)
  np.testing.assert_array_equal(np.asarray(nib.load(dseg).dataobj), workdir_labels)


def test_scan_names_cannot_escape_the_output_folder(tmp_path):
  flair = tmp_path / "f.nii.gz"
  nifti_io.save_nifti(flair, np.ones((8, 8, 2), np.float32), np.eye(4))
  (tmp_path / "subjects.csv").write_text("subject,flair\n../../evil,f.nii.gz\n/abs/x,f.nii.gz\n")
  names = [s.name for s in scan_inputs.find_scans(tmp_path / "subjects.csv")]
  assert names == ["_.._evil", "_abs_x"]
  assert all("/" not in n and not n.startswith(".") for n in names)


def test_a_killed_run_resumes_and_skips_the_finished_scans(tiny_run, scans, tmp_path):
  """SIGKILL after the first scan's result appears; the same command then segments only the rest.
  A truncated result is redone, other settings are refused, --overwrite starts afresh."""
  inputs = tmp_path / "in"
  inputs.mkdir()
  for k in range(4):
    (inputs / f"s{k}.nii.gz").write_bytes((scans / "b.nii.gz").read_bytes())
  out = tmp_path / "out"
  args = (f"--model={tiny_run[1]}", f"--input={inputs}", f"--output={out}")
  proc = subprocess.Popen([sys.executable, "-m", "uresnet_jax.predict", *args], cwd=ROOT,
                          env=subprocess_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 600
  records = "scans/[!.]*.json"  # a scan's record, not an atomic write's temporary name
  while not list(out.glob(records)) and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = {p: p.stat().st_mtime_ns for p in out.glob(records)}
  assert 1 <= len(done) < 4 and not (out / "report.html").exists()

  rerun = _cli("predict", *args)
  assert rerun.returncode == 0, rerun.stderr
  assert f"{len(done)} of 4 scan(s) already done" in rerun.stdout
  assert rerun.stdout.count(" mL, stroke ") == 4 - len(done)
  assert {p: p.stat().st_mtime_ns for p in done} == done  # the finished scans were not redone
  with open(out / "volumes.csv") as f:
    assert sorted(r["subject"] for r in csv.DictReader(f)) == [f"s{k}" for k in range(4)]
  assert (out / "report.html").is_file() and not (out / ".partial").exists()
  assert not list(tmp_path.glob(".tmp-*")) and not list(out.rglob(".tmp-*"))

  labels = out / "s1_labels.nii.gz"
  labels.write_bytes(labels.read_bytes()[:200])  # a damaged earlier result is not trusted
  again = _cli("predict", *args)
  assert again.returncode == 0 and "3 of 4 scan(s) already done" in again.stdout
  assert again.stdout.count(" mL, stroke ") == 1 and "s1: WMH" in again.stdout
  assert nib.load(labels).shape == nib.load(inputs / "s1.nii.gz").shape

  before = sorted(p.name for p in out.rglob("*"))
  other = _cli("predict", *args, "--min_lesion_mm3=1")  # any option: cheaper than --tta's 4 passes
  assert other.returncode == 1 and other.stderr.strip().count("\n") == 0
  assert "another model, settings or input" in other.stderr and "--overwrite" in other.stderr
  assert sorted(p.name for p in out.rglob("*")) == before
  fresh = _cli("predict", *args, "--min_lesion_mm3=1", "--overwrite")
  assert fresh.returncode == 0 and fresh.stdout.count(" mL, stroke ") == 4
  assert "already done" not in fresh.stdout


def test_no_scan_segmented_leaves_no_report_and_no_folder(tiny_run, scans, tmp_path):
  inputs = tmp_path / "in"
  inputs.mkdir()
  for name in ("bad_nan", "bad_zero"):
    (inputs / f"{name}.nii.gz").write_bytes((scans / f"{name}.nii.gz").read_bytes())
  result = _cli("predict", f"--model={tiny_run[1]}", f"--input={inputs}",
                f"--output={tmp_path / 'out'}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith("error: no scan could be segmented")
  assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


def _copies(scans: pathlib.Path, folder: pathlib.Path, count: int) -> pathlib.Path:
  """`count` copies of scan b: s0 ... s<count-1>, each segmented alike."""
  folder.mkdir()
  for k in range(count):
    (folder / f"s{k}.nii.gz").write_bytes((scans / "b.nii.gz").read_bytes())
  return folder


def test_a_second_predict_on_the_same_output_refuses_while_the_first_writes(tiny_run, scans,
                                                                               tmp_path):
  """The first run is held (SIGSTOP) once it has a scan done; a second run on its output refuses in
  one line naming it, touches nothing, and the first then finishes every scan."""
  out = tmp_path / "out"
  args = (f"--model={tiny_run[1]}", f"--input={_copies(scans, tmp_path / 'in', 4)}",
          f"--output={out}")
  first = subprocess.Popen([sys.executable, "-m", "uresnet_jax.predict", *args], cwd=ROOT,
                           env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  deadline = time.monotonic() + 600
  while (not list(out.glob("scans/[!.]*.json")) and first.poll() is None
         and time.monotonic() < deadline):
    time.sleep(0.02)
  first.send_signal(signal.SIGSTOP)
  try:
    assert (out / ".predict.lock").read_text().strip() == str(first.pid)
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    second = _cli("predict", *args)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert second.stderr.strip() == (f"error: {out}: another predict is writing here (pid "
                                     f"{first.pid}); wait for it or choose another --output")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == files
  finally:
    first.send_signal(signal.SIGCONT)
  stdout, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr
  assert stdout.count(" mL, stroke ") == 4
  with open(out / "volumes.csv") as f:
    assert [r["subject"] for r in csv.DictReader(f)] == [f"s{k}" for k in range(4)]
  assert not (out / ".predict.lock").exists()  # released: a later run goes ahead
  assert "4 of 4 scan(s) already done" in _cli("predict", *args).stdout


_FULL_DISK = textwrap.dedent("""
    import contextlib, errno, os, pathlib, sys
    from uresnet_jax.common import atomic
    from uresnet_jax.inference import segment
    replacing = atomic.replacing

    @contextlib.contextmanager
    def filling_up(path):  # the disk fills while the third scan's labels are written
      with replacing(path) as tmp:
        yield tmp
        if pathlib.Path(path).name == "s2_labels.nii.gz":
          raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    atomic.replacing = filling_up
    sys.argv[0] = "predict"
    segment.run()
""")


def test_a_full_disk_ends_in_one_line_and_the_rerun_resumes_without_loss(tiny_run, scans,
                                                                         tmp_path):
  out = tmp_path / "out"
  args = (f"--model={tiny_run[1]}", f"--input={_copies(scans, tmp_path / 'in', 4)}",
          f"--output={out}")
  full = subprocess.run([sys.executable, "-c", _FULL_DISK, *args], cwd=ROOT, env=subprocess_env(),
                        capture_output=True, text=True, timeout=600)
  assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
  errors = [l for l in full.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and re.fullmatch(
      rf"error: {re.escape(str(out))}: the disk is full \(\d+\.\d MB free; about \d+\.\d MB needed "
      r"per scan\); free space and rerun: finished scans are kept", errors[0]), errors
  assert sorted(p.name for p in out.glob("scans/*")) == ["s0.json", "s1.json"]
  assert not (out / ".partial").exists() and not list(out.rglob(".tmp-*"))

  rerun = _cli("predict", *args)
  assert rerun.returncode == 0, rerun.stderr
  assert "2 of 4 scan(s) already done" in rerun.stdout and rerun.stdout.count(" mL, stroke ") == 2
  with open(out / "volumes.csv") as f:
    rows = [{k: v for k, v in r.items() if k not in ("subject", "input", "seconds")}
            for r in csv.DictReader(f)]
  assert len(rows) == 4 and all(r == rows[0] for r in rows)  # the same scan four times
  labels = [np.asarray(nib.load(out / f"s{k}_labels.nii.gz").dataobj) for k in range(4)]
  assert all(np.array_equal(l, labels[0]) for l in labels)
