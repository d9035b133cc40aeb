"""DICOM series in: found under nested folders, split into volumes, the FLAIR chosen, assembled in
every orientation and slice order to the voxels and affine the volume was written from, and each
bad series handled or refused in one line naming it."""
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLosslessSV1, generate_uid

from dicom_writer import phantom_volume, write_enhanced, write_series
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import dicom_series, nifti_io, scan_inputs

AXIAL = np.diag([0.9, 0.9, 4.0, 1.0]) + np.array([[0, 0, 0, -14], [0, 0, 0, -12], [0, 0, 0, -10],
                                                 [0, 0, 0, 0]])


def _axial_lps():
  affine = np.diag([-0.9, -0.9, 4.0, 1.0])
  affine[:3, 3] = (14, 12, -10)
  return affine


def _sagittal():
  affine = np.zeros((4, 4))
  affine[:3, 0], affine[:3, 1], affine[:3, 2] = (0, 0.9, 0), (0, 0, 0.9), (3.0, 0, 0)
  affine[:, 3] = (-8, -14, -12, 1)
  return affine


def _coronal_descending():
  affine = np.zeros((4, 4))
  affine[:3, 0], affine[:3, 1], affine[:3, 2] = (0.9, 0, 0), (0, 0, -0.9), (0, -2.5, 0)
  affine[:, 3] = (-14, 8, 14, 1)
  return affine


def _oblique():
  c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
  rotation = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
  affine = np.eye(4)
  affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 3.0])
  affine[:3, 3] = (-14, -16, -9)
  return affine


def _read(folder, series=None):
  (study,) = dicom_series.find_studies(folder, series)
  return study, dicom_series.read_volume(study)


def _canonical(data, affine):
  img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data, np.float32), affine))
  return np.asarray(img.dataobj), img.affine


@pytest.mark.parametrize("affine", [AXIAL, _axial_lps(), _sagittal(), _coronal_descending(),
                                    _oblique()], ids=["axial", "axial_lps", "sagittal",
                                                      "coronal_descending", "oblique"])
@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_every_orientation_and_slice_order_gives_back_the_written_volume(tmp_path, affine, order):
  data = phantom_volume()
  slices = {"ascending": range(6), "descending": range(5, -1, -1),
            "shuffled": [3, 0, 5, 1, 4, 2]}[order]
  write_series(tmp_path / "s", data, affine, order=slices)
  _, volume = _read(tmp_path / "s")
  got, got_affine = _canonical(volume.data, volume.affine)
  want, want_affine = _canonical(data, affine)
  np.testing.assert_allclose(got_affine, want_affine, atol=0.01)
  np.testing.assert_array_equal(got, want)
  if order == "ascending" and affine is AXIAL:  # the written grid itself, voxel for voxel
    np.testing.assert_allclose(volume.affine, affine, atol=0.01)
    np.testing.assert_array_equal(volume.data, data)


def test_flair_is_found_beside_a_t1_in_nested_folders_with_other_files(tmp_path):
  study = generate_uid()
  data = phantom_volume()
  root = tmp_path / "patient_x"
  write_series(root / "DICOM" / "S1", data + 1, AXIAL, description="T1 MPRAGE", number=2,
               study=study, inversion_ms=900)
  write_series(root / "DICOM" / "S2", data, AXIAL, description="ax dark-fluid", number=5,
               study=study, inversion_ms=None, name="{:d}.dcm")
  (root / "DICOMDIR").write_bytes(b"\0" * 200)
  (root / "notes.txt").write_text("not DICOM")
  (scan,) = scan_inputs.find_scans(root)
  assert scan.name == "patient_x" and scan.dicom.series.number == "5"
  assert scan.record.flair == root / "DICOM"
  volume = dicom_series.read_volume(scan.dicom)
  np.testing.assert_array_equal(volume.data, data)
  by_number = scan_inputs.find_scans(root, series="2")[0]
  np.testing.assert_array_equal(dicom_series.read_volume(by_number.dicom).data, data + 1)
  uid = pydicom.dcmread(next((root / "DICOM" / "S1").iterdir())).SeriesInstanceUID
  assert scan_inputs.find_scans(root, series=uid)[0].dicom.series.number == "2"


def test_an_inversion_recovery_with_a_long_ti_is_a_flair_and_a_short_one_is_not(tmp_path):
  study = generate_uid()
  write_series(tmp_path / "a", phantom_volume(), AXIAL, description="t2_tirm_tra", study=study,
               inversion_ms=2500, number=7)
  write_series(tmp_path / "b", phantom_volume(), AXIAL, description="t1_tirm_tra", study=study,
               inversion_ms=800, number=8)
  assert _read(tmp_path)[0].series.number == "7"


def test_two_flairs_or_none_is_one_error_listing_the_series_and_how_to_choose(tmp_path):
  study = generate_uid()
  write_series(tmp_path / "a", phantom_volume(), AXIAL, description="AX FLAIR", study=study)
  write_series(tmp_path / "b", phantom_volume(), _sagittal(), description="SAG FLAIR 3D",
               number=9, study=study)
  with pytest.raises(InputError) as e:
    _read(tmp_path)
  line = str(e.value)
  assert "\n" not in line and "2 FLAIR series" in line and "--series=" in line
  assert "series 3 'AX FLAIR': 6 image(s), axial [FLAIR], --series=3, SeriesInstanceUID" in line
  assert "series 9 'SAG FLAIR 3D': 6 image(s), sagittal" in line
  assert _read(tmp_path, "9")[0].series.orientation == "sagittal"
  with pytest.raises(InputError, match="no series '4' among"):
    _read(tmp_path, "4")
  t1 = tmp_path / "t1"
  write_series(t1, phantom_volume(), AXIAL, description="T1", inversion_ms=None)
  with pytest.raises(InputError, match=r"no FLAIR series .* series 3 'T1'.*--series="):
    _read(t1)


def test_a_folder_of_studies_is_a_cohort_named_by_folder_never_by_patient(tmp_path):
  for name in ("site1/anon_a", "site1/anon_b", "site2/anon_c"):
    write_series(tmp_path / name / "flair", phantom_volume(), AXIAL)
  write_series(tmp_path / "site2" / "anon_d", phantom_volume(), AXIAL, description="T1",
               inversion_ms=None)
  scans = scan_inputs.find_scans(tmp_path)
  assert [s.name for s in scans] == ["site1_anon_a", "site1_anon_b", "site2_anon_c",
                                     "site2_anon_d"]
  assert all("Doe" not in s.name and "MRN" not in s.name for s in scans)
  assert scans[3].dicom.series is None and "no FLAIR" in scans[3].dicom.problem
  with pytest.raises(InputError, match=r"site2/anon_d: no FLAIR series"):
    dicom_series.read_volume(scans[3].dicom)  # told when segmented: the others go on
  nifti = tmp_path / "scan.nii.gz"
  nifti_io.save_nifti(nifti, np.ones((8, 8, 2), np.float32), np.eye(4))
  with pytest.raises(InputError, match="--series picks a series in a folder of DICOM files"):
    scan_inputs.find_scans(nifti, series="3")


def test_studies_mixed_in_one_folder_are_named_for_it_and_numbered(tmp_path):
  for i in range(2):
    write_series(tmp_path / "PACS", phantom_volume(), AXIAL, name=f"S{i}_{{:d}}")
  assert [s.name for s in scan_inputs.find_scans(tmp_path / "PACS")] == ["PACS", "PACS_2"]


def test_sub_folders_of_dicom_studies_are_not_taken_for_bids(tmp_path):
  for name in ("sub-01", "sub-02"):
    write_series(tmp_path / name / "DICOM", phantom_volume(), AXIAL)
  assert [s.name for s in scan_inputs.find_scans(tmp_path)] == ["sub-01", "sub-02"]
  (tmp_path / "sub-03" / "anat").mkdir(parents=True)
  nifti_io.save_nifti(tmp_path / "sub-03" / "anat" / "sub-03_T1w.nii.gz",
                      np.ones((8, 8, 2), np.float32), np.eye(4))
  with pytest.raises(InputError, match="BIDS dataset with no"):  # a BIDS root without a FLAIR
    scan_inputs.find_scans(tmp_path)


def test_a_manifest_names_dicom_studies_and_a_dicom_file_points_to_its_folder(tmp_path):
  write_series(tmp_path / "Doe_Jane" / "flair", phantom_volume(), AXIAL)
  write_series(tmp_path / "Roe_Rich" / "t1", phantom_volume(), AXIAL, description="T1", number=4,
               inversion_ms=None)
  nifti_io.save_nifti(tmp_path / "c.nii.gz", np.ones((8, 8, 2), np.float32), np.eye(4))
  (tmp_path / "subjects.csv").write_text("subject,flair\ns01,Doe_Jane\ns02,Roe_Rich\n"
                                         "s03,c.nii.gz\n")
  scans = scan_inputs.find_scans(tmp_path / "subjects.csv")
  assert [s.name for s in scans] == ["s01", "s02", "s03"]
  assert scans[0].dicom.series.number == "3" and "no FLAIR" in scans[1].dicom.problem
  assert scans[2].dicom is None
  assert scan_inputs.find_scans(tmp_path / "subjects.csv", series="4")[1].dicom.series.number == "4"
  (tmp_path / "nifti.csv").write_text("subject,flair\ns03,c.nii.gz\n")
  with pytest.raises(InputError, match="this manifest names none"):
    scan_inputs.find_scans(tmp_path / "nifti.csv", series="4")
  one = next((tmp_path / "Doe_Jane" / "flair").iterdir())
  with pytest.raises(InputError, match=f"a DICOM file; give the folder that holds its study "
                     f"\\(--input={one.parent}\\)"):
    scan_inputs.find_scans(one)


def _refused(tmp_path, match, **kwargs):
  write_series(tmp_path / "s", phantom_volume(), AXIAL, **kwargs)
  with pytest.raises(InputError, match=match) as e:
    _read(tmp_path / "s")
  assert "series 3 'AX T2 FLAIR'" in str(e.value) and "\n" not in str(e.value)
  return str(e.value)


def test_a_missing_slice_is_refused(tmp_path):
  _refused(tmp_path, r"1 missing slice\(s\) \(a gap of 8.00 mm where slices are 4.00 mm apart\)",
           order=[0, 1, 3, 4, 5])


def test_uneven_spacing_is_refused(tmp_path):
  def shift(k, ds):
    if k == 3:
      ds.ImagePositionPatient[2] = str(float(ds.ImagePositionPatient[2]) + 1.5)
  _refused(tmp_path, r"uneven slice spacing \(2.50 to 5.50 mm\)", edit=shift)


def test_a_slice_without_its_pixel_spacing_is_refused_naming_it(tmp_path):
  def drop(k, ds):
    if k == 4:
      del ds.PixelSpacing
  _refused(tmp_path, r"IM0004: PixelSpacing missing or malformed \(None\)", edit=drop)


def test_a_slice_with_a_malformed_orientation_is_set_apart_and_told(tmp_path):
  def bad(k, ds):
    if k == 2:
      ds.ImageOrientationPatient = ["1", "0", "0", "0", "1"]
  write_series(tmp_path / "s", phantom_volume(), AXIAL, edit=bad)
  with pytest.raises(InputError, match=r"holds 2 volumes .*: 5 image\(s\), axial .*"
                     r": 1 image\(s\), oblique"):
    _read(tmp_path / "s")
  with pytest.raises(InputError, match=r"1 missing slice\(s\)"):
    _read(tmp_path / "s", "3:orientation1")
  with pytest.raises(InputError, match=r"\(orientation 2\): 1 image, not a volume"):
    _read(tmp_path / "s", "3:orientation2")


def test_gantry_tilt_is_refused(tmp_path):
  def tilt(k, ds):
    ds.ImagePositionPatient[1] = str(float(ds.ImagePositionPatient[1]) + k * 0.7)
  _refused(tmp_path, r"gantry tilt or shear of 9.9 degrees", edit=tilt)


def test_mixed_orientations_in_one_series_are_listed_as_several_volumes(tmp_path):
  uid, study = generate_uid(), generate_uid()
  write_series(tmp_path / "s", phantom_volume(), AXIAL, series=uid, study=study)
  write_series(tmp_path / "s", phantom_volume(), _sagittal(), series=uid, study=study,
               name="SAG{:04d}")
  with pytest.raises(InputError, match=r"series 3 'AX T2 FLAIR' holds 2 volumes .*"
                     r"\(orientation 1\): 6 image\(s\), axial.*\(orientation 2\): 6 image\(s\), "
                     "sagittal"):
    _read(tmp_path / "s")


def test_a_localizer_in_the_flair_series_is_set_apart_and_left_out(tmp_path):
  uid, study = generate_uid(), generate_uid()
  data = phantom_volume()
  write_series(tmp_path / "s", data, AXIAL, series=uid, study=study)

  def scout(k, ds):
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
  write_series(tmp_path / "s", phantom_volume(shape=(32, 32, 3)), _sagittal(), series=uid,
               study=study, name="LOC{:d}", edit=scout)
  study_found, volume = _read(tmp_path / "s")
  assert study_found.series.part.startswith("orientation") and not study_found.series.localizer
  np.testing.assert_array_equal(volume.data, data)


def test_a_multi_echo_or_two_acquisition_series_is_listed_and_one_volume_chosen_by_part(tmp_path):
  uid, study = generate_uid(), generate_uid()
  for echo in (1, 2):
    write_series(tmp_path / "echo", phantom_volume(seed=echo), AXIAL, series=uid, study=study,
                 name=f"E{echo}_{{:d}}", edit=lambda k, ds, e=echo: setattr(ds, "EchoNumbers", e))
  with pytest.raises(InputError, match=r"holds 2 volumes .*\(echo 1\).*--series=3:echo1.*"
                     r"\(echo 2\).*--series=3:echo2.*; choose one with --series"):
    _read(tmp_path / "echo")
  np.testing.assert_array_equal(_read(tmp_path / "echo", "3:echo2")[1].data, phantom_volume(seed=2))
  with pytest.raises(InputError, match=r"series '3:echo3' among"):
    _read(tmp_path / "echo", "3:echo3")
  uid = generate_uid()
  for acquisition in (1, 2):
    write_series(tmp_path / "acq", phantom_volume(seed=acquisition), AXIAL, series=uid,
                 study=study, name=f"A{acquisition}_{{:d}}",
                 edit=lambda k, ds, a=acquisition: setattr(ds, "AcquisitionNumber", a))
  with pytest.raises(InputError, match=r"holds 2 volumes .*\(acquisition 1\).*\(acquisition 2\)"):
    _read(tmp_path / "acq")
  np.testing.assert_array_equal(_read(tmp_path / "acq", f"{uid}:acquisition1")[1].data,
                                phantom_volume(seed=1))
  uid = generate_uid()
  for copy in (1, 2):
    write_series(tmp_path / "same", phantom_volume(seed=copy), AXIAL, series=uid, study=study,
                 name=f"C{copy}_{{:d}}")
  with pytest.raises(InputError, match=r"6 repeated slice position\(s\): several volumes "
                     "interleaved"):
    _read(tmp_path / "same")


def test_pixel_data_no_decoder_reads_is_refused_naming_the_file(tmp_path):
  def compress(k, ds):
    if k == 2:
      ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
      ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8not really jpeg\xff\xd9"])
  _refused(tmp_path, r"IM0002: pixel data cannot be decoded \(JPEG Lossless", edit=compress)


def test_a_corrupt_file_among_good_ones_is_refused_or_seen_as_a_missing_slice(tmp_path):
  paths = write_series(tmp_path / "s", phantom_volume(), AXIAL)
  paths[2].write_bytes(paths[2].read_bytes()[:-500])  # truncated pixel data
  with pytest.raises(InputError, match=r"IM0002: (unreadable DICOM file|pixel data cannot be "
                     "decoded)"):
    _read(tmp_path / "s")
  paths[2].write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")  # no header left at all
  with pytest.raises(InputError, match=r"1 missing slice\(s\)"):
    _read(tmp_path / "s")


@pytest.mark.parametrize("affine", [AXIAL, _sagittal()], ids=["axial", "sagittal"])
def test_an_enhanced_multi_frame_file_gives_back_the_written_volume(tmp_path, affine):
  data = phantom_volume()
  write_enhanced(tmp_path / "s" / "EMR", data, affine, order=[3, 0, 5, 1, 4, 2])
  study, volume = _read(tmp_path / "s")
  assert study.series.multiframe and len(study.series.files) == 1
  got, got_affine = _canonical(volume.data, volume.affine)
  want, want_affine = _canonical(data, affine)
  np.testing.assert_allclose(got_affine, want_affine, atol=0.01)
  np.testing.assert_array_equal(got, want)


def test_two_multi_frame_files_in_one_series_are_refused_in_one_line(tmp_path):
  uid, study = generate_uid(), generate_uid()
  for name in ("A", "B"):
    write_enhanced(tmp_path / "s" / name, phantom_volume(), AXIAL, order=range(6), series=uid,
                   study=study)
  with pytest.raises(InputError, match="2 Enhanced MR multi-frame files in one series"):
    _read(tmp_path / "s")
