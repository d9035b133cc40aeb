"""Finds the scans a user asks `predict` to segment: a NIfTI file, a folder of them, a manifest, a
BIDS dataset or a folder of DICOM files (one scan per study), with optional brain masks, exclusion
masks and extra channels.

Every scan gets a `name` that is safe as a file name (letters, digits, `.`, `_`, `-`; never `..` or
a path separator), so no subject id or BIDS entity can make an output land outside the output folder.
"""
import dataclasses
import pathlib
import re

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import dicom_series, nifti_io

NIFTI_SUFFIXES = (".nii.gz", ".nii")
EXTRA_FILES = ("brain_mask", "exclusion", "t1", "wm")  # per-scan files a flag may point at


@dataclasses.dataclass(frozen=True)
class Scan:
  name: str  # safe file-name stem, unique in the run
  record: nifti_io.SubjectRecord
  bids_path: tuple[str, ...] | None = None  # ("sub-01", "ses-1", "anat", "sub-01_ses-1") for BIDS
  dicom: dicom_series.Study | None = None  # the FLAIR is this DICOM study's series, not a file


def safe_name(text: str) -> str:
  """`text` with every character outside [A-Za-z0-9._-] replaced by `_`, without leading dots."""
  name = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")
  return name or "scan"


def nifti_stem(path: pathlib.Path) -> str | None:
  for suffix in NIFTI_SUFFIXES:
    if path.name.endswith(suffix) and len(path.name) > len(suffix):
      return path.name[:-len(suffix)]
  return None


def _match(folder: pathlib.Path | None, name: str, flag: str) -> pathlib.Path | None:
  """The file for scan `name` in a per-scan folder given to `flag` (`<name>.nii[.gz]`), if any."""
  if folder is None:
    return None
  for suffix in NIFTI_SUFFIXES:
    if (folder / f"{name}{suffix}").is_file():
      return folder / f"{name}{suffix}"
  return None


def _unique(scans: list[Scan]) -> list[Scan]:
  seen: dict[str, int] = {}
  out = []
  for scan in scans:
    name = scan.name
    if name in seen:
      seen[name] += 1
      name = f"{name}_{seen[scan.name]}"
    seen.setdefault(name, 1)
    out.append(dataclasses.replace(scan, name=name))
  return out


def _bids_scans(root: pathlib.Path) -> list[Scan]:
  scans = []
  for flair in sorted(root.glob("sub-*/**/anat/*_FLAIR.nii*")):
    stem = nifti_stem(flair)
    if stem is None:
      continue
    stem = stem[:-len("_FLAIR")]
    parts = flair.relative_to(root).parts[:-1]  # sub-XX[/ses-YY]/anat
    safe_parts = tuple(safe_name(p) for p in parts)
    scans.append(Scan(name=safe_name(stem), bids_path=(*safe_parts, safe_name(stem)),
                      record=nifti_io.SubjectRecord(subject=stem, flair=flair, labels=None)))
  if not scans:
    raise InputError(f"{root}: BIDS dataset with no sub-*/[ses-*/]anat/*_FLAIR.nii[.gz]")
  return scans


def _dicom_scans(root: pathlib.Path, series: str | None) -> list[Scan]:
  """One scan per DICOM study under `root`, named for its folder (the input folder itself when it
  holds one study, or studies whose files share folders; else the shortest path below it that no
  other study shares): never for a patient's name or id."""
  studies = dicom_series.find_studies(root, series)
  paths = [s.folder.relative_to(root).parts for s in studies]
  scans = []
  for study, parts in zip(studies, paths):
    others = [p for p in paths if p is not parts]
    own = next((parts[:n] for n in range(1, len(parts) + 1)
                if not any(p[:n] == parts[:n] for p in others)), parts)
    name = safe_name(("_".join(own) if others else "") or root.resolve().name)
    scans.append(Scan(name=name, dicom=study, record=nifti_io.SubjectRecord(
        subject=name, flair=study.folder, labels=None)))
  return scans


def _manifest_scan(record: nifti_io.SubjectRecord, series: str | None) -> Scan:
  """A manifest row's scan: its flair a NIfTI file, or a folder holding one DICOM study, named
  for the row's subject (how a user chooses the ids of DICOM studies)."""
  if not record.flair.is_dir():
    return Scan(name=safe_name(record.subject), record=record)
  studies = dicom_series.find_studies(record.flair, series)
  study = studies[0] if len(studies) == 1 else dicom_series.Study(
      record.flair, None, f"{len(studies)} DICOM studies where a manifest row takes one"
      if studies else "no DICOM images")
  return Scan(name=safe_name(record.subject), record=record, dicom=study)


def is_bids(path: pathlib.Path) -> bool:
  """A BIDS root: a dataset_description.json, or sub-* folders holding NIfTI files (sub-* folders
  of DICOM studies are not one)."""
  return path.is_dir() and ((path / "dataset_description.json").is_file()
                            or any(nifti_stem(p) for p in path.glob("sub-*/**/*.nii*")))


def find_scans(input_path: str | pathlib.Path, series: str | None = None,
               **extra: str | None) -> list[Scan]:
  """Scans under `input_path`. `extra` maps EXTRA_FILES names to a file (single-scan input) or a
  folder holding `<name>.nii[.gz]` per scan; a manifest gives them as columns instead. `series`
  (a series number or SeriesInstanceUID) picks each DICOM study's series instead of its FLAIR."""
  path = pathlib.Path(input_path)
  unknown = set(extra) - set(EXTRA_FILES)
  if unknown:
    raise ValueError(f"unknown extra inputs {sorted(unknown)}")
  given = {k: pathlib.Path(v) for k, v in extra.items() if v}
  for key, value in given.items():
    if not value.exists():
      raise InputError(f"{value}: --{key if key != 'exclusion' else 'exclusion_mask'} not found")
  if series and ((path.is_file() and nifti_stem(path) is not None) or is_bids(path)):
    raise InputError(f"{path}: --series picks a series in a folder of DICOM files, not here")
  if path.is_file() and dicom_series.is_dicom_file(path):
    raise InputError(f"{path}: a DICOM file; give the folder that holds its study "
                     f"(--input={path.parent})")
  if path.is_file() and nifti_stem(path) is not None:
    files = {}
    for key, value in given.items():
      if not value.is_file():
        raise InputError(f"{value}: a single scan needs a file for --{key}, not a folder")
      files[key] = value
    record = nifti_io.SubjectRecord(subject=nifti_stem(path), flair=path, labels=None, **files)
    return [Scan(name=safe_name(record.subject), record=record)]
  if path.is_file() or (path.is_dir() and (path / nifti_io.MANIFEST_NAME).is_file()):
    if given:
      raise InputError(f"{path}: with a manifest, give {', '.join(sorted(given))} as manifest "
                       "columns, not flags")
    records = nifti_io.read_manifest(path if path.is_file() else path / nifti_io.MANIFEST_NAME,
                                     require_labels=False)
    scans = [_manifest_scan(r, series) for r in records]
    if series and not any(scan.dicom for scan in scans):
      raise InputError(f"{path}: --series picks a series in a folder of DICOM files; this "
                       "manifest names none")
    return _unique(scans)
  if not path.is_dir():
    raise InputError(f"{path}: no such file or folder")
  for key, value in given.items():
    if not value.is_dir():
      raise InputError(f"{value}: with a folder of scans, --{key} must be a folder of "
                       "<scan name>.nii[.gz] files")
  if is_bids(path):
    scans = _bids_scans(path)
  else:
    files = sorted(p for p in path.iterdir() if p.is_file() and nifti_stem(p) is not None)
    scans = [Scan(name=safe_name(nifti_stem(f)), record=nifti_io.SubjectRecord(
        subject=nifti_stem(f), flair=f, labels=None)) for f in files] or _dicom_scans(path, series)
    if not scans:
      raise InputError(f"{path}: no NIfTI scans (*.nii, *.nii.gz), {nifti_io.MANIFEST_NAME}, "
                       "BIDS sub-*/anat/*_FLAIR.nii.gz or DICOM images found")
    if series and files:
      raise InputError(f"{path}: --series picks a series in a folder of DICOM files, not here")
  scans = _unique(scans)
  return [dataclasses.replace(scan, record=dataclasses.replace(
      scan.record, **{k: _match(folder, scan.name, k) for k, folder in given.items()}))
      for scan in scans]
