"""Runs SimpleITK, itk-elastix, picsl-greedy and antspyx on the same rigid registration problem and
prints each one's time and error (docs/measured.md, "Change between visits": the library chosen by
measurement).

The problem: a phantom FLAIR (the baseline) and the same head moved by a known rigid transform,
resampled, rescaled in contrast and given fresh Rician noise (the follow-up). Error: the distance
between where the recovered and the planted transform take each brain voxel, mean and max, in mm.

The candidates are no dependency of the package; run it in a venv of its own:
  python3 -m venv /tmp/regbench
  /tmp/regbench/bin/pip install itk-elastix picsl-greedy SimpleITK antspyx nibabel numpy scipy
  .venv/bin/python -m uresnet_jax.phantom --out=/tmp/ph1mm --subjects=2 --seed=1 \
      --config.protocols='((1.0,1.0,1.0),)' --config.protocol_weights='(1.0,)'
  /tmp/regbench/bin/python scripts/compare_registration.py /tmp/ph1mm/sub-000
"""
import os
import pathlib
import sys
import tempfile
import time

THREADS = "2"  # the project's machines: 2 cores
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", THREADS)
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

ANGLES_DEG = (3.0, -2.0, 4.0)  # planted rotation about x, y, z (a patient repositioned)
SHIFT_MM = (4.0, -3.0, 2.5)  # planted translation
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # ITK's physical frame from nibabel's RAS, and back


def rotation(angles_deg) -> np.ndarray:
  ax, ay, az = np.deg2rad(angles_deg)
  rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
  ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
  rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
  return rz @ ry @ rx


def make_pair(folder: pathlib.Path, out: pathlib.Path):
  """Writes baseline.nii.gz, followup.nii.gz and the masks; returns the planted follow-up ->
  baseline 4x4 (scanner RAS mm) and the baseline's brain points (mm)."""
  flair = nib.load(folder / "flair.nii.gz")
  mask = np.asarray(nib.load(folder / "brain_mask.nii.gz").dataobj) > 0
  data = np.asarray(flair.dataobj, np.float32)
  affine = flair.affine
  brain = np.argwhere(mask)
  centre = affine[:3, :3] @ brain.mean(0) + affine[:3, 3]
  planted = np.eye(4)  # rotation about the brain's centre, then the shift
  planted[:3, :3] = rotation(ANGLES_DEG)
  planted[:3, 3] = centre - planted[:3, :3] @ centre + SHIFT_MM
  # Follow-up voxel v (same grid) shows the anatomy at baseline voxel inv(A) @ planted @ A @ v.
  to_base = np.linalg.inv(affine) @ planted @ affine
  moved = ndimage.affine_transform(data, to_base[:3, :3], to_base[:3, 3], order=3)
  moved_mask = ndimage.affine_transform(mask.astype(np.float32), to_base[:3, :3], to_base[:3, 3],
                                        order=1) > 0.5
  rng = np.random.default_rng(0)
  wm = float(np.median(data[mask]))
  sigma = 0.03 * wm
  moved = np.maximum(moved, 0) * 0.9  # another scanner's contrast
  moved = np.sqrt((moved + rng.normal(0, sigma, moved.shape))**2
                  + rng.normal(0, sigma, moved.shape)**2) * moved_mask
  for name, array in (("baseline", data), ("followup", moved.astype(np.float32)),
                      ("baseline_mask", mask.astype(np.uint8)),
                      ("followup_mask", moved_mask.astype(np.uint8))):
    nib.save(nib.Nifti1Image(array, affine), out / f"{name}.nii.gz")
  points = nib.affines.apply_affine(affine, brain)
  return planted, points


def errors_mm(recovered: np.ndarray, planted: np.ndarray, base_points: np.ndarray):
  """Mean and max distance, over brain voxels, between the recovered and planted mapping."""
  follow_points = nib.affines.apply_affine(np.linalg.inv(planted), base_points)
  d = np.linalg.norm(nib.affines.apply_affine(recovered, follow_points) - base_points, axis=1)
  return float(d.mean()), float(d.max())


def euler_to_ras(sitk, center, angles, translation) -> np.ndarray:
  """An ITK Euler3DTransform (fixed -> moving, LPS) as the follow-up -> baseline RAS 4x4."""
  t = sitk.Euler3DTransform(tuple(center), *angles, tuple(translation))
  fixed_to_moving = np.eye(4)
  fixed_to_moving[:3, :3] = np.array(t.GetMatrix()).reshape(3, 3)
  fixed_to_moving[:3, 3] = np.array(t.GetTranslation()) + np.array(t.GetCenter()) \
      - fixed_to_moving[:3, :3] @ np.array(t.GetCenter())
  return LPS @ np.linalg.inv(fixed_to_moving) @ LPS


def run_simpleitk(out, shrink, sampling, masks):
  import SimpleITK as sitk
  sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(THREADS))
  fixed = sitk.ReadImage(str(out / "baseline.nii.gz"), sitk.sitkFloat32)
  moving = sitk.ReadImage(str(out / "followup.nii.gz"), sitk.sitkFloat32)
  start = time.perf_counter()
  init = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                           sitk.CenteredTransformInitializerFilter.MOMENTS)
  reg = sitk.ImageRegistrationMethod()
  reg.SetMetricAsMattesMutualInformation(32)
  reg.SetMetricSamplingStrategy(reg.RANDOM)
  reg.SetMetricSamplingPercentage(sampling, 1)
  if masks:
    reg.SetMetricFixedMask(sitk.ReadImage(str(out / "baseline_mask.nii.gz")))
    reg.SetMetricMovingMask(sitk.ReadImage(str(out / "followup_mask.nii.gz")))
  reg.SetInterpolator(sitk.sitkLinear)
  reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200, relaxationFactor=0.5)
  reg.SetOptimizerScalesFromPhysicalShift()
  reg.SetShrinkFactorsPerLevel(list(shrink))
  reg.SetSmoothingSigmasPerLevel([s / 2 for s in shrink])
  reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
  reg.SetInitialTransform(init, inPlace=True)
  reg.Execute(fixed, moving)
  seconds = time.perf_counter() - start
  e = sitk.Euler3DTransform(init)
  return euler_to_ras(sitk, e.GetCenter(), (e.GetAngleX(), e.GetAngleY(), e.GetAngleZ()),
                      e.GetTranslation()), seconds


def run_elastix(out, resolutions, iterations, masks):
  import itk
  import SimpleITK as sitk
  fixed = itk.imread(str(out / "baseline.nii.gz"), itk.F)
  moving = itk.imread(str(out / "followup.nii.gz"), itk.F)
  params = itk.ParameterObject.New()
  rigid = params.GetDefaultParameterMap("rigid", resolutions)
  rigid["MaximumNumberOfIterations"] = [str(iterations)]
  rigid["AutomaticTransformInitialization"] = ["true"]
  rigid["AutomaticTransformInitializationMethod"] = ["CenterOfGravity"]
  params.AddParameterMap(rigid)
  kwargs = {}
  if masks:
    kwargs = dict(fixed_mask=itk.imread(str(out / "baseline_mask.nii.gz"), itk.UC),
                  moving_mask=itk.imread(str(out / "followup_mask.nii.gz"), itk.UC))
  start = time.perf_counter()
  _, result = itk.elastix_registration_method(fixed, moving, parameter_object=params,
                                              log_to_console=False,
                                              number_of_threads=int(THREADS), **kwargs)
  seconds = time.perf_counter() - start
  p = [float(x) for x in result.GetParameter(0, "TransformParameters")]
  c = [float(x) for x in result.GetParameter(0, "CenterOfRotationPoint")]
  return euler_to_ras(sitk, c, p[:3], p[3:]), seconds


def run_greedy(out, iterations, metric):
  import SimpleITK as sitk  # greedy's own file reader finds no IO factory once itk is imported
  from picsl_greedy import Greedy3D
  fixed = sitk.ReadImage(str(out / "baseline.nii.gz"), sitk.sitkFloat32)
  moving = sitk.ReadImage(str(out / "followup.nii.gz"), sitk.sitkFloat32)
  g = Greedy3D()
  start = time.perf_counter()
  g.execute(f"-d 3 -a -dof 6 -ia-image-centers -threads {THREADS} -i fixed moving "
            f"-m {metric} -n {iterations} -o rigid", fixed=fixed, moving=moving, rigid=None)
  seconds = time.perf_counter() - start
  fixed_to_moving = np.asarray(g["rigid"])  # RAS, fixed -> moving
  return np.linalg.inv(fixed_to_moving), seconds


def run_ants(out, kind):
  import ants
  fixed = ants.image_read(str(out / "baseline.nii.gz"))
  moving = ants.image_read(str(out / "followup.nii.gz"))
  start = time.perf_counter()
  reg = ants.registration(fixed, moving, type_of_transform=kind)
  seconds = time.perf_counter() - start
  t = ants.read_transform(reg["fwdtransforms"][0])
  p, c = np.asarray(t.parameters), np.asarray(t.fixed_parameters)
  fixed_to_moving = np.eye(4)
  fixed_to_moving[:3, :3] = p[:9].reshape(3, 3)
  fixed_to_moving[:3, 3] = p[9:] + c - p[:9].reshape(3, 3) @ c
  return LPS @ np.linalg.inv(fixed_to_moving) @ LPS, seconds


CANDIDATES = {
    "SimpleITK MI, shrink 4-2-1, 10 % samples": lambda o: run_simpleitk(o, (4, 2, 1), 0.1, False),
    "SimpleITK MI, shrink 4-2, 5 % samples": lambda o: run_simpleitk(o, (4, 2), 0.05, False),
    "SimpleITK MI, shrink 4-2-1, 10 %, masks": lambda o: run_simpleitk(o, (4, 2, 1), 0.1, True),
    "SimpleITK MI, shrink 4-2, 5 %, masks": lambda o: run_simpleitk(o, (4, 2), 0.05, True),
    "itk-elastix default rigid, 4 levels x 250": lambda o: run_elastix(o, 4, 250, False),
    "itk-elastix rigid, 3 levels x 100, masks": lambda o: run_elastix(o, 3, 100, True),
    "greedy NCC 2x2x2, 100x50x10": lambda o: run_greedy(o, "100x50x10", "NCC 2x2x2"),
    "greedy NMI, 100x50x0": lambda o: run_greedy(o, "100x50x0", "NMI"),
    "antspyx QuickRigid": lambda o: run_ants(o, "QuickRigid"),
    "antspyx Rigid": lambda o: run_ants(o, "Rigid"),
}


def main(folder: str, only: str = "") -> None:
  """`only`: run the candidates whose name contains it (all by default)."""
  with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp)
    planted, points = make_pair(pathlib.Path(folder), out)
    shape = nib.load(out / "baseline.nii.gz").shape
    print(f"{folder}: {shape} at 1 mm, planted rotation {ANGLES_DEG} deg, shift {SHIFT_MM} mm, "
          f"{THREADS} threads")
    print(f"| {'library and settings':44s} | seconds | mean error mm | max error mm |")
    print(f"|{'-' * 46}|---------|---------------|--------------|")
    for name, run in CANDIDATES.items():
      if only not in name:
        continue
      try:
        recovered, seconds = run(out)
        mean, worst = errors_mm(recovered, planted, points)
        print(f"| {name:44s} | {seconds:7.1f} | {mean:13.3f} | {worst:12.3f} |", flush=True)
      except Exception as e:  # one candidate failing must not hide the others' rows
        print(f"| {name:44s} | failed: {type(e).__name__}: {e} |", flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
