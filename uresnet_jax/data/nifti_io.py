"""NIfTI I/O and cohort readers: every file is validated here, so later stages trust their arrays."""
import csv
import dataclasses
import os
import pathlib
from typing import Mapping, Sequence

import nibabel as nib
import numpy as np

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError

KINDS = ("image", "labels", "mask")
LABEL_VALUES = (0, 1, 2)  # background, WMH, stroke
CHANNELS = ("flair", "t1", "wm")  # SubjectRecord fields usable as input channels
AFFINE_ATOL = 1e-3  # mm; co-registered files differ by float rounding only
MAX_VOXELS = 2 ** 28  # 1 GiB as float32: 1024 x 1024 x 256, far above any clinical scan
MANIFEST_NAME = "subjects.csv"
REQUIRED_COLUMNS = ("subject", "flair", "labels")
PATH_COLUMNS = ("flair", "labels", "t1", "wm", "brain_mask", "exclusion")


@dataclasses.dataclass(frozen=True)
class Volume:
  data: np.ndarray  # 3D
  affine: np.ndarray  # (4, 4) voxel -> world mm
  path: pathlib.Path | None = None  # where it was read from, for error messages
  header: nib.Nifti1Header | None = None  # the file's header, so outputs can keep its geometry codes

  @property
  def zooms(self) -> tuple[float, float, float]:
    return tuple(float(z) for z in nib.affines.voxel_sizes(self.affine))


@dataclasses.dataclass(frozen=True)
class SubjectRecord:
  subject: str
  flair: pathlib.Path
  labels: pathlib.Path | None
  t1: pathlib.Path | None = None
  wm: pathlib.Path | None = None
  brain_mask: pathlib.Path | None = None
  exclusion: pathlib.Path | None = None  # voxels never labelled as lesion (tumour, cavity, ...)
  clinical: Mapping[str, str] = dataclasses.field(default_factory=dict)  # other manifest columns
  labelled: tuple[str, ...] = tuple(labelling.CLASSES)  # classes the expert labels mark


@dataclasses.dataclass(frozen=True)
class SubjectVolumes:
  subject: str
  channels: dict[str, Volume]  # in the requested order
  labels: Volume | None
  brain_mask: Volume | None


def _where(path: os.PathLike | str, subject: str | None) -> str:
  return f"{subject}: {path}" if subject else str(path)


def load_nifti(path: os.PathLike | str, *, kind: str = "image", subject: str | None = None) -> Volume:
  """Reads a 3D NIfTI; labels -> uint8 in {0,1,2}, mask -> non-empty bool, image -> float32."""
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  path = pathlib.Path(path)
  where = _where(path, subject)
  if not path.is_file():
    raise InputError(f"{where}: file not found")
  try:
    img = nib.load(path, mmap=False)
  except Exception as e:  # nibabel raises many types for non-NIfTI or damaged headers
    raise InputError(f"{where}: not a readable NIfTI file ({_one_line(e)})") from None
  if not isinstance(img, (nib.Nifti1Pair, nib.Nifti2Pair)):  # .nii, .nii.gz or .hdr/.img
    raise InputError(f"{where}: not a NIfTI file (read as {type(img).__name__})")
  _check_header(img.header, where)
  try:
    data = np.asarray(img.dataobj)  # gzip/zlib/EOF errors of a truncated file surface only here
  except Exception as e:
    raise InputError(f"{where}: truncated or corrupt NIfTI data ({_one_line(e)})") from None
  volume = as_volume(data, img.affine, kind=kind, where=where)
  return dataclasses.replace(volume, path=path, header=img.header)


def as_volume(data: np.ndarray, affine: np.ndarray, *, kind: str = "image",
              where: str = "array") -> Volume:
  """A 3D array and its voxel-to-mm affine as a Volume, checked as a file's voxels are, so an
  array given in memory is trusted downstream like a loaded file."""
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  data = np.asarray(data)
  shape = data.shape
  while data.ndim > 3 and data.shape[-1] == 1:
    data = data[..., 0]
  if data.ndim != 3:
    raise InputError(f"{where}: expected a 3D volume, got shape {shape}")
  if data.dtype.kind not in "biuf":
    raise InputError(f"{where}: unsupported voxel data type {data.dtype} (expected integers, "
                     "floats or booleans)")
  affine = np.asarray(affine, dtype=np.float64)
  if affine.shape != (4, 4):
    raise InputError(f"{where}: affine of shape {affine.shape}, expected 4x4")
  if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
    raise InputError(f"{where}: invalid (non-finite or singular) affine")
  if kind == "image":
    data = data.astype(np.float32)
  bad = ~np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else None
  if bad is not None and bad.any():
    raise InputError(f"{where}: {int(bad.sum())} NaN or Inf voxels")
  if kind == "labels":
    data = _as_labels(data, where)
  elif kind == "mask":
    data = data > 0
    if not data.any():
      raise InputError(f"{where}: empty brain mask (no voxel > 0)")
  return Volume(data=data, affine=affine)


def _check_header(header: nib.Nifti1Header, where: str) -> None:
  """Refuses, before any voxel is read, a header whose shape or data type cannot be a scan."""
  try:
    shape = tuple(int(d) for d in header.get_data_shape())
    dtype = np.dtype(header.get_data_dtype())
  except Exception as e:  # nibabel raises several types for impossible dims or codes
    raise InputError(f"{where}: invalid NIfTI header ({_one_line(e)})") from None
  if not shape or min(shape) <= 0:
    raise InputError(f"{where}: header declares an empty shape {shape}")
  if int(np.prod(shape, dtype=np.float64)) > MAX_VOXELS:
    raise InputError(f"{where}: header declares shape {shape}, more than {MAX_VOXELS:,} voxels; "
                     "not a scan this tool can load")
  if dtype.kind not in "biuf" or dtype.fields is not None:
    raise InputError(f"{where}: unsupported voxel data type {dtype} (expected integers or floats)")


def _one_line(e: BaseException) -> str:
  text = " ".join(str(e).split()) or type(e).__name__
  return text[:200]


def _as_labels(data: np.ndarray, where: str) -> np.ndarray:
  values = np.unique(data)
  fractional = values[values != np.round(values)]
  if fractional.size:
    raise InputError(f"{where}: labels must be integers, found {fractional[0]:g}")
  outside = values[~np.isin(values, LABEL_VALUES)]
  if outside.size:
    found = ", ".join(f"{v:g}" for v in outside[:5])
    raise InputError(f"{where}: labels must be in {{0, 1, 2}}, found {found}")
  return data.astype(np.uint8)


def save_nifti(path: os.PathLike | str, data: np.ndarray, affine: np.ndarray,
               like: Volume | None = None) -> None:
  """Writes atomically (a temporary name in the same folder, then os.replace).

  With `like`, the output takes that volume's header (its qform and sform with their codes, units,
  orientation) so it lies on exactly the input's grid; `data` must then have its spatial shape.
  """
  path = pathlib.Path(path)
  data = np.asarray(data)
  if data.dtype == bool:
    data = data.astype(np.uint8)
  if like is not None and like.header is not None:
    if data.shape[:3] != like.data.shape:
      raise ValueError(f"data shape {data.shape} is not on the grid {like.data.shape} of {like.path}")
    klass = nib.Nifti2Image if isinstance(like.header, nib.Nifti2Header) else nib.Nifti1Image
    img = klass(data, None, header=like.header.copy())
    img.set_data_dtype(data.dtype)
    img.header.set_slope_inter(1.0, 0.0)
    img.header["cal_min"], img.header["cal_max"] = 0, 0
  else:
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
  with atomic.replacing(path) as tmp:
    nib.save(img, tmp)


def read_manifest(path: os.PathLike | str, require_labels: bool = True,
                  key: Sequence[str] = ("subject",)) -> list[SubjectRecord]:
  """Reads subjects.csv: subject, flair, labels (+ optional t1, wm, brain_mask, exclusion, and
  labelled: the classes the labels mark, labelling.LABELLED), paths relative to it; `labels` may be
  absent, and `flair` a folder of DICOM files, when `require_labels` is False (scans to segment).
  `key`: the required columns that name a row once (a longitudinal manifest's subject and visit;
  those besides subject land in the record's `clinical`)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: manifest not found")
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      columns = [c.strip() for c in (reader.fieldnames or [])]
      rows = list(reader)
  except (UnicodeDecodeError, csv.Error) as e:
    raise InputError(f"{path}: not a readable CSV manifest ({_one_line(e)})") from None
  required = (REQUIRED_COLUMNS if require_labels else ("subject", "flair")) + tuple(
      c for c in key if c != "subject")
  missing = [c for c in required if c not in columns]
  if missing:
    raise InputError(f"{path}: manifest lacks required column(s) {', '.join(missing)}"
                     f" (has: {', '.join(columns) or 'none'})")
  records, seen = [], set()
  for line, raw in enumerate(rows, start=2):
    if None in raw:
      raise InputError(f"{path}: line {line} has more fields than the header")
    row = {k.strip(): (v or "").strip() for k, v in raw.items()}
    subject = row["subject"]
    if not subject:
      raise InputError(f"{path}: line {line} has an empty subject")
    row_key = tuple(row[c] for c in key)
    if row_key in seen:
      raise InputError(f"{path}: line {line}: " + " ".join(f"{c} {row[c]}" for c in key)
                       + " is listed twice")
    seen.add(row_key)
    if not row["flair"]:
      raise InputError(f"{subject}: {path}: line {line} has no flair file")
    files = {}
    for column in PATH_COLUMNS:
      value = row.get(column, "")
      folder_ok = column == "flair" and not require_labels  # predict's DICOM study folder
      files[column] = _resolve(path.parent, value, subject, folder_ok) if value else None
    labelled = row.get("labelled", "").lower() or next(iter(labelling.LABELLED))
    if labelled not in labelling.LABELLED:
      raise InputError(f"{path}: line {line} ({subject}): labelled {row['labelled']!r} is not one "
                       f"of {', '.join(labelling.LABELLED)}")
    clinical = {k: v for k, v in row.items() if k not in ("subject", "labelled") + PATH_COLUMNS}
    records.append(SubjectRecord(subject=subject, clinical=clinical,
                                 labelled=labelling.LABELLED[labelled], **files))
  if not records:
    raise InputError(f"{path}: manifest lists no subjects")
  return records


def _resolve(base: pathlib.Path, value: str, subject: str,
             folder_ok: bool = False) -> pathlib.Path:
  file = base / pathlib.Path(value).expanduser()
  if not (file.is_file() or (folder_ok and file.is_dir())):
    raise InputError(f"{subject}: {file}: file not found")
  return file


def read_wmh_challenge(root: os.PathLike | str) -> list[SubjectRecord]:
  """Reads the MICCAI 2017 WMH layout <site>/<id>/{pre/FLAIR.nii.gz, wmh.nii.gz}; subject = site_id."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise InputError(f"{root}: cohort folder not found")
  records = []
  for flair in sorted(root.glob("**/pre/FLAIR.nii.gz")):
    folder = flair.parent.parent
    parts = folder.relative_to(root).parts
    labels = folder / "wmh.nii.gz"
    t1 = folder / "pre" / "T1.nii.gz"
    records.append(SubjectRecord(
        subject="_".join(parts) or folder.name,
        flair=flair,
        labels=labels if labels.is_file() else None,
        t1=t1 if t1.is_file() else None,
        clinical={"site": "/".join(parts[:-1])},
    ))
  if not records:
    raise InputError(f"{root}: no {MANIFEST_NAME} and no <site>/<id>/pre/FLAIR.nii.gz found")
  return records


def read_cohort(path: os.PathLike | str) -> list[SubjectRecord]:
  """Reads a manifest CSV, a folder holding subjects.csv, or a WMH-challenge folder."""
  path = pathlib.Path(path)
  if path.is_file():
    return read_manifest(path)
  if (path / MANIFEST_NAME).is_file():
    return read_manifest(path / MANIFEST_NAME)
  if path.is_dir():
    return read_wmh_challenge(path)
  raise InputError(f"{path}: cohort not found (expected a manifest CSV or a folder)")


def load_subject(record: SubjectRecord, channels: Sequence[str] = ("flair",),
                 given: Mapping[str, Volume] | None = None) -> SubjectVolumes:
  """Loads a subject's channels, labels and mask; all must share shape and affine. `given` holds
  channels already read from elsewhere (a DICOM series), which are not loaded from the record."""
  subject = record.subject
  if not channels:
    raise InputError(f"{subject}: no input channels requested")
  loaded = {}
  for name in channels:
    if name not in CHANNELS:
      raise InputError(f"{subject}: unknown channel {name!r} (choose from {', '.join(CHANNELS)})")
    if given and name in given:
      loaded[name] = given[name]
      continue
    file = getattr(record, name)
    if file is None:
      raise InputError(f"{subject}: channel {name!r} requested but the cohort gives no {name} file")
    loaded[name] = load_nifti(file, kind="image", subject=subject)
  labels = load_nifti(record.labels, kind="labels", subject=subject) if record.labels else None
  mask = load_nifti(record.brain_mask, kind="mask", subject=subject) if record.brain_mask else None
  reference = next(iter(loaded.values()))
  for volume in [*loaded.values(), labels, mask]:
    if volume is not None:
      check_same_grid(reference, volume, subject)
  return SubjectVolumes(subject=subject, channels=loaded, labels=labels, brain_mask=mask)


def check_same_grid(reference: Volume, volume: Volume, subject: str | None = None) -> None:
  """Raises InputError unless `volume` has the shape and affine (within 1e-3) of `reference`."""
  where = _where(volume.path or "volume", subject)
  ref_name = reference.path.name if reference.path else "the reference"
  if volume.data.shape != reference.data.shape:
    raise InputError(f"{where}: shape {volume.data.shape} differs from {ref_name}"
                     f" shape {reference.data.shape}")
  if not np.allclose(volume.affine, reference.affine, rtol=0, atol=AFFINE_ATOL):
    diff = float(np.max(np.abs(volume.affine - reference.affine)))
    raise InputError(f"{where}: affine differs from {ref_name}"
                     f" (max difference {diff:.3g} mm > {AFFINE_ATOL})")
