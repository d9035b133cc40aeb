"""Finding the scans to segment: a file, a folder (with per-scan masks), a manifest, a BIDS root."""
import numpy as np
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, scan_inputs


def _nifti(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  nifti_io.save_nifti(path, np.ones((8, 8, 2), np.float32), np.eye(4))
  return path


def test_single_file_takes_files_for_its_masks(tmp_path):
  scan, mask = _nifti(tmp_path / "a.nii.gz"), _nifti(tmp_path / "m.nii")
  (found,) = scan_inputs.find_scans(scan, brain_mask=str(mask))
  assert found.name == "a" and found.record.brain_mask == mask and found.record.labels is None
  with pytest.raises(InputError, match="needs a file for --brain_mask"):
    scan_inputs.find_scans(scan, brain_mask=str(tmp_path))


def test_folder_matches_mask_folders_by_scan_name(tmp_path):
  for name in ("a", "b"):
    _nifti(tmp_path / "scans" / f"{name}.nii.gz")
  mask = _nifti(tmp_path / "masks" / "b.nii")
  (tmp_path / "scans" / "notes.txt").write_text("not a scan")
  found = scan_inputs.find_scans(tmp_path / "scans", brain_mask=str(tmp_path / "masks"))
  assert [(s.name, s.record.brain_mask) for s in found] == [("a", None), ("b", mask)]
  with pytest.raises(InputError, match="no NIfTI scans"):
    scan_inputs.find_scans(tmp_path / "masks" / "..")  # a folder of folders
  with pytest.raises(InputError, match="not found"):
    scan_inputs.find_scans(tmp_path / "scans", exclusion=str(tmp_path / "nowhere"))


def test_manifest_without_labels_and_with_mask_columns(tmp_path):
  _nifti(tmp_path / "f.nii.gz")
  _nifti(tmp_path / "x.nii.gz")
  (tmp_path / "subjects.csv").write_text("subject,flair,exclusion\ns1,f.nii.gz,x.nii.gz\n")
  (found,) = scan_inputs.find_scans(tmp_path)
  assert found.record.exclusion == tmp_path / "x.nii.gz" and found.record.labels is None
  with pytest.raises(InputError, match="manifest columns"):
    scan_inputs.find_scans(tmp_path / "subjects.csv", brain_mask=str(tmp_path / "f.nii.gz"))


def test_bids_keeps_sessions_and_needs_a_flair(tmp_path):
  _nifti(tmp_path / "sub-01" / "ses-2" / "anat" / "sub-01_ses-2_acq-ax_FLAIR.nii.gz")
  _nifti(tmp_path / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
  (found,) = scan_inputs.find_scans(tmp_path)
  assert found.name == "sub-01_ses-2_acq-ax"
  assert found.bids_path == ("sub-01", "ses-2", "anat", "sub-01_ses-2_acq-ax")
  empty = tmp_path / "empty"
  _nifti(empty / "sub-03" / "anat" / "sub-03_T1w.nii.gz")
  with pytest.raises(InputError, match="no sub-"):
    scan_inputs.find_scans(empty)
