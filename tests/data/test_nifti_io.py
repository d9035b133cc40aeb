"""Tests for nifti_io: loading, validation (of files and of arrays), atomic saving and the cohort
readers."""
import gzip
import pathlib

import nibabel as nib
import numpy as np
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io

SHAPE = (8, 9, 4)
AFFINE = np.diag([0.9, 0.9, 5.0, 1.0])


def _write(path: pathlib.Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> pathlib.Path:
  nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
  return path


def _image(seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(1, 2, SHAPE).astype(np.float32)


def _labels() -> np.ndarray:
  labels = np.zeros(SHAPE, np.uint8)
  labels[2:4, 2:4, 1] = 1
  labels[5, 5, 2] = 2
  return labels


def _subject_dir(root: pathlib.Path, **overrides) -> nifti_io.SubjectRecord:
  """Writes flair/labels/mask files for subject s1 and returns its record."""
  root.mkdir(parents=True, exist_ok=True)
  files = {"flair": _image(), "labels": _labels(), "brain_mask": np.ones(SHAPE, np.uint8)}
  files.update(overrides)
  paths = {name: _write(root / f"{name}.nii.gz", data) for name, data in files.items()}
  return nifti_io.SubjectRecord(subject="s1", **paths)


def test_load_types_and_zooms(tmp_path):
  image = nifti_io.load_nifti(_write(tmp_path / "f.nii.gz", _image().astype(np.float64)))
  labels = nifti_io.load_nifti(_write(tmp_path / "l.nii.gz", _labels().astype(np.float32)), kind="labels")
  mask = nifti_io.load_nifti(_write(tmp_path / "m.nii", np.ones(SHAPE, np.int16)), kind="mask")
  assert image.data.dtype == np.float32 and image.data.shape == SHAPE
  np.testing.assert_allclose(image.data, _image(), rtol=1e-6)
  assert image.zooms == pytest.approx((0.9, 0.9, 5.0))
  np.testing.assert_array_equal(labels.data, _labels())
  assert labels.data.dtype == np.uint8 and mask.data.dtype == bool and mask.data.all()
  np.testing.assert_allclose(image.affine, AFFINE)


def test_trailing_singleton_dims_are_squeezed(tmp_path):
  volume = nifti_io.load_nifti(_write(tmp_path / "f.nii.gz", _image()[..., None]))
  assert volume.data.shape == SHAPE


def test_an_array_is_checked_as_a_files_voxels_are():
  volume = nifti_io.as_volume(_image().astype(np.float64)[..., None], AFFINE, where="flair")
  assert volume.data.shape == SHAPE and volume.data.dtype == np.float32 and volume.path is None
  assert nifti_io.as_volume(_labels(), AFFINE, kind="mask").data.dtype == bool
  for data, affine, problem in [
      (_image()[0], AFFINE, "flair: expected a 3D volume, got shape"),
      (_image(), AFFINE[:3, :3], "flair: affine of shape"),
      (_image(), np.diag([1.0, 0.0, 1.0, 1.0]), "flair: invalid .*singular"),
      (np.where(_labels() == 2, np.inf, _image()), AFFINE, "flair: 1 NaN or Inf"),
      (np.full(SHAPE, "a"), AFFINE, "flair: unsupported voxel data type")]:
    with pytest.raises(InputError, match=problem):
      nifti_io.as_volume(data, affine, where="flair")
  with pytest.raises(InputError, match="mask: empty brain mask"):
    nifti_io.as_volume(np.zeros(SHAPE), AFFINE, kind="mask", where="mask")


def test_save_is_atomic_and_round_trips(tmp_path):
  path = tmp_path / "out.nii.gz"
  nifti_io.save_nifti(path, _labels(), AFFINE)
  nifti_io.save_nifti(path, _labels(), AFFINE)  # overwrite
  assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]
  loaded = nifti_io.load_nifti(path, kind="labels")
  np.testing.assert_array_equal(loaded.data, _labels())
  np.testing.assert_allclose(loaded.affine, AFFINE)


def _truncated(path: pathlib.Path) -> pathlib.Path:
  _write(path, _image())
  raw = path.read_bytes()
  path.write_bytes(raw[: len(raw) // 2])
  return path


BAD_FILES = {
    "missing": (lambda p: p, "image", "not found"),
    "not_nifti": (lambda p: (p.write_text("subject,flair\n"), p)[1], "image", "NIfTI"),
    "gzip_garbage": (lambda p: (p.write_bytes(gzip.compress(b"x" * 400)), p)[1], "image", "NIfTI"),
    "truncated_gz": (_truncated, "image", "truncated"),
    "4d": (lambda p: _write(p, np.zeros(SHAPE + (2,), np.float32)), "image", "3D"),
    "2d": (lambda p: _write(p, np.zeros(SHAPE[:2], np.float32)), "image", "3D"),
    "nan": (lambda p: _write(p, np.where(_labels() > 0, np.nan, 1.0).astype(np.float32)), "image", "NaN"),
    "inf": (lambda p: _write(p, np.where(_labels() > 0, np.inf, 1.0).astype(np.float32)), "image", "Inf"),
    "labels_3": (lambda p: _write(p, _labels() * 3), "labels", "{0, 1, 2}"),
    "labels_float": (lambda p: _write(p, _labels() * 0.5), "labels", "integer"),
    "empty_mask": (lambda p: _write(p, np.zeros(SHAPE, np.uint8)), "mask", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_one_line_naming_subject_and_file(tmp_path, case):
  make, kind, problem = BAD_FILES[case]
  path = make(tmp_path / f"{case}.nii.gz")
  with pytest.raises(InputError) as info:
    nifti_io.load_nifti(path, kind=kind, subject="sub-07")
  message = str(info.value)
  assert f"{case}.nii.gz" in message and "sub-07" in message and problem in message
  assert "\n" not in message


def test_truncated_uncompressed_nifti(tmp_path):
  with pytest.raises(InputError, match=r"t\.nii: truncated"):
    nifti_io.load_nifti(_truncated(tmp_path / "t.nii"))


def test_load_subject_checks_grid_agreement(tmp_path):
  record = _subject_dir(tmp_path / "ok")
  volumes = nifti_io.load_subject(record)
  assert list(volumes.channels) == ["flair"] and volumes.labels.data.dtype == np.uint8
  assert volumes.brain_mask.data.all()

  bad_shape = _subject_dir(tmp_path / "shape", labels=np.zeros((8, 9, 5), np.uint8))
  with pytest.raises(InputError, match=r"s1: .*labels\.nii\.gz: shape .* differs from flair"):
    nifti_io.load_subject(bad_shape)

  record = _subject_dir(tmp_path / "affine")
  _write(record.brain_mask, np.ones(SHAPE, np.uint8), np.diag([0.9, 0.9, 5.1, 1.0]))
  with pytest.raises(InputError, match=r"s1: .*brain_mask\.nii\.gz: affine differs"):
    nifti_io.load_subject(record)


def test_load_subject_channels(tmp_path):
  record = _subject_dir(tmp_path, t1=_image(1))
  volumes = nifti_io.load_subject(record, channels=("t1", "flair"))
  assert list(volumes.channels) == ["t1", "flair"]
  with pytest.raises(InputError, match="s1: channel 'wm'"):
    nifti_io.load_subject(record, channels=("flair", "wm"))
  with pytest.raises(InputError, match="unknown channel"):
    nifti_io.load_subject(record, channels=("dwi",))


def _manifest(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
  for name in ("a_flair", "a_labels", "b_flair", "b_labels", "a_t1"):
    _write(tmp_path / f"{name}.nii.gz", _labels())
  path = tmp_path / "subjects.csv"
  path.write_text(text)
  return path


def test_read_manifest(tmp_path):
  path = _manifest(tmp_path, "subject,flair,labels,t1,age,sex\n"
                   "b,b_flair.nii.gz,b_labels.nii.gz,,71,F\n"
                   "a,a_flair.nii.gz,a_labels.nii.gz,a_t1.nii.gz,65,M\n")
  records = nifti_io.read_manifest(path)
  assert [r.subject for r in records] == ["b", "a"]
  assert records[1].flair == tmp_path / "a_flair.nii.gz" and records[1].t1 == tmp_path / "a_t1.nii.gz"
  assert records[0].t1 is None and records[0].wm is None and records[0].brain_mask is None
  assert records[0].clinical == {"age": "71", "sex": "F"}
  assert [r.subject for r in nifti_io.read_cohort(tmp_path)] == ["b", "a"]
  assert [r.subject for r in nifti_io.read_cohort(path)] == ["b", "a"]


@pytest.mark.parametrize("text, problem", [
    ("subject,flair\na,a_flair.nii.gz\n", r"lacks required column\(s\) labels"),
    ("subject,flair,labels\na,a_flair.nii.gz,missing.nii.gz\n", "a: .*missing.nii.gz: file not found"),
    ("subject,flair,labels\na,a_flair.nii.gz,a_labels.nii.gz\na,b_flair.nii.gz,b_labels.nii.gz\n",
     "listed twice"),
    ("subject,flair,labels\n", "no subjects"),
    ("subject,flair,labels\na,,a_labels.nii.gz\n", "no flair"),
])
def test_bad_manifest(tmp_path, text, problem):
  with pytest.raises(InputError, match=problem) as info:
    nifti_io.read_manifest(_manifest(tmp_path, text))
  assert ("subjects.csv" in str(info.value) or "missing.nii.gz" in str(info.value))


def test_missing_manifest_or_cohort(tmp_path):
  with pytest.raises(InputError, match="nope.csv: manifest not found"):
    nifti_io.read_manifest(tmp_path / "nope.csv")
  with pytest.raises(InputError, match="cohort not found"):
    nifti_io.read_cohort(tmp_path / "nowhere")
  with pytest.raises(InputError, match="no subjects.csv"):
    nifti_io.read_cohort(tmp_path)


def test_read_wmh_challenge(tmp_path):
  for site, subject, t1 in [("Utrecht", "0", True), ("Singapore", "50", False)]:
    folder = tmp_path / site / subject
    (folder / "pre").mkdir(parents=True)
    _write(folder / "pre" / "FLAIR.nii.gz", _image())
    _write(folder / "wmh.nii.gz", _labels().astype(np.float32))
    if t1:
      _write(folder / "pre" / "T1.nii.gz", _image(1))
  records = nifti_io.read_cohort(tmp_path)
  assert [r.subject for r in records] == ["Singapore_50", "Utrecht_0"]
  assert records[0].t1 is None and records[1].t1 == tmp_path / "Utrecht/0/pre/T1.nii.gz"
  assert records[1].clinical == {"site": "Utrecht"}
  volumes = nifti_io.load_subject(records[1], channels=("flair", "t1"))
  assert set(np.unique(volumes.labels.data)) == {0, 1, 2}  # 2 = other pathology -> class 2


# ----------------------------------------------------------------------------- corrupted files

import signal  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_FIELDS = {  # header field -> values that break it in interesting ways
    "dim": [[-1, 8, 8, 4, 1, 1, 1, 1], [3, 0, 8, 4, 1, 1, 1, 1], [3, 32767, 32767, 32767, 1, 1, 1, 1],
            [7, 8, 8, 4, 2, 2, 2, 2], [2, 8, 8, 1, 1, 1, 1, 1], [3, 8, 8, 400, 1, 1, 1, 1]],
    "datatype": [0, 1, 32, 128, 255, 1792, 2304, 9999, -4],
    "bitpix": [0, 1, 7, 256],
    "pixdim": [[1, 0, 0, 0, 1, 1, 1, 1], [1, np.nan, 1, 1, 1, 1, 1, 1],
               [-1, np.inf, -1e30, 1e30, 1, 1, 1, 1]],
    "vox_offset": [0, 1, 351, 1e9, -100, np.nan],
    "scl_slope": [0, np.nan, np.inf, -1e38],
    "scl_inter": [np.nan, np.inf, 1e38],
    "qform_code": [0, 1, 99, -3],
    "sform_code": [0, 2, 99],
    "srow_x": [[0, 0, 0, 0], [np.nan, 0, 0, 0], [1e38, 1e38, 1e38, 1e38]],
    "quatern_b": [np.nan, 2.0, -7.0],
    "sizeof_hdr": [0, 540, 12345],
    "magic": [b"ni1\0", b"xyz\0", b"\0\0\0\0"],
}


def _valid_nifti(tmp_path) -> bytes:
  rng = np.random.default_rng(0)
  path = tmp_path / "valid.nii"
  img = nib.Nifti1Image(rng.integers(0, 3, (8, 8, 4)).astype(np.int16), np.diag([1, 1, 3, 1.0]))
  nib.save(img, path)
  return path.read_bytes()


@st.composite
def _corruptions(draw):
  kind = draw(st.sampled_from(["field", "bytes", "truncate"]))
  if kind == "field":
    field = draw(st.sampled_from(sorted(_FIELDS)))
    return kind, field, draw(st.sampled_from(_FIELDS[field]))
  if kind == "bytes":
    return kind, draw(st.lists(st.tuples(st.integers(0, 348 + 4 + 512 - 1), st.integers(0, 255)),
                               min_size=1, max_size=8)), None
  return kind, draw(st.integers(0, 348 + 4 + 512 - 1)), None


_TRIED = []


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the same 400 cases each run
@given(corruption=_corruptions(), kind=st.sampled_from(nifti_io.KINDS))
def test_corrupted_files_load_or_give_an_input_error_never_a_traceback_or_hang(
    tmp_path, corruption, kind):
  raw = _valid_nifti(tmp_path)
  what, where, value = corruption
  if what == "field":
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(raw))
    try:
      header[where] = value
    except (ValueError, TypeError, OverflowError):
      return  # the value does not fit the field at all
    data = header.binaryblock + raw[348:]
  elif what == "bytes":
    data = bytearray(raw)
    for offset, byte in where:
      data[offset] = byte
    data = bytes(data)
  else:
    data = raw[:where]
  path = tmp_path / "corrupt.nii"
  path.write_bytes(data)

  def hang(signum, frame):
    raise AssertionError(f"load_nifti hung on {corruption}")

  previous = signal.signal(signal.SIGALRM, hang)
  signal.alarm(10)
  try:
    volume = nifti_io.load_nifti(path, kind=kind)
  except InputError as e:
    assert str(e).startswith(str(path)) and "\n" not in str(e)
    _TRIED.append("refused")
  else:
    assert volume.data.ndim == 3 and np.all(np.isfinite(volume.affine))
    _TRIED.append("loaded")
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_the_property_test_tried_both_outcomes(tmp_path):
  """The property test must have met loadable and refused files (run here if it was deselected)."""
  if not _TRIED:
    test_corrupted_files_load_or_give_an_input_error_never_a_traceback_or_hang(tmp_path=tmp_path)
  assert len(_TRIED) >= 100 and {"loaded", "refused"} <= set(_TRIED), len(_TRIED)
  print(f"corrupted files tried: {len(_TRIED)} ({_TRIED.count('refused')} refused)")


def test_enormous_declared_shape_is_refused_before_reading(tmp_path):
  header = nib.Nifti1Header()
  header.set_data_shape((4096, 4096, 4096))
  header.set_data_dtype(np.float32)
  path = tmp_path / "huge.nii"
  path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 1024)  # 1 kB of data, 256 GB declared
  with pytest.raises(InputError, match="more than .* voxels"):
    nifti_io.load_nifti(path)


def test_manifest_paths_outside_the_cohort_are_read_and_named_when_missing(tmp_path):
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  nifti_io.save_nifti(outside / "f.nii.gz", np.ones((4, 4, 2), np.float32), np.eye(4))
  cohort = tmp_path / "cohort"
  cohort.mkdir()
  (cohort / "subjects.csv").write_text("subject,flair,labels\ns1,../elsewhere/f.nii.gz,\n")
  (record,) = nifti_io.read_manifest(cohort / "subjects.csv")
  assert nifti_io.load_nifti(record.flair).data.shape == (4, 4, 2)
  before = sorted(outside.iterdir())
  (cohort / "subjects.csv").write_text("subject,flair,labels\ns1,../elsewhere/gone.nii.gz,\n")
  with pytest.raises(InputError, match=r"s1: .*cohort/\.\./elsewhere/gone\.nii\.gz: file not found"):
    nifti_io.read_manifest(cohort / "subjects.csv")
  assert sorted(outside.iterdir()) == before  # only read, never written


def test_manifest_labelled_column_says_which_classes_the_labels_mark(tmp_path):
  path = _manifest(tmp_path, "subject,flair,labels,labelled,age\n"
                   "a,a_flair.nii.gz,a_labels.nii.gz,stroke,65\n"
                   "b,b_flair.nii.gz,b_labels.nii.gz,,71\n")
  a, b = nifti_io.read_manifest(path)
  assert a.labelled == ("stroke",) and b.labelled == ("wmh", "stroke")
  assert a.clinical == {"age": "65"}  # not a clinical column
  (plain,) = nifti_io.read_manifest(_manifest(tmp_path, "subject,flair,labels\n"
                                              "a,a_flair.nii.gz,a_labels.nii.gz\n"))
  assert plain.labelled == ("wmh", "stroke")


def test_bad_labelled_value_is_one_line_naming_manifest_row_and_value(tmp_path):
  path = _manifest(tmp_path, "subject,flair,labels,labelled\n"
                   "a,a_flair.nii.gz,a_labels.nii.gz,wmh\n"
                   "b,b_flair.nii.gz,b_labels.nii.gz,lesions\n")
  with pytest.raises(InputError) as info:
    nifti_io.read_manifest(path)
  message = str(info.value)
  assert "\n" not in message
  assert str(path) in message and "line 3" in message and "'lesions'" in message
  assert "wmh+stroke, wmh, stroke" in message
