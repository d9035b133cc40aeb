"""`predict` on a folder of DICOM studies, as exported from a scanner: the same labels and volumes
as the NIfTI route on the same volume, a DICOM-SEG that overlays the source series, no patient
identifier in the tables or reports, and a refused study that leaves nothing while the others go
on."""
import csv

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import generate_uid

from conftest import run_module
from data.test_dicom_seg import check_seg
from dicom_writer import PATIENT, write_series
from uresnet_jax.data import scan_inputs
from uresnet_jax.inference import lesions

VOLUME_KEYS = ("wmh_ml", "wmh_lesions", "stroke_ml", "stroke_lesions", "icv_ml",
               *lesions.LOCATION_COLUMNS)
LOCATIONS = lesions.LOCATIONS


def _rows(path):
  with open(path) as f:
    return {r["subject"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
  """The tiny model on one scan as NIfTI and as a DICOM study (FLAIR beside a T1, LPS, slices
  written top to bottom), beside a study whose FLAIR misses a slice."""
  data, workdir, _, _ = tiny_run
  base = tmp_path_factory.mktemp("dicom")
  img = nib.load(data / "cohort" / "sub-000" / "flair.nii.gz")
  values = np.asarray(img.dataobj, np.float64)
  values = np.round(values * 1000 / values.max()).astype(np.int16)  # what a scanner stores
  # A grid whose numbers float32 (NIfTI) and decimal strings (DICOM) both hold exactly: on an
  # oblique float32 affine the two routes differ by 1e-7 mm, which flips a few lesions of the tiny
  # model at its stroke threshold
  affine = np.diag([*np.round(nib.affines.voxel_sizes(img.affine) * 16) / 16, 1.0])
  affine[:3, 3] = -np.round(affine[:3, :3] @ np.array(values.shape) / 2 * 16) / 16
  (base / "nifti").mkdir()
  nib.save(nib.Nifti1Image(values, affine), base / "nifti" / "anon_01.nii.gz")
  ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine),
                                         nib.orientations.axcodes2ornt("LPS"))
  lps = nib.Nifti1Image(values, affine).as_reoriented(ornt)
  study = generate_uid()
  cohort = base / "export"
  depth = lps.shape[2]
  write_series(cohort / "anon_01" / "DICOM" / "0001", np.asarray(lps.dataobj), lps.affine,
               study=study, order=range(depth - 1, -1, -1), description="t2_flair_tra")
  write_series(cohort / "anon_01" / "DICOM" / "0002", np.asarray(lps.dataobj), lps.affine,
               study=study, number=2, description="t1_mprage", inversion_ms=900)
  write_series(cohort / "anon_02", values, affine,
               order=[k for k in range(values.shape[2]) if k != 5])
  results = {}
  for name, source, *flags in (("nifti", base / "nifti"), ("dicom", cohort),
                               ("t1", cohort / "anon_01", "--series=2")):
    out = base / f"out_{name}"
    results[name] = out, run_module("predict", f"--model={workdir}", f"--input={source}",
                                    f"--output={out}", *flags)
  return cohort, results


def test_the_dicom_route_gives_the_nifti_route_labels_and_volumes(runs):
  cohort, results = runs
  (nifti_out, _), (dicom_out, dicom_result) = results["nifti"], results["dicom"]
  nifti_labels = nib.load(nifti_out / "anon_01_labels.nii.gz")
  dicom_labels = nib.load(dicom_out / "anon_01_labels.nii.gz")
  canonical = [nib.as_closest_canonical(i) for i in (nifti_labels, dicom_labels)]
  np.testing.assert_allclose(canonical[1].affine, canonical[0].affine, atol=0.01)
  np.testing.assert_array_equal(np.asarray(canonical[1].dataobj), np.asarray(canonical[0].dataobj))
  assert np.asarray(nifti_labels.dataobj).any()
  nifti_row, dicom_row = _rows(nifti_out / "volumes.csv")["anon_01"], _rows(
      dicom_out / "volumes.csv")["anon_01"]
  for key in VOLUME_KEYS:
    assert float(dicom_row[key]) == pytest.approx(float(nifti_row[key]), rel=1e-5), key
  assert dicom_row["input"] == str(cohort / "anon_01" / "DICOM")
  for cls in ("wmh", "stroke"):  # volumes by location add up to the class's
    where = [k for k in dicom_row if k.startswith(f"{cls}_ml_") and k[len(cls) + 4:] in LOCATIONS]
    assert len(where) == 4
    assert sum(float(dicom_row[k]) for k in where) == pytest.approx(float(dicom_row[f"{cls}_ml"]),
                                                                    rel=1e-4, abs=1e-6)
    assert sum(int(dicom_row[f"{cls}_lesions_{w}"]) for w in LOCATIONS) == int(
        dicom_row[f"{cls}_lesions"])


def test_a_dicom_seg_overlays_the_source_flair_with_the_labels(runs):
  cohort, results = runs
  out, _ = results["dicom"]
  (scan, _) = scan_inputs.find_scans(cohort)
  labels = np.asarray(nib.load(out / "anon_01_labels.nii.gz").dataobj)
  seg = check_seg(out / "anon_01_seg.dcm", labels, scan.dicom)
  assert str(seg.PatientName) == PATIENT["PatientName"]


def test_series_picks_another_series_than_the_flair(runs):
  cohort, results = runs
  out, result = results["t1"]
  assert result.returncode == 0, result.stderr[-2000:]
  (scan,) = scan_inputs.find_scans(cohort / "anon_01", series="2")
  assert scan.name == "anon_01" and scan.dicom.series.description == "t1_mprage"
  labels = np.asarray(nib.load(out / "anon_01_labels.nii.gz").dataobj)
  check_seg(out / "anon_01_seg.dcm", labels, scan.dicom)  # references the T1's images


def test_no_patient_identifier_leaves_the_dicom_in_tables_or_reports(runs):
  _, results = runs
  out, _ = results["dicom"]
  for name in ("volumes.csv", "lesions.csv", "report.md", "report.html", "run.json"):
    text = (out / name).read_text()
    assert not [v for v in PATIENT.values() if v in text and v != "F"], name
  assert set(_rows(out / "volumes.csv")) == {"anon_01"}


def test_a_refused_study_is_one_line_and_leaves_nothing_while_the_others_go_on(runs):
  _, results = runs
  out, result = results["dicom"]
  assert result.returncode == 1 and "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert errors[0].startswith("error: ") and "anon_02: series 3 'AX T2 FLAIR'" in errors[0]
  assert "1 missing slice(s)" in errors[0] and "1 of 2 scan(s) failed" in errors[-1]
  assert not list(out.glob("anon_02*")) and not (out / "scans" / "anon_02.json").exists()
