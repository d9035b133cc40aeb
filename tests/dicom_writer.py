"""Writes a volume (voxels and RAS affine) as a DICOM MR series with pydicom, one file per slice,
as a scanner exports it: the tests' stand-in for the FLAIR series no public data set offers."""
import pathlib
import tempfile
from typing import Callable, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (EnhancedMRImageStorage, ExplicitVRLittleEndian, MRImageStorage,
                         generate_uid)
from pydicom.valuerep import format_number_as_ds

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "MRN-0042", "PatientBirthDate": "19500101",
           "PatientSex": "F"}


def _ds(value: float) -> str:
  """A decimal string as precise as DICOM's 16 characters allow."""
  return format_number_as_ds(float(value))


def write_series(folder: pathlib.Path, data: np.ndarray, affine: np.ndarray, *,
                 description: str = "AX T2 FLAIR", number: int = 3, study: str | None = None,
                 series: str | None = None, order: Sequence[int] | None = None,
                 name: str = "IM{:04d}", inversion_ms: float | None = 2500.0,
                 edit: Callable[[int, Dataset], None] | None = None) -> list[pathlib.Path]:
  """Writes `data` (column, row, slice indices, integer valued) with RAS `affine` as one series
  under `folder`, slices written in `order` (default: as indexed) to files named `name`.format(i)
  (no extension); `edit(k, ds)` may change slice k's dataset before it is written."""
  folder.mkdir(parents=True, exist_ok=True)
  lps = LPS_FROM_RAS @ np.asarray(affine, float)
  spacing = np.linalg.norm(lps[:3, :3], axis=0)
  row, column = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
  study = study or generate_uid()
  series = series or generate_uid()
  frame = generate_uid()
  paths = []
  for i, k in enumerate(order if order is not None else range(data.shape[2])):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    for key, value in PATIENT.items():
      setattr(ds, key, value)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.Manufacturer = "MR", "uresnet_jax tests"
    ds.SeriesNumber, ds.InstanceNumber = number, int(k) + 1
    ds.SeriesDescription = ds.ProtocolName = description
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence = ["SE", "IR"] if inversion_ms else "SE"
    if inversion_ms:
      ds.InversionTime = _ds(inversion_ms)
    ds.EchoTime, ds.RepetitionTime = "90", "9000"
    ds.ImageOrientationPatient = [_ds(v) for v in (*row, *column)]
    ds.ImagePositionPatient = [_ds(v) for v in (lps @ [0, 0, k, 1])[:3]]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    ds.SliceThickness = _ds(np.linalg.norm(lps[:3, 2]))
    pixels = np.asarray(data[:, :, k]).T.astype(np.int16)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = pixels.tobytes()
    if edit is not None:
      edit(int(k), ds)
    path = folder / name.format(i)
    ds.save_as(path, enforce_file_format=True)
    paths.append(path)
  return paths


def phantom_volume(shape=(32, 32, 6), seed: int = 0) -> np.ndarray:
  """A small integer volume whose every voxel differs, so a flipped or shuffled slice shows."""
  return np.random.default_rng(seed).integers(0, 1000, shape).astype(np.int16)


def write_enhanced(path: pathlib.Path, data: np.ndarray, affine: np.ndarray,
                   order: Sequence[int], **kwargs) -> pathlib.Path:
  """Writes `data` as one Enhanced MR multi-frame file, frames in slice `order`: each frame's
  position per frame, orientation and pixel spacing shared, as scanners store them."""
  with tempfile.TemporaryDirectory() as tmp:
    slices = [pydicom.dcmread(p) for p in write_series(pathlib.Path(tmp), data, affine,
                                                        order=order, **kwargs)]
  ds = slices[0]
  ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
  shared = Dataset()
  shared.PlaneOrientationSequence = [Dataset()]
  shared.PlaneOrientationSequence[0].ImageOrientationPatient = ds.ImageOrientationPatient
  shared.PixelMeasuresSequence = [Dataset()]
  shared.PixelMeasuresSequence[0].PixelSpacing = ds.PixelSpacing
  shared.PixelMeasuresSequence[0].SliceThickness = ds.SliceThickness
  ds.SharedFunctionalGroupsSequence = [shared]
  frames = []
  for image in slices:
    frame = Dataset()
    frame.PlanePositionSequence = [Dataset()]
    frame.PlanePositionSequence[0].ImagePositionPatient = image.ImagePositionPatient
    frames.append(frame)
  ds.PerFrameFunctionalGroupsSequence = frames
  for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                  "SliceThickness"):
    delattr(ds, keyword)
  ds.NumberOfFrames = len(slices)
  ds.PixelData = b"".join(image.PixelData for image in slices)
  path.parent.mkdir(parents=True, exist_ok=True)
  ds.save_as(path, enforce_file_format=True)
  return path
