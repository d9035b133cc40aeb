"""DICOM series for `predict`: found under a folder (nested, any file name, DICOMDIR ignored), split
into volumes, the FLAIR of each study chosen, and assembled with pydicom into a Volume (voxels and
RAS affine) that the NIfTI route segments the same way.

A volume is the images of one series that share an echo, an orientation and a temporal position,
or the frames of one enhanced multi-frame file; a localizer is never one. What cannot be assembled
exactly (a missing slice, uneven spacing, a gantry tilt, repeated slice positions, pixel data no
installed decoder reads, a damaged file) is refused with one line naming the series: nothing is
resampled or guessed.
"""
import dataclasses
import pathlib
import warnings
from typing import Callable, Iterable, Sequence

import numpy as np

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io

FLAIR_MIN_TI_MS = 1500.0  # an inversion recovery with a longer inversion time nulls CSF: a FLAIR
POSITION_ATOL_MM = 0.01  # slices off their normal, or spacing off even, by more: refused
ORIENTATION_DECIMALS = 4  # direction cosines rounded so that float noise does not split a volume
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ENHANCED_IMAGE_CLASSES = {"1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR",
                          "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR"}
GEOMETRY = (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6), ("PixelSpacing", 2),
            ("Rows", 1), ("Columns", 1))  # what a slice needs to be placed, and its value count
CHOOSE = "choose one with --series as listed (a series number or SeriesInstanceUID[:part])"


@dataclasses.dataclass(frozen=True)
class Series:
  """One volume's images: a series, or one echo / orientation / time point of a series."""
  study: str  # StudyInstanceUID
  uid: str  # SeriesInstanceUID
  number: str  # SeriesNumber ("" when absent)
  description: str  # SeriesDescription, else ProtocolName
  orientation: str  # axial, coronal, sagittal, oblique (or "multi-frame")
  files: tuple[pathlib.Path, ...]  # one image each, in the order read
  part: str = ""  # what set it apart within its series: "echo 2", "orientation 2", "time 3"
  flair: bool = False  # named FLAIR, or an inversion recovery with TI > FLAIR_MIN_TI_MS
  localizer: bool = False  # ImageType LOCALIZER: a scout, never segmented
  problem: str = ""  # why it cannot be read as it is
  multiframe: bool = False  # one enhanced multi-frame file holding every slice

  def label(self) -> str:
    """How a message names it: number, description and what set it apart."""
    name = f"series {self.number or '?'}" + (f" '{self.description}'" if self.description else "")
    return name + (f" ({self.part})" if self.part else "")

  def selector(self) -> str:
    """What --series takes to pick this volume: its number (else UID), then its part, if any."""
    return (self.number or self.uid) + (f":{self.part.replace(' ', '')}" if self.part else "")

  def line(self) -> str:
    """One line of the listing a refused choice shows."""
    kind = " [localizer]" if self.localizer else " [FLAIR]" if self.flair else ""
    return (f"{self.label()}: {len(self.files)} image(s), {self.orientation}{kind}, "
            f"--series={self.selector()}, SeriesInstanceUID {self.uid}")


@dataclasses.dataclass(frozen=True)
class Study:
  """One study's volume to segment, or why none was chosen (told when its scan is segmented, so a
  cohort's other studies go on)."""
  folder: pathlib.Path  # the folder its files lie under
  series: Series | None
  problem: str = ""

  def identity(self) -> list:
    """What a run's fingerprint needs to tell this input from another."""
    if self.series is None:
      return [self.problem]
    return [self.series.uid, self.series.part, [str(f) for f in self.series.files]]


def _text(ds, keyword: str) -> str:
  return " ".join(str(ds.get(keyword, "") or "").split())


def _number(ds, keyword: str, default: float = 0.0) -> float:
  try:
    return float(ds.get(keyword, default) or default)
  except (TypeError, ValueError):
    return default


def is_flair(ds) -> bool:
  """Named FLAIR (or Siemens' dark fluid), or an inversion recovery whose TI nulls CSF."""
  names = " ".join(_text(ds, k) for k in ("SeriesDescription", "ProtocolName", "SequenceName"))
  names = names.upper().replace("-", "_")
  if "FLAIR" in names or "DARK_FLUID" in names:
    return True
  sequence = ds.get("ScanningSequence", "")
  inversion = "IR" in ([sequence] if isinstance(sequence, str) else list(sequence))
  return inversion and _number(ds, "InversionTime") > FLAIR_MIN_TI_MS


def orientation_name(row: np.ndarray, column: np.ndarray) -> str:
  """axial, coronal or sagittal when the slice normal is within about 10 degrees of an axis."""
  normal = np.cross(row, column)  # zero for a missing orientation: oblique
  axis = int(np.argmax(np.abs(normal)))
  if abs(normal[axis]) < np.cos(np.deg2rad(10)):
    return "oblique"
  return ("sagittal", "coronal", "axial")[axis]


def is_dicom_file(path: pathlib.Path) -> bool:
  """A file with DICOM's preamble ("DICM" at byte 128)."""
  with open(path, "rb") as f:
    f.seek(128)
    return f.read(4) == b"DICM"


def _read_header(path: pathlib.Path):
  """The file's DICOM header, or None for a file that is not DICOM (notes, a DICOMDIR) or names no
  study and series."""
  import pydicom
  if path.name.upper() == "DICOMDIR":
    return None
  try:
    with warnings.catch_warnings():  # pydicom's notes on odd files: those it reads are judged here
      warnings.simplefilter("ignore")
      ds = pydicom.dcmread(path, stop_before_pixels=True)
  except Exception:  # not DICOM, or a header too damaged to tell which series it belongs to
    return None
  if "SeriesInstanceUID" not in ds or "StudyInstanceUID" not in ds:
    return None
  return ds


def read_headers(folder: pathlib.Path) -> list[tuple[pathlib.Path, object]]:
  """(file, header) of every DICOM image under `folder`, at any depth, in path order."""
  found = []
  for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
    ds = _read_header(path)
    if ds is not None and ("ImagePositionPatient" in ds or ds.get("SOPClassUID", "")
                           in ENHANCED_IMAGE_CLASSES):
      found.append((path, ds))
  return found


def _volume_key(ds) -> tuple:
  """What tells the volumes of one series apart: a localizer, echo, orientation, time point."""
  try:
    cosines = np.asarray(ds.get("ImageOrientationPatient"), float).reshape(6)
  except (TypeError, ValueError):  # missing or malformed: kept together, refused when assembled
    cosines = np.zeros(6)
  orientation = tuple(np.round(cosines, ORIENTATION_DECIMALS))
  localizer = "LOCALIZER" in [str(t).upper() for t in ds.get("ImageType", [])]
  return (localizer, str(ds.get("EchoNumbers", "") or ""), orientation,
          str(ds.get("TemporalPositionIdentifier", "") or ""))


def split_series(headers: Sequence[tuple[pathlib.Path, object]]) -> list[Series]:
  """The volumes in `headers`: each series split by echo, orientation and temporal position, and
  further by acquisition number where slice positions repeat (interleaved acquisitions)."""
  by_series: dict[str, list] = {}
  for path, ds in headers:
    by_series.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
  volumes = []
  for uid, items in by_series.items():
    first = items[0][1]
    common = dict(study=str(first.StudyInstanceUID), uid=uid,
                  number=_text(first, "SeriesNumber"),
                  description=_text(first, "SeriesDescription") or _text(first, "ProtocolName"),
                  flair=is_flair(first))
    if first.get("SOPClassUID", "") in ENHANCED_IMAGE_CLASSES:
      volumes.append(_multiframe_series(common, items))
      continue
    groups: dict[tuple, list] = {}
    for path, ds in items:
      groups.setdefault(_volume_key(ds), []).append((path, ds))
    groups = _split_repeated_positions(groups)
    differs = [len({k[i] for k in groups}) > 1 for i in range(1, 5)]
    for index, (key, members) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
      localizer, echo, cosines, time, acquisition = key
      values = dict(echo=echo, orientation=str(index + 1), time=time, acquisition=acquisition)
      varying = [name for name, varies in zip(values, differs) if varies]
      cosines = np.asarray(cosines, float)
      volumes.append(Series(
          **common, orientation=orientation_name(cosines[:3], cosines[3:]),
          files=tuple(p for p, _ in members),
          part=", ".join(f"{name} {values[name]}" for name in varying),
          localizer=localizer))
  return volumes


def _multiframe_series(common: dict, items: Sequence[tuple[pathlib.Path, object]]) -> Series:
  """An enhanced multi-frame series: one file, its frames one volume (several are refused)."""
  files = tuple(p for p, _ in items)
  ds = items[0][1]
  kind = ENHANCED_IMAGE_CLASSES[ds.SOPClassUID]
  if len(items) > 1:
    return Series(**common, orientation="multi-frame", files=files, problem=f"{len(items)} "
                  f"{kind} multi-frame files in one series; export it as one file per slice")
  try:
    cosines = np.asarray(frame_headers(ds, kind)[0].ImageOrientationPatient, float)
  except InputError as e:
    return Series(**common, orientation="multi-frame", files=files, problem=str(e))
  image_type = [str(t).upper() for t in ds.get("ImageType", [])]
  return Series(**common, orientation=orientation_name(cosines[:3], cosines[3:]), files=files,
                multiframe=True, localizer="LOCALIZER" in image_type)


def frame_headers(ds, where: str) -> list:
  """One header per frame of an enhanced multi-frame image, holding what a single-frame image
  carries (position, orientation, pixel spacing, size, rescale), from its per-frame functional
  groups or else the shared ones."""
  from pydicom.dataset import Dataset
  shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
  frames = []
  for number, group in enumerate(ds.get("PerFrameFunctionalGroupsSequence") or [], start=1):
    def find(sequence: str, keyword: str, default=None):
      for source in (group, shared):
        items = source.get(sequence)
        if items and keyword in items[0]:
          return items[0][keyword].value
      if default is None:
        raise InputError(f"{where}: frame {number} has no {keyword}")
      return default
    frame = Dataset()
    frame.Rows, frame.Columns = ds.Rows, ds.Columns
    frame.ImagePositionPatient = find("PlanePositionSequence", "ImagePositionPatient")
    frame.ImageOrientationPatient = find("PlaneOrientationSequence", "ImageOrientationPatient")
    frame.PixelSpacing = find("PixelMeasuresSequence", "PixelSpacing")
    frame.RescaleSlope = find("PixelValueTransformationSequence", "RescaleSlope", 1.0)
    frame.RescaleIntercept = find("PixelValueTransformationSequence", "RescaleIntercept", 0.0)
    frames.append(frame)
  if not frames:
    raise InputError(f"{where}: a multi-frame image without per-frame functional groups")
  return frames


def _split_repeated_positions(groups: dict[tuple, list]) -> dict[tuple, list]:
  """Groups whose slice positions repeat split by AcquisitionNumber when that makes them unique
  (two acquisitions stored as one series); others keep an empty acquisition part."""
  out = {}
  for key, members in groups.items():
    positions = [tuple(np.round(np.asarray(ds.ImagePositionPatient, float), 2))
                 for _, ds in members]
    if len(set(positions)) == len(positions):
      out[(*key, "")] = members
      continue
    by_acquisition: dict[str, list] = {}
    for path, ds in members:
      by_acquisition.setdefault(str(ds.get("AcquisitionNumber", "") or ""), []).append((path, ds))
    unique = all(len({tuple(np.round(np.asarray(d.ImagePositionPatient, float), 2))
                      for _, d in m}) == len(m) for m in by_acquisition.values())
    if len(by_acquisition) > 1 and unique:
      out.update({(*key, a): m for a, m in by_acquisition.items()})
    else:
      out[(*key, "")] = members  # assembled, then refused for its repeated positions
  return out


def _listing(volumes: Sequence[Series]) -> str:
  return "; ".join(v.line() for v in volumes) or "none"


def choose(volumes: Sequence[Series], wanted: str | None) -> Series:
  """The volume to segment among one study's `volumes`: the one series `wanted` names (its number
  or SeriesInstanceUID), else the one FLAIR; anything else is one InputError listing them all."""
  if wanted:
    series, _, part = wanted.partition(":")
    picked = [v for v in volumes if series in (v.uid, v.number)
              and (not part or v.part.replace(" ", "") == part.replace(" ", ""))]
    if not picked:
      raise InputError(f"no series {wanted!r} among: {_listing(volumes)}")
    if len(picked) > 1:
      raise InputError(f"series {wanted!r} holds {len(picked)} volumes (a 4D, multi-echo or "
                       f"multi-orientation series): {_listing(picked)}; {CHOOSE}")
    return picked[0]
  candidates = [v for v in volumes if v.flair and not v.localizer]
  by_series = {v.uid for v in candidates}
  if len(candidates) == 1:
    return candidates[0]
  if not candidates:
    raise InputError(f"no FLAIR series (named FLAIR, or inversion recovery with TI > "
                     f"{FLAIR_MIN_TI_MS:g} ms) among: {_listing(volumes)}; {CHOOSE}")
  if len(by_series) == 1:
    raise InputError(f"{candidates[0].label().split(' (')[0]} holds {len(candidates)} volumes "
                     f"(a 4D, multi-echo or multi-orientation series): {_listing(candidates)}; "
                     f"{CHOOSE}")
  raise InputError(f"{len(candidates)} FLAIR series: {_listing(candidates)}; {CHOOSE}")


def find_studies(folder: pathlib.Path, wanted: str | None = None) -> list[Study]:
  """One Study per StudyInstanceUID under `folder`, each with its chosen volume or its problem;
  empty when `folder` holds no DICOM image."""
  headers = read_headers(folder)
  by_study: dict[str, list] = {}
  for path, ds in headers:
    by_study.setdefault(str(ds.StudyInstanceUID), []).append((path, ds))
  studies = []
  for items in by_study.values():
    where = _common_folder([p for p, _ in items])
    try:
      studies.append(Study(where, choose(split_series(items), wanted)))
    except InputError as e:
      studies.append(Study(where, None, str(e)))
  return sorted(studies, key=lambda s: str(s.folder))


def _common_folder(paths: Iterable[pathlib.Path]) -> pathlib.Path:
  parents = [p.parent.parts for p in paths]
  common = []
  for parts in zip(*parents):
    if len(set(parts)) > 1:
      break
    common.append(parts[0])
  return pathlib.Path(*common)


def read_volume(study: Study) -> nifti_io.Volume:
  """The study's chosen volume as a float32 Volume with its RAS affine; InputError naming the
  series for anything that cannot be assembled exactly."""
  if study.series is None:
    raise InputError(f"{study.folder}: {study.problem}")
  series = study.series
  where = f"{study.folder}: {series.label()}"
  if series.problem:
    raise InputError(f"{where}: {series.problem}")
  if series.localizer:
    raise InputError(f"{where}: a localizer (scout), not a volume to segment")
  datasets = [_read(path, where) for path in series.files]
  if series.multiframe:
    headers = frame_headers(datasets[0], where)
    frames = _pixels(datasets[0], where)
    frames = frames[None] if frames.ndim == 2 else frames
    if len(frames) != len(headers):
      raise InputError(f"{where}: {len(frames)} frames of pixel data for {len(headers)} frames "
                       "described")
    data, affine = assemble(headers, lambda i: frames[i], where)
  else:
    data, affine = assemble(datasets, lambda i: _one_slice(datasets[i], where), where)
  volume = nifti_io.as_volume(data, affine, kind="image", where=where)
  return dataclasses.replace(volume, path=study.folder)


def _read(path: pathlib.Path, where: str, pixels: bool = True):
  """A file's dataset (with its pixel data unless not `pixels`), or one InputError line."""
  import pydicom
  try:
    return pydicom.dcmread(path, stop_before_pixels=not pixels)
  except Exception as e:
    raise InputError(f"{where}: {path.name}: unreadable DICOM file ({_one_line(e)})") from None


def seg_sources(study: Study) -> tuple[list, np.ndarray]:
  """The images a DICOM-SEG of read_volume's labels references (headers, in file order) and, for
  each slice of the volume, the index of its source: an image, or a frame of the one image."""
  where = f"{study.folder}: {study.series.label()}"
  headers = [_read(path, where, pixels=False) for path in study.series.files]
  frames = frame_headers(headers[0], where) if study.series.multiframe else headers
  order, _ = geometry(frames, where)
  return headers, order


def geometry(datasets: Sequence, where: str) -> tuple[np.ndarray, np.ndarray]:
  """(slice order, RAS affine) of single-frame images of one orientation; InputError for repeated
  positions, a missing slice, uneven spacing, a gantry tilt or differing image sizes."""
  if len(datasets) < 2:
    raise InputError(f"{where}: {len(datasets)} image, not a volume")
  first = datasets[0]
  for ds in datasets:
    for keyword, size in GEOMETRY:
      value = ds.get(keyword)
      try:
        valid = value is not None and len(np.asarray(value, float).reshape(-1)) == size
      except (TypeError, ValueError):
        valid = False
      if not valid:
        name = pathlib.Path(getattr(ds, "filename", "") or "").name or "a frame"
        raise InputError(f"{where}: {name}: {keyword} missing or malformed ({value!r})")
    for keyword in ("Rows", "Columns"):
      if ds.get(keyword) != first.get(keyword):
        raise InputError(f"{where}: images of different sizes ({keyword} "
                         f"{first.get(keyword)} and {ds.get(keyword)})")
    if not np.allclose(np.asarray(ds.PixelSpacing, float), np.asarray(first.PixelSpacing, float),
                       atol=1e-4):
      raise InputError(f"{where}: images with different pixel spacings")
  cosines = np.asarray(first.ImageOrientationPatient, float)
  row, column = cosines[:3], cosines[3:]
  normal = np.cross(row, column)
  positions = np.array([np.asarray(ds.ImagePositionPatient, float) for ds in datasets])
  order = np.argsort(positions @ normal, kind="stable")
  positions = positions[order]
  along = positions @ normal
  steps = np.diff(along)
  if np.any(steps < POSITION_ATOL_MM):
    count = int(np.sum(steps < POSITION_ATOL_MM))
    raise InputError(f"{where}: {count} repeated slice position(s): several volumes interleaved "
                     "in one series that no echo, time or acquisition number tells apart")
  step = float(np.median(steps))
  off_normal = positions - positions[0] - np.outer(along - along[0], normal)
  if np.max(np.linalg.norm(off_normal, axis=1)) > POSITION_ATOL_MM:
    tilt = np.degrees(np.arctan2(np.linalg.norm(off_normal[-1]), along[-1] - along[0]))
    raise InputError(f"{where}: slices not stacked along their normal (gantry tilt or shear of "
                     f"{tilt:.1f} degrees); resample it to an orthogonal grid first")
  uneven = np.abs(steps - step) > POSITION_ATOL_MM + 0.001 * step
  if uneven.any():
    gaps = np.round(steps[uneven] / step, 2)
    if np.all(np.abs(gaps - np.round(gaps)) < 0.05) and np.all(gaps >= 2):
      missing = int(np.sum(np.round(gaps) - 1))
      raise InputError(f"{where}: {missing} missing slice(s) (a gap of {steps[uneven].max():.2f} "
                       f"mm where slices are {step:.2f} mm apart)")
    raise InputError(f"{where}: uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm)")
  spacing = np.asarray(first.PixelSpacing, float)  # (between rows, between columns)
  lps = np.eye(4)
  lps[:3, 0] = row * spacing[1]  # the array's first axis runs along a row: column index
  lps[:3, 1] = column * spacing[0]
  lps[:3, 2] = normal * step
  lps[:3, 3] = positions[0]
  return order, LPS_TO_RAS @ lps


def assemble(headers: Sequence, pixels: Callable[[int], np.ndarray],
             where: str) -> tuple[np.ndarray, np.ndarray]:
  """(voxels indexed column, row, slice; RAS affine) of one volume's slices, given their headers
  and `pixels(i)`, the stored values of slice i; each slice's rescale applied."""
  order, affine = geometry(headers, where)
  slices = []
  for index in order:
    slope = _number(headers[index], "RescaleSlope", 1.0)
    intercept = _number(headers[index], "RescaleIntercept")
    slices.append(pixels(index).astype(np.float32) * slope + intercept)
  return np.stack(slices, axis=-1).transpose(1, 0, 2), affine


def _pixels(ds, where: str) -> np.ndarray:
  """The stored values of an image's pixel data; InputError when no decoder reads them."""
  try:
    return ds.pixel_array
  except Exception as e:  # no decoder for the transfer syntax, or truncated pixel data
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(syntax, "name", syntax) or "unknown transfer syntax"
    raise InputError(f"{where}: {pathlib.Path(ds.filename).name}: pixel data cannot be decoded "
                     f"({name}: {_one_line(e)})") from None


def _one_slice(ds, where: str) -> np.ndarray:
  pixels = _pixels(ds, where)
  if pixels.ndim != 2:
    raise InputError(f"{where}: {pathlib.Path(ds.filename).name}: pixel data of shape "
                     f"{pixels.shape}, expected one grey-level slice")
  return pixels


def _one_line(e: BaseException) -> str:
  return (" ".join(str(e).split()) or type(e).__name__)[:200]
