"""Runs SimpleITK, dicom2nifti, the dcm2niix wheel and this project's pydicom assembly on the same
synthetic DICOM series, good and bad, and prints what each makes of them (docs/predict.md, "The
converter, chosen by measurement").

The other converters are no dependency of the package; run it in a venv of its own:
  python3 -m venv /tmp/cmpvenv
  /tmp/cmpvenv/bin/pip install pydicom nibabel numpy dicom2nifti SimpleITK dcm2niix
  PYTHONPATH=.:tests /tmp/cmpvenv/bin/python scripts/compare_dicom_converters.py /tmp/cases
"""
import contextlib
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import warnings

import nibabel as nib
import numpy as np
import pydicom
from pydicom.uid import JPEGLosslessSV1, generate_uid

from dicom_writer import phantom_volume, write_enhanced, write_series
from uresnet_jax.data import dicom_series

SHAPE = (32, 32, 8)


def _sagittal() -> np.ndarray:
  affine = np.zeros((4, 4))
  affine[:3, 0], affine[:3, 1], affine[:3, 2] = (0, 0.9375, 0), (0, 0, 0.9375), (4.0, 0, 0)
  affine[:, 3] = (-8, -15, -15, 1)
  return affine


def write_cases(root: pathlib.Path) -> nib.Nifti1Image:
  """The twelve cases under `root`; returns the volume the good one was written from."""
  shutil.rmtree(root, ignore_errors=True)
  data = phantom_volume(SHAPE)
  affine = np.diag([-0.9375, -0.9375, 4.0, 1.0])
  affine[:3, 3] = (15, 15, -14)

  def case(name, **kwargs):
    return write_series(root / name, data, affine, order=kwargs.pop("order", range(7, -1, -1)),
                        **kwargs)

  def shifted(axis, by, first=0):
    def edit(k, ds):
      if k >= first:
        ds.ImagePositionPatient[axis] = f"{float(ds.ImagePositionPatient[axis]) + by(k):.4f}"
    return edit

  def compressed(k, ds):
    if k == 3:
      ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
      ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8not really jpeg\xff\xd9"])

  case("good")
  write_enhanced(root / "enhanced_multi_frame" / "EMR", data, affine, order=range(8))
  write_enhanced(root / "enhanced_frames_shuffled" / "EMR", data, affine,
                 order=[3, 0, 7, 1, 6, 2, 5, 4])
  case("missing_slice", order=[7, 6, 5, 3, 2, 1, 0])
  case("uneven_spacing", edit=shifted(2, lambda k: 1.5, first=4))
  case("gantry_tilt", edit=shifted(1, lambda k: 0.7 * k))
  case("undecodable_pixels", edit=compressed)
  paths = case("corrupt_file")
  paths[3].write_bytes(paths[3].read_bytes()[:-700])
  for name, tag in (("interleaved", "AcquisitionNumber"), ("multi_echo", "EchoNumbers")):
    uid, study = generate_uid(), generate_uid()
    for n in (1, 2):
      write_series(root / name, phantom_volume(SHAPE, seed=n), affine, series=uid, study=study,
                   name=f"V{n}_{{:d}}", edit=lambda k, ds, n=n, tag=tag: setattr(ds, tag, n))
  uid, study = generate_uid(), generate_uid()
  case("localizer", series=uid, study=study)
  write_series(root / "localizer", phantom_volume((32, 32, 3)), _sagittal(), series=uid,
               study=study, name="LOC{:d}",
               edit=lambda k, ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "LOCALIZER"]))
  uid, study = generate_uid(), generate_uid()
  case("mixed_orientations", series=uid, study=study)
  write_series(root / "mixed_orientations", phantom_volume(SHAPE), _sagittal(), series=uid,
               study=study, name="SAG{:d}")
  return nib.Nifti1Image(data.astype(np.float32), affine)


def describe(images: list[nib.Nifti1Image], expected: nib.Nifti1Image) -> str:
  """Shape and slice spacing of each volume written, and whether it is the expected one."""
  want = nib.as_closest_canonical(expected)
  out = []
  for img in images:
    note = ""
    if img.ndim == 3:
      got = nib.as_closest_canonical(img)
      if got.shape == want.shape:
        same = np.array_equal(np.asarray(got.dataobj), np.asarray(want.dataobj))
        note = (f", voxels {'=' if same else '!='} written, affine off by "
                f"{np.abs(got.affine - want.affine).max():.3g} mm")
    zooms = nib.affines.voxel_sizes(img.affine)
    out.append(f"{img.shape} at {zooms[2]:.3g} mm{note}")
  return "; ".join(out) or "nothing written"


def _written(folder: pathlib.Path) -> list[nib.Nifti1Image]:
  return [nib.load(f) for f in sorted(folder.glob("*.nii*"))]


def dcm2niix(case: pathlib.Path) -> list[nib.Nifti1Image]:
  out = pathlib.Path(tempfile.mkdtemp())
  done = subprocess.run([str(pathlib.Path(sys.executable).parent / "dcm2niix"), "-z", "y", "-b",
                         "n", "-o", str(out), "-f", "%s_%e_%p", str(case)],
                        capture_output=True, text=True)
  if done.returncode:
    raise RuntimeError([l for l in done.stdout.splitlines() if "nable" in l or "not" in l][-1:])
  return _written(out)


def dicom2nifti(case: pathlib.Path) -> list[nib.Nifti1Image]:
  import dicom2nifti as converter
  return [converter.dicom_series_to_nifti(str(case), tempfile.mktemp(suffix=".nii.gz"),
                                          reorient_nifti=True)["NII"]]


def simpleitk(case: pathlib.Path) -> list[nib.Nifti1Image]:
  import SimpleITK as sitk
  out = pathlib.Path(tempfile.mkdtemp())
  for i, uid in enumerate(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(case))):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(case), uid))
    sitk.WriteImage(reader.Execute(), str(out / f"{i}.nii.gz"))
  return _written(out)


def pydicom_assembly(case: pathlib.Path) -> list[nib.Nifti1Image]:
  (study,) = dicom_series.find_studies(case)
  volume = dicom_series.read_volume(study)
  return [nib.Nifti1Image(volume.data, volume.affine)]


def main() -> None:
  root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
  expected = write_cases(root)
  logging.disable(logging.CRITICAL)
  warnings.simplefilter("ignore")
  for converter in (simpleitk, dicom2nifti, dcm2niix, pydicom_assembly):
    print(f"== {converter.__name__}")
    for case in sorted(root.iterdir()):
      try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
          result = describe(converter(case), expected)
      except Exception as e:  # each converter's own refusal, InputError for the assembly
        result = f"refused: {type(e).__name__}: {' '.join(str(e).split())[:150]}"
      print(f"{case.name}: {result}", flush=True)


if __name__ == "__main__":
  main()
