"""The built-in phantom cohort: FLAIR-like WMH + stroke subjects made from the MNI152 anatomy.

Each subject is nilearn's MNI152 1 mm anatomy, scaled, rotated and smoothly deformed, with
enlarged ventricles, periventricular and deep WMH whose volume follows a known risk-factor model,
strokes in about a third of subjects, a bias field and Rician noise, acquired on a clinical 2D
protocol. The anatomy is rendered once per subject on a "fine" grid aligned with the protocol's
slices (in-plane every k-th native voxel, ~1 mm; a few sub-slices per slice), so each template
channel is sampled once, directly, and thick-slice partial volume is a mean over sub-slices.
Lesion intensities are calibrated per subject to the realism table of DESIGN.md §4.
Knobs and their ranges: uresnet_jax/phantom_config.py.

Run: python -m uresnet_jax.phantom --out=data/phantom --subjects=40 --seed=0
"""
import concurrent.futures
import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import pathlib
import shutil
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags
import nibabel as nib
import numpy as np
from scipy import ndimage
import threadpoolctl  # installed with nilearn (via scikit-learn)

from uresnet_jax import atomic
from uresnet_jax import nifti_io
from uresnet_jax import phantom_config
from uresnet_jax.errors import InputError, exit_on_input_error, parse_flags

MANIFEST = "subjects.csv"
GENERATIVE_MODEL = "generative_model.json"
IMAGE_COLUMNS = ("flair", "labels", "t1", "wm", "brain_mask")
CLINICAL_COLUMNS = ("age", "sex", "hypertension", "diabetes", "smoking", "sbp", "fazekas_pv",
                    "fazekas_deep", "mmse", "protocol", "icv_ml", "wmh_ml", "stroke_ml",
                    "stroke_type")
_DONE = "clinical.json"  # written last inside a subject folder: the folder is complete
_INTENSITY_SCALE = 1000.0  # stored FLAIR/T1 = relative intensity x this, as int16
_VENTRICLE_SIGMA_MM = 5.0  # width of the ventricular enlargement field
_FAR_MM = 26.0  # ventricle distance beyond which nothing depends on it (> 3 x the sigma above)


# ----------------------------------------------------------------------------- template anatomy


@dataclasses.dataclass(frozen=True)
class _Anatomy:
  """MNI152 channels on a crop of the 1 mm template grid (voxel = MNI mm - origin)."""
  gm: np.ndarray
  wm: np.ndarray
  mask: np.ndarray
  vdist: np.ndarray  # signed distance to the lateral ventricles (mm), negative inside
  near_lo: np.ndarray  # voxel box outside which vdist is _FAR_MM
  near_hi: np.ndarray
  push: np.ndarray  # (3, ...) field moving samples towards the ventricles, max norm 1
  origin: np.ndarray  # MNI mm of crop voxel (0, 0, 0)
  centre: np.ndarray  # MNI mm of the brain's centre of mass
  points: np.ndarray  # (n, 3) MNI mm of brain voxels (every 3rd), for extents


def _bbox(mask: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
  """Start and stop indices of a mask's bounding box grown by margin voxels (within the array)."""
  lo, hi = [], []
  for axis in range(3):
    hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    lo.append(max(hit[0] - margin, 0))
    hi.append(min(hit[-1] + margin + 1, mask.shape[axis]))
  return np.array(lo), np.array(hi)


@functools.lru_cache(maxsize=1)
def _anatomy() -> _Anatomy:
  """Loads the bundled MNI152 anatomy once per process and derives the ventricles from it."""
  from nilearn import datasets  # slow import (~3 s): only when generating

  images = [datasets.load_mni152_template(resolution=1),
            datasets.load_mni152_gm_template(resolution=1),
            datasets.load_mni152_wm_template(resolution=1),
            datasets.load_mni152_brain_mask(resolution=1)]
  t1, gm, wm, mask = (np.asarray(im.get_fdata(), np.float32) for im in images)
  affine = images[0].affine
  if not np.allclose(affine[:3, :3], np.eye(3)):
    raise InputError(f"MNI152 template: expected a 1 mm RAS grid, got affine {affine.tolist()}")
  inside = mask > 0.5
  lo, hi = _bbox(inside, 6)
  crop = tuple(slice(a, b) for a, b in zip(lo, hi))
  t1, gm, wm, inside = t1[crop], gm[crop], wm[crop], inside[crop]
  origin = affine[:3, 3] + lo

  # Lateral ventricles: CSF-dark T1 voxels > 8 mm deep, the two components at the bodies.
  depth = ndimage.distance_transform_edt(inside[::2, ::2, ::2], sampling=2.0) > 8
  for axis in range(3):
    depth = np.repeat(depth, 2, axis).take(range(inside.shape[axis]), axis)
  dark, _ = ndimage.label((t1 < 0.45) & depth & inside)
  seeds = [np.round(np.array([x, -10.0, 22.0]) - origin).astype(int) for x in (-10.0, 10.0)]
  ids = {int(dark[tuple(s)]) for s in seeds} - {0}
  if len(ids) != 2:
    raise InputError("MNI152 template: could not find the lateral ventricles")
  ventricles = np.isin(dark, sorted(ids))

  # Tissue fractions: GM + WM at most the mask, none inside the ventricles; CSF is the rest.
  fmask = inside.astype(np.float32)
  scale = fmask * (1.0 - ventricles) / np.maximum(gm + wm, 1.0)
  gm, wm = gm * scale, wm * scale

  # Signed ventricle distance and the enlargement field, computed around the ventricles only.
  vlo, vhi = _bbox(ventricles, int(_FAR_MM))
  vbox = tuple(slice(a, b) for a, b in zip(vlo, vhi))
  v = ventricles[vbox]
  vdist = np.full(inside.shape, _FAR_MM, np.float32)
  outside = np.minimum(ndimage.distance_transform_edt(~v), _FAR_MM)
  vdist[vbox] = outside - ndimage.distance_transform_edt(v)
  push = np.zeros((3,) + inside.shape, np.float32)
  smooth = ndimage.gaussian_filter(v.astype(np.float32), _VENTRICLE_SIGMA_MM)
  push[(slice(None),) + vbox] = np.gradient(smooth)
  push /= np.sqrt((push**2).sum(0)).max()

  return _Anatomy(gm=gm, wm=wm, mask=fmask, vdist=vdist, near_lo=vlo.astype(float),
                  near_hi=(vhi - 1).astype(float), push=push, origin=origin,
                  centre=np.array(ndimage.center_of_mass(inside)) + origin,
                  points=(np.argwhere(inside[::3, ::3, ::3]) * 3 + origin).astype(np.float64))


# ----------------------------------------------------------------------------- smooth fields


@dataclasses.dataclass(frozen=True)
class _Grid:
  """A regular grid in slice-frame mm: axis a samples start[a] + step[a] * arange(shape[a])."""
  shape: tuple[int, int, int]
  start: np.ndarray
  step: np.ndarray

  def axis(self, a: int) -> np.ndarray:
    return self.start[a] + self.step[a] * np.arange(self.shape[a])


def _bspline_weights(n: int, start: float, step: float, ctrl_start: float, ctrl_step: float,
                     n_ctrl: int) -> np.ndarray:
  """(n, n_ctrl) cubic B-spline weights of control points at the sample positions."""
  t = (start + step * np.arange(n) - ctrl_start) / ctrl_step
  d = np.abs(t[:, None] - np.arange(n_ctrl)[None, :])
  w = np.where(d < 1, 2.0 / 3.0 - d**2 + d**3 / 2, np.where(d < 2, (2 - d)**3 / 6, 0.0))
  return w.astype(np.float32)


def _control(grid: _Grid, spacing: float) -> tuple[tuple[int, ...], list[np.ndarray], np.ndarray]:
  """A control lattice covering a grid: shape, per-axis weights, (3, ...) positions (mm)."""
  shape, weights, axes = [], [], []
  for a in range(3):
    lo = grid.start[a] - 2 * spacing
    n_ctrl = int(math.ceil(grid.step[a] * (grid.shape[a] - 1) / spacing)) + 5
    weights.append(_bspline_weights(grid.shape[a], grid.start[a], grid.step[a], lo, spacing,
                                    n_ctrl))
    axes.append(lo + spacing * np.arange(n_ctrl))
    shape.append(n_ctrl)
  return tuple(shape), weights, np.stack(np.meshgrid(*axes, indexing="ij"))


def _evaluate_bspline(ctrl: np.ndarray, weights: Sequence[np.ndarray]) -> np.ndarray:
  """A (cx, cy, cz) control array evaluated on the grid: three GEMMs, the largest last."""
  wx, wy, wz = weights
  cx, cy, cz = ctrl.shape
  nx, ny = wx.shape[0], wy.shape[0]
  a = (wx @ ctrl.reshape(cx, cy * cz)).reshape(nx, cy, cz).transpose(1, 0, 2).reshape(cy, -1)
  a = (wy @ a).reshape(ny, nx, cz).transpose(1, 0, 2).reshape(nx * ny, cz)
  return (a @ wz.T).reshape(nx, ny, wz.shape[0])


def _smooth_noise(rng: np.random.Generator, grid: _Grid, spacing: float,
                  count: int = 1) -> list[np.ndarray]:
  """`count` smooth random fields with zero mean and unit std (B-splines, knots `spacing` mm)."""
  shape, weights, _ = _control(grid, spacing)
  fields = []
  for _ in range(count):
    f = _evaluate_bspline(rng.standard_normal(shape).astype(np.float32), weights)
    f -= f.mean()
    f /= max(float(f.std()), 1e-6)
    fields.append(f)
  return fields


# ----------------------------------------------------------------------------- clinical model


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
  return float(rng.uniform(bounds[0], bounds[1]))


def _sigmoid(x: float) -> float:
  return 1.0 / (1.0 + math.exp(-x))


def sample_risk_factors(rng: np.random.Generator,
                        config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Age, sex, hypertension, systolic BP, diabetes and smoking of one subject."""
  age = _uniform(rng, config.age_years)
  male = int(rng.uniform() < config.male_probability)
  decades = (age - 70) / 10
  htn = int(rng.uniform() < _sigmoid(config.hypertension_logit
                                     + config.hypertension_logit_per_decade * decades))
  mean, sd = config.sbp_hypertensive if htn else config.sbp_normotensive
  sbp = int(round(rng.normal(mean, sd)))
  diabetes = int(rng.uniform() < config.diabetes_probability)
  smoking = int(rng.uniform() < config.smoking_probability)
  return dict(age=round(age, 1), male=male, hypertension=htn, sbp=sbp, diabetes=diabetes,
              smoking=smoking)


def wmh_covariates(risk: dict[str, Any]) -> dict[str, float]:
  """Covariates of the WMH model, keyed like config.wmh_model's coefficients."""
  return dict(age_per_decade=(risk["age"] - 70) / 10, hypertension=risk["hypertension"],
              sbp_per_10mmhg=(risk["sbp"] - 140) / 10, diabetes=risk["diabetes"],
              smoking=risk["smoking"], male=risk["male"])


def wmh_linear_predictor(risk: dict[str, Any], model: ml_collections.ConfigDict) -> float:
  """Expected log(WMH % of ICV) given the risk factors."""
  return model.intercept + sum(getattr(model, k) * v for k, v in wmh_covariates(risk).items())


def sample_wmh_burden(rng: np.random.Generator, risk: dict[str, Any],
                      model: ml_collections.ConfigDict) -> tuple[float, float, float]:
  """(linear predictor, residual, target WMH % of ICV) of the log-linear WMH model."""
  predictor = wmh_linear_predictor(risk, model)
  residual = float(rng.normal(0.0, model.noise_sd))
  return predictor, residual, float(np.clip(math.exp(predictor + residual), *model.clip_pct))


def fazekas(volume_ml: float, thresholds: Sequence[float]) -> int:
  """A rater-like score: how many of the volume thresholds the lesion volume exceeds."""
  return int(sum(volume_ml > t for t in thresholds))


# ----------------------------------------------------------------------------- geometry


def _rotation(angles_deg: Sequence[float]) -> np.ndarray:
  """Rotation matrix from angles about x, y, z (degrees)."""
  ax, ay, az = np.deg2rad(angles_deg)
  rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
  ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
  rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
  return rz @ ry @ rx


def _protocol(rng: np.random.Generator,
              config: ml_collections.ConfigDict) -> tuple[float, float, float]:
  if rng.uniform() < config.random_protocol_probability:
    inplane = _uniform(rng, config.random_inplane_mm)
    return (inplane, inplane, _uniform(rng, config.random_thickness_mm))
  weights = np.asarray(config.protocol_weights, float)
  choice = rng.choice(len(weights), p=weights / weights.sum())
  return tuple(float(z) for z in config.protocols[choice])


def protocol_name(zooms: Sequence[float]) -> str:
  return "x".join(f"{z:g}" for z in zooms)


@dataclasses.dataclass(frozen=True)
class _Geometry:
  """Protocol, native grid, head pose and the fine grid the anatomy is rendered on."""
  zooms: tuple[float, float, float]
  k: int  # native in-plane voxels per fine voxel
  sub: int  # fine sub-slices per native slice
  matrix: tuple[int, int, int]  # native shape
  native_start: np.ndarray  # slice-frame mm of native voxel (0, 0, 0)
  crop: tuple[int, int]  # native in-plane index of fine voxel (0, 0)
  fine: _Grid
  to_slice: np.ndarray  # slice frame = to_slice @ MNI + offset (before the warp)
  offset: np.ndarray


def _geometry(rng: np.random.Generator, male: int, anatomy: _Anatomy,
              config: ml_collections.ConfigDict) -> _Geometry:
  zooms = _protocol(rng, config)
  scale = _uniform(rng, config.head_scale) * (config.male_head_scale if male else 1.0)
  rotation = _rotation([_uniform(rng, config.rotation_deg) for _ in range(3)])
  shift = np.array([_uniform(rng, config.translation_mm) for _ in range(3)])
  to_slice = scale * rotation.T
  offset = shift - to_slice @ anatomy.centre
  extent = anatomy.points @ to_slice.T + offset
  margin = np.array([10.0, 10.0, 5.0])  # room for the warp
  low, high = extent.min(0) - margin, extent.max(0) + margin
  k = max(1, int(round(config.fine_inplane_mm / zooms[0])))
  sub = max(1, int(math.ceil(zooms[2] / config.fine_slice_mm - 1e-6)))
  n_slices = int(math.ceil((high[2] - low[2]) / zooms[2]))
  matrix = tuple(2 * int(math.ceil(config.fov_mm / (2 * z))) for z in zooms[:2]) + (n_slices,)
  native_start = np.array([-(matrix[0] - 1) / 2 * zooms[0], -(matrix[1] - 1) / 2 * zooms[1],
                           (low[2] + high[2]) / 2 - (n_slices - 1) / 2 * zooms[2]])
  # Fine grid: every k-th native column and row over the brain, `sub` sub-slices per slice.
  spacing = np.array(zooms[:2])
  lo = np.maximum(np.floor((low[:2] - native_start[:2]) / spacing / k).astype(int) * k, 0)
  hi = np.minimum(np.ceil((high[:2] - native_start[:2]) / spacing).astype(int),
                  np.array(matrix[:2]) - 1)
  step = np.array([k * zooms[0], k * zooms[1], zooms[2] / sub])
  start = np.array([native_start[0] + lo[0] * zooms[0], native_start[1] + lo[1] * zooms[1],
                    native_start[2] - zooms[2] / 2 + step[2] / 2])
  fine = _Grid(((hi[0] - lo[0]) // k + 1, (hi[1] - lo[1]) // k + 1, n_slices * sub), start, step)
  return _Geometry(zooms=zooms, k=k, sub=sub, matrix=matrix, native_start=native_start,
                   crop=(int(lo[0]), int(lo[1])), fine=fine, to_slice=to_slice, offset=offset)


class _Canvas:
  """A subject's anatomy on the fine grid: MNI coordinates of every voxel and tissue channels."""

  def __init__(self, rng: np.random.Generator, geo: _Geometry, enlarge_mm: float,
               anatomy: _Anatomy, config: ml_collections.ConfigDict):
    grid = self.grid = geo.fine
    self.geo = geo
    # Backward map fine voxel -> MNI: inverse pose, smooth random warp, ventricular enlargement.
    from_slice = np.linalg.inv(geo.to_slice)
    _, weights, ctrl = _control(grid, 4.0)
    ctrl_mni = np.einsum("ij,j...->i...", from_slice, ctrl - geo.offset[:, None, None, None])
    ctrl_voxel = ctrl_mni - anatomy.origin[:, None, None, None]
    push = [ndimage.map_coordinates(anatomy.push[a], ctrl_voxel, order=1) for a in range(3)]
    deform = _uniform(rng, config.deformation_mm)
    warp = _smooth_noise(rng, grid, config.deformation_smoothness_mm, 3)
    axes = [grid.axis(a) - geo.offset[a] for a in range(3)]
    mni = np.empty((3,) + grid.shape, np.float64)  # float64: map_coordinates' fast path
    for i in range(3):
      mni[i] = (from_slice[i, 0] * axes[0])[:, None, None]
      mni[i] += (from_slice[i, 1] * axes[1])[None, :, None] + (from_slice[i, 2] * axes[2])
      mni[i] += deform * warp[i] + enlarge_mm * _evaluate_bspline(push[i].astype(np.float32),
                                                                  weights)
    self.mni = mni
    coords = mni - anatomy.origin[:, None, None, None]
    self.mask = ndimage.map_coordinates(anatomy.mask, coords, order=1, output=np.float32)
    # Other channels only inside the brain (about half the grid).
    inside = np.flatnonzero(self.mask > 0)
    coords = coords.reshape(3, -1)[:, inside]
    self.gm, self.wm = np.zeros_like(self.mask), np.zeros_like(self.mask)
    for channel, source in ((self.gm, anatomy.gm), (self.wm, anatomy.wm)):
      channel.reshape(-1)[inside] = ndimage.map_coordinates(source, coords, order=1,
                                                            output=np.float32)
    # The ventricle distance only near the ventricles.
    near = np.all((coords >= anatomy.near_lo[:, None]) & (coords <= anatomy.near_hi[:, None]), 0)
    self.vdist = np.full_like(self.mask, _FAR_MM)
    self.vdist.reshape(-1)[inside[near]] = ndimage.map_coordinates(
        anatomy.vdist, coords[:, near], order=1, output=np.float32, cval=_FAR_MM)
    self.voxel_mm3 = float(np.prod(grid.step))

  def mni_box(self, mni_point: np.ndarray, radius_mm: float) -> tuple[slice, ...] | None:
    """Fine-grid box holding an MNI ball (padded for the smooth warp, which it ignores)."""
    centre = (self.geo.to_slice @ mni_point + self.geo.offset - self.grid.start) / self.grid.step
    scale = np.abs(self.geo.to_slice).sum(1).max()
    return _box(centre, (radius_mm * scale + 8.0) / self.grid.step, self.grid.shape)


# ----------------------------------------------------------------------------- lesions


def _box(centre: np.ndarray, half: np.ndarray, shape: Sequence[int]) -> tuple[slice, ...] | None:
  lo = np.maximum(np.floor(centre - half).astype(int), 0)
  hi = np.minimum(np.ceil(centre + half).astype(int) + 1, shape)
  if np.any(hi <= lo):
    return None
  return tuple(slice(a, b) for a, b in zip(lo, hi))


def _ramp(margin_mm: np.ndarray, edge_mm: float) -> np.ndarray:
  """Lesion fraction from the distance inside the border: 0.5 on it, 0 to 1 over edge_mm."""
  return np.clip(0.5 + margin_mm / edge_mm, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class _Borders:
  """How WMH borders look (mm): partial-volume ramp, unlabelled bright rim, halo width."""
  edge: float
  shrink: float
  halo: float


def _deep_lesions(rng: np.random.Generator, cv: _Canvas, severity: float, max_voxels: int,
                  borders: _Borders,
                  config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Punctate deep-WM foci, radially elongated, clustering into confluent patches with severity.

  Returns the lesion fraction as seen (intensity) and as labelled (border shrunk).
  """
  seen, label = np.zeros(cv.grid.shape, np.float32), np.zeros(cv.grid.shape, np.float32)
  candidates = np.flatnonzero((cv.wm > 0.65) & (cv.vdist > 6) & (cv.mask > 0.9)
                              & (cv.mni[2] > -15))
  if candidates.size == 0:
    return seen, label
  count = _uniform(rng, config.deep_count) * (1 + config.deep_count_severity_gain * severity)
  radius_gain = 1 + config.deep_radius_severity_gain * severity
  p_cluster = float(np.interp(severity, [0, 1], config.deep_cluster_probability))
  lo_size, hi_size = config.deep_cluster_size
  painted = 0
  for _ in range(int(round(count))):
    centre = np.array(np.unravel_index(rng.choice(candidates), cv.grid.shape), float)
    radius = _uniform(rng, config.deep_radius_mm) * radius_gain
    foci = [(centre, radius)]
    if rng.uniform() < p_cluster:
      for _ in range(int(rng.integers(lo_size, hi_size + 1))):
        foci.append((centre + rng.normal(0.0, 1.3 * radius, 3) / cv.grid.step,
                     radius * rng.uniform(0.6, 1.0)))
    for c, r in foci:
      semi = np.array([r, r * rng.uniform(0.7, 1.0), r * _uniform(rng, config.deep_elongation)])
      box = _box(c, (semi + borders.shrink + borders.edge) / cv.grid.step + 1, cv.grid.shape)
      if box is None:
        continue
      d = [(np.arange(s.start, s.stop) - c[a]) * cv.grid.step[a] / semi[a]
           for a, s in enumerate(box)]
      rho = np.sqrt(d[0][:, None, None]**2 + d[1][None, :, None]**2 + d[2][None, None, :]**2)
      margin = (1 - rho) * semi.min()
      tissue = (cv.wm[box] + cv.gm[box]) > 0.5
      shrink = min(borders.shrink, 0.3 * semi.min())  # raters still outline small foci
      before = int((label[box] >= 0.5).sum())
      seen[box] = np.maximum(seen[box], _ramp(margin + shrink, borders.edge) * tissue)
      label[box] = np.maximum(label[box], _ramp(margin, borders.edge) * tissue)
      painted += int((label[box] >= 0.5).sum()) - before
    if painted >= max_voxels:
      break
  return seen, label


def _periventricular(rng: np.random.Generator, cv: _Canvas, texture: np.ndarray, n_voxels: int,
                     exclude: np.ndarray, borders: _Borders,
                     config: ml_collections.ConfigDict) -> tuple[np.ndarray, ...]:
  """Caps and rims hugging the ventricles that thicken into a confluent band as n_voxels grows.

  Returns the lesion fraction as seen and as labelled, and the faint unlabelled halo around it.
  """
  seen, label, halo = (np.zeros(cv.grid.shape, np.float32) for _ in range(3))
  cand = np.flatnonzero((cv.vdist > -0.5) & (cv.vdist < _FAR_MM - 1) & (cv.wm > 0.15)
                        & (cv.mask > 0.5) & (exclude < 0.5))
  n_voxels = min(n_voxels, cand.size - 1)
  if n_voxels <= 0:
    return seen, label, halo
  decay = _uniform(rng, config.pv_decay_mm)
  y = cv.mni[1].reshape(-1)[cand]
  caps = 1 / (1 + np.exp(-(y - 5) / 4)) + 1 / (1 + np.exp(-(-30 - y) / 4))  # frontal, occipital
  wm = cv.wm.reshape(-1)[cand]
  log_field = (-np.maximum(cv.vdist.reshape(-1)[cand], 0) / decay
               + np.log1p(_uniform(rng, config.pv_cap_weight) * caps)
               + _uniform(rng, config.pv_texture) * texture.reshape(-1)[cand]
               + np.log(np.clip((wm - 0.15) / 0.4, 1e-3, 1.0)))
  threshold = np.partition(log_field, log_field.size - n_voxels)[log_field.size - n_voxels]
  margin = (log_field - threshold) * decay + borders.shrink  # ~ mm inside the seen border
  focus = _ramp(margin, borders.edge)
  seen.reshape(-1)[cand] = focus
  halo.reshape(-1)[cand] = np.clip(1 + margin / borders.halo, 0.0, 1.0) * (1 - focus)
  label.reshape(-1)[cand] = _ramp(margin - borders.shrink, borders.edge)
  return seen, label, halo


def _paint_stroke(cv: _Canvas, box: tuple[slice, ...], margin: np.ndarray, rim_mm: float | None,
                  edge_mm: float, out: tuple[np.ndarray, np.ndarray]) -> None:
  """Adds an infarct (margin: mm inside its border) to the stroke and, if old, cavity fractions."""
  stroke, cavity = out
  frac = _ramp(margin, edge_mm) * np.clip((cv.gm[box] + cv.wm[box] - 0.2) / 0.4, 0, 1)
  stroke[box] = np.maximum(stroke[box], frac)
  if rim_mm is not None:
    cavity[box] = np.maximum(cavity[box], np.minimum(_ramp(margin - rim_mm, edge_mm), frac))


def _ellipsoid_stroke(cv: _Canvas, centre: np.ndarray, semi: np.ndarray, rotation: np.ndarray,
                      rim_mm: float | None, edge_mm: float,
                      out: tuple[np.ndarray, np.ndarray]) -> None:
  """Striatocapsular infarct or lacune: a rotated ellipsoid in MNI mm."""
  box = cv.mni_box(centre, float(semi.max()))
  if box is None:
    return
  rel = cv.mni[(slice(None),) + box] - centre[:, None, None, None]
  local = np.einsum("ij,j...->i...", rotation.T, rel)
  rho = np.sqrt(sum((local[a] / semi[a])**2 for a in range(3)))
  _paint_stroke(cv, box, (1 - rho) * semi.min(), rim_mm, edge_mm, out)


def _cortical_stroke(rng: np.random.Generator, cv: _Canvas, anatomy: _Anatomy,
                     texture: np.ndarray, rim_mm: float | None, edge_mm: float,
                     config: ml_collections.ConfigDict, out: tuple[np.ndarray, np.ndarray]) -> None:
  """A wedge from a deep apex out to the lateral cortex: a middle cerebral artery branch infarct."""
  side = rng.choice([-1.0, 1.0])
  apex = np.array([side * rng.uniform(12, 22), rng.uniform(-40, 20), rng.uniform(-2, 30)])
  axis = np.array([side, rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 0.7)])
  axis /= np.linalg.norm(axis)
  steps = np.arange(1.0, 120.0)
  ray = apex[:, None] + axis[:, None] * steps - anatomy.origin[:, None]
  inside = ndimage.map_coordinates(anatomy.mask, ray, order=0) > 0.5
  depth = float(steps[np.argmin(inside)]) if not inside.all() else 60.0
  # Elliptical cone, wider superior-inferior than in the axial plane, irregular by the texture.
  across = np.cross(axis, [0.0, 0.0, 1.0])
  across /= np.linalg.norm(across)
  up = np.cross(across, axis)
  tan_a = math.tan(np.deg2rad(_uniform(rng, config.cortical_half_angle_deg)))
  tan_u = tan_a * rng.uniform(1.0, 1.6)
  box = cv.mni_box(apex + axis * depth / 2, depth / 2 + depth * tan_u + 4)
  if box is None:
    return
  rel = cv.mni[(slice(None),) + box] - apex[:, None, None, None]
  t = np.maximum(np.einsum("i,i...->...", axis, rel), 1e-3)
  rho = np.hypot(np.einsum("i,i...->...", across, rel) / tan_a,
                 np.einsum("i,i...->...", up, rel) / tan_u) / t
  margin = np.minimum((1 + 0.2 * texture[box] - rho) * t * tan_a, t - 8.0)
  _paint_stroke(cv, box, margin, rim_mm, edge_mm, out)


def _strokes(rng: np.random.Generator, cv: _Canvas, anatomy: _Anatomy, texture: np.ndarray,
             edge_mm: float,
             config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray, str]:
  """Stroke and cavity fractions and the stroke type ("none", "cortical+lacunar", ...)."""
  stroke = np.zeros(cv.grid.shape, np.float32)
  cavity = np.zeros(cv.grid.shape, np.float32)
  if rng.uniform() >= config.stroke_probability:
    return stroke, cavity, "none"
  weights = np.asarray(config.stroke_type_weights, float)
  kind = ("cortical", "striatocapsular", "lacunar")[rng.choice(3, p=weights / weights.sum())]
  kinds = [kind]

  def rim() -> float | None:
    if rng.uniform() < config.old_infarct_probability:
      return _uniform(rng, config.gliotic_rim_mm)
    return None

  if kind == "cortical":
    _cortical_stroke(rng, cv, anatomy, texture, rim(), edge_mm, config, (stroke, cavity))
  elif kind == "striatocapsular":
    side = rng.choice([-1.0, 1.0])
    centre = np.array([side * rng.uniform(20, 27), rng.uniform(-6, 10), rng.uniform(0, 12)])
    semi = np.array([_uniform(rng, r) for r in config.striatocapsular_semi_axes_mm])
    rotation = _rotation([rng.uniform(-25, 25), rng.uniform(-10, 10), side * rng.uniform(0, 25)])
    _ellipsoid_stroke(cv, centre, semi, rotation, rim(), edge_mm, (stroke, cavity))
  n_lacunes = 0
  if kind == "lacunar":
    n_lacunes = int(rng.integers(config.lacune_count[0], config.lacune_count[1] + 1))
  elif rng.uniform() < config.extra_lacune_probability:
    n_lacunes = 1
    kinds.append("lacunar")
  for _ in range(n_lacunes):
    radius = _uniform(rng, config.lacune_diameter_mm) / 2
    for _ in range(20):  # deep grey or white matter, clear of the ventricles
      side = rng.choice([-1.0, 1.0])
      centre = np.array([side * rng.uniform(10, 30), rng.uniform(-25, 20), rng.uniform(-5, 30)])
      voxel = tuple(np.round(centre - anatomy.origin).astype(int))
      if anatomy.vdist[voxel] > radius + 2 and anatomy.gm[voxel] + anatomy.wm[voxel] > 0.9:
        break
    semi = radius * rng.uniform(0.75, 1.25, 3)
    rim_mm = min(_uniform(rng, config.gliotic_rim_mm) * 0.6, radius / 2)
    _ellipsoid_stroke(cv, centre, semi, _rotation(rng.uniform(-30, 30, 3)), rim_mm, edge_mm,
                      (stroke, cavity))
  return stroke, cavity, "+".join(kinds)


# ----------------------------------------------------------------------------- acquisition


def _thick_slices(fine: np.ndarray, sub: int) -> np.ndarray:
  """Slice-profile partial volume: the mean over each slice's `sub` sub-slices."""
  x, y, z = fine.shape
  return fine.reshape(x, y, z // sub, sub) @ np.full(sub, 1 / sub, np.float32)


def _upsample_inplane(image: np.ndarray, k: int) -> np.ndarray:
  """Linear in-plane interpolation by the integer k (a zero-filled-like reconstruction)."""
  if k == 1:
    return image
  for axis in (0, 1):
    moved = np.moveaxis(image, axis, 0)
    out = np.empty((k * (moved.shape[0] - 1) + 1,) + moved.shape[1:], np.float32)
    out[::k] = moved
    for r in range(1, k):
      out[r::k] = (1 - r / k) * moved[:-1] + (r / k) * moved[1:]
    image = np.moveaxis(out, 0, axis)
  return np.ascontiguousarray(image)


def _labels(wmh: np.ndarray, stroke: np.ndarray, csf: np.ndarray, max_csf: float,
            brain: np.ndarray) -> np.ndarray:
  """Majority labels from lesion fractions, as a rater sees them.

  Stroke wins a tie with WMH; a WMH voxel averaged with more than max_csf of (dark) CSF is not
  hyperintense and stays unlabelled.
  """
  wmh = np.where(csf <= max_csf, wmh, 0)
  mixed = np.where(stroke + wmh >= 0.5, np.where(stroke >= wmh, 2, 1), 0)
  labels = np.where(stroke >= 0.5, 2, np.where(wmh >= 0.5, 1, mixed))
  return (labels * brain).astype(np.uint8)


def _drop_specks(labels: np.ndarray, min_voxels: float) -> np.ndarray:
  """Unlabels WMH components (26-connected) under min_voxels: raters do not outline specks."""
  components, count = ndimage.label(labels == 1, structure=np.ones((3, 3, 3)))
  small = np.flatnonzero(np.bincount(components.ravel(), minlength=count + 1) < min_voxels)
  labels = labels.copy()
  labels[np.isin(components, small[small > 0])] = 0
  return labels


@dataclasses.dataclass(frozen=True)
class _FlairParts:
  """FLAIR ingredients on the native grid (or flattened subsets of its voxels).

  tissue: lesion-free tissue intensity x (1 - lesion fraction); cavity: CSF-dark infarct cores;
  seen: WMH fraction; lift: labelled WMH voxels, whose partial volume the border profile changes;
  wmh: WMH fraction x texture; infarct: bright infarct tissue x texture; halo: faint unlabelled
  hyperintensity around WMH; bias: multiplicative field; noise: (2, ...) Gaussian pairs.
  """
  tissue: np.ndarray
  cavity: np.ndarray
  seen: np.ndarray
  lift: np.ndarray
  wmh: np.ndarray
  infarct: np.ndarray
  halo: np.ndarray
  bias: np.ndarray
  noise: np.ndarray

  def subset(self, index: np.ndarray) -> "_FlairParts":
    return _FlairParts(**{f.name: getattr(self, f.name)[..., index]
                          for f in dataclasses.fields(self)})

  def clean(self, profile: float, halo_gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free FLAIR as (lesion-free part, part scaled by the lesion intensity).

    In labelled WMH voxels the lesion fraction s becomes s**profile: below 1, lesions fill more of
    the voxels they partly fill (sharper borders, less partial volume), above 1 less; tissue and
    lesion fractions still add up.
    """
    lit = self.lift & (self.seen > 0)
    seen = self.seen[lit]
    lifted = seen**profile
    gain = np.ones_like(self.seen)
    gain[lit] = lifted / seen
    keep = np.ones_like(self.seen)
    keep[lit] = np.where(seen < 1, (1 - lifted) / np.maximum(1 - seen, 1e-6), 0)
    return (self.bias * (self.tissue * keep + self.cavity),
            self.bias * (self.wmh * gain + self.infarct + halo_gain * self.halo))

  def render(self, intensity: float, profile: float, halo_gain: float) -> np.ndarray:
    """Rician-noisy FLAIR."""
    a, b = self.clean(profile, halo_gain)
    return np.sqrt((a + intensity * b + self.noise[0])**2 + self.noise[1]**2)


def _bisect(f: Callable[[float], float], lo: float, hi: float, increasing: bool,
            geometric: bool = False, steps: int = 10) -> float:
  """x in [lo, hi] with f(x) ~ 0 for a monotonic f (an end point if there is no root)."""
  for _ in range(steps):
    mid = math.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)
    if (f(mid) < 0) == increasing:
      lo = mid
    else:
      hi = mid
  return math.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)


def _calibrate(parts: _FlairParts, labels: np.ndarray, mean_z: float, p10_z: float,
               p99_z: float) -> tuple[float, float, float]:
  """Lesion intensity, border profile and halo gain matching the realism table (brain z units).

  WMH voxels get mean mean_z (intensity) and 10th percentile p10_z (profile); unlabelled brain
  gets 99th percentile p99_z (halo gain, as far as the faint halo can). parts and labels (0/1/2)
  cover the brain voxels. Exact: only lesion and halo voxels change; the rest is summarised once.
  """
  wmh = labels == 1
  if wmh.sum() < 10:
    return 1.5, 1.0, 0.0
  n = labels.size
  noise_var = float(np.var(parts.noise[0]))
  k99 = int(0.99 * (int((labels == 0).sum()) - 1))
  moving = (parts.seen > 0) | (parts.infarct > 0) | (parts.halo > 0) | wmh
  fixed_parts = parts.subset(~moving)
  fixed_clean = fixed_parts.clean(1.0, 0.0)[0].astype(np.float64)
  fixed = fixed_parts.render(0.0, 1.0, 0.0).astype(np.float64)
  sums = dict(a=fixed_clean.sum(), aa=(fixed_clean**2).sum(), x=fixed.sum(), xx=(fixed**2).sum())
  fixed_normal = fixed[labels[~moving] == 0]
  n_moving_normal = int((labels[moving] == 0).sum())
  n_top = min(fixed_normal.size, max(0, fixed_normal.size + n_moving_normal - k99) + 1)
  below = fixed_normal.size - n_top  # fixed unlabelled voxels certainly under the 99th percentile
  top = np.partition(fixed_normal, below)[below:] if n_top else fixed_normal[:0]
  parts, wmh, normal = parts.subset(moving), wmh[moving], labels[moving] == 0
  k10 = int(0.1 * (wmh.sum() - 1))

  def solve(profile: float, halo_gain: float) -> tuple[float, float, float]:
    """(WMH 10th percentile z, unlabelled 99th percentile z, intensity) at the target mean z."""
    a, b = (x.astype(np.float64) for x in parts.clean(profile, halo_gain))
    mean_a, mean_b = (sums["a"] + a.sum()) / n, b.sum() / n
    var_a = (sums["aa"] + (a**2).sum()) / n - mean_a**2
    var_b, cov = (b**2).sum() / n - mean_b**2, (a * b).sum() / n - mean_a * mean_b
    wa, wb = a[wmh].mean(), b[wmh].mean()

    def z_error(i: float) -> float:
      std = math.sqrt(var_a + 2 * i * cov + i * i * var_b + noise_var)
      return (wa + i * wb - mean_a - i * mean_b) / std - mean_z

    i = _bisect(z_error, 0.3, 10.0, increasing=True, steps=30)
    x = np.sqrt((a + i * b + parts.noise[0])**2 + parts.noise[1]**2)
    mean = (sums["x"] + x.sum()) / n
    std = math.sqrt(max((sums["xx"] + (x**2).sum()) / n - mean**2, 1e-12))
    pool = np.concatenate([top, x[normal]])
    k = min(max(k99 - below, 0), pool.size - 1)
    return ((np.partition(x[wmh], k10)[k10] - mean) / std, (np.partition(pool, k)[k] - mean) / std,
            i)

  def profile_for(halo_gain: float) -> float:
    return _bisect(lambda g: solve(g, halo_gain)[0] - p10_z, 0.05, 4.0, increasing=False,
                   geometric=True, steps=9)

  profile = profile_for(0.0)
  halo_gain = _bisect(lambda h: solve(profile, h)[1] - p99_z, 0.0, 1.5, increasing=True, steps=8)
  profile = profile_for(halo_gain)
  return solve(profile, halo_gain)[2], profile, halo_gain


# ----------------------------------------------------------------------------- one subject


def subject_name(index: int) -> str:
  return f"sub-{index:03d}"


def generate_subject(index: int, seed: int, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Renders subject `index` of cohort `seed`, independently of the cohort size and other subjects.

  Returns arrays flair, t1 (int16, relative intensity x 1000), wm (float32 probability),
  brain_mask and labels (uint8) in the stored voxel order, their affine, the manifest row
  ("clinical") and the latent truth of the generative model ("truth").
  """
  # One BLAS thread: the same bits however many workers run (threaded GEMMs may sum in another
  # order), and faster than threads competing with the other workers.
  with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
    return _generate_subject(index, seed, config)


def _generate_subject(index: int, seed: int, config: ml_collections.ConfigDict) -> dict[str, Any]:
  anatomy = _anatomy()
  streams = np.random.SeedSequence([seed, index]).spawn(6)
  rng_clin, rng_geo, rng_wmh, rng_stroke, rng_img, rng_mmse = map(np.random.default_rng, streams)

  # Clinical risk factors drive the WMH burden (log % of ICV).
  risk = sample_risk_factors(rng_clin, config)
  predictor, residual, target_pct = sample_wmh_burden(rng_clin, risk, config.wmh_model)
  lo_pct, hi_pct = config.wmh_model.clip_pct
  severity = math.log(target_pct / lo_pct) / math.log(hi_pct / lo_pct)

  geo = _geometry(rng_geo, risk["male"], anatomy, config)
  enlarge = (_uniform(rng_geo, config.ventricle_enlargement_mm)
             + config.ventricle_enlargement_per_decade_mm * max(risk["age"] - 50, 0) / 10)
  cv = _Canvas(rng_geo, geo, enlarge, anatomy, config)

  # Lesions: deep foci, then periventricular caps and rims up to the target volume, strokes.
  borders = _Borders(edge=_uniform(rng_wmh, config.wmh_edge_mm),
                     shrink=_uniform(rng_wmh, config.label_shrink_mm),
                     halo=_uniform(rng_wmh, config.halo_mm))
  pv_texture, texture = _smooth_noise(rng_wmh, cv.grid, config.pv_texture_smoothness_mm, 2)
  n_target = int(target_pct / 100 * float(cv.mask.sum()))
  deep_seen, deep = _deep_lesions(rng_wmh, cv, severity,
                                  int((1 - config.pv_min_fraction) * n_target), borders, config)
  n_pv = n_target - int((deep >= 0.5).sum())
  pv_seen, pv, halo = _periventricular(rng_wmh, cv, pv_texture, n_pv, deep, borders, config)
  stroke, cavity, stroke_type = _strokes(rng_stroke, cv, anatomy, texture, borders.edge, config)
  seen = np.maximum(np.maximum(pv_seen, deep_seen), stroke)
  halo *= 1 - seen
  wmh_seen = seen - stroke
  wmh_label = np.maximum(np.maximum(pv, deep), stroke) - stroke
  pv_ml = float(((pv >= 0.5) & (stroke < 0.5)).sum()) * cv.voxel_mm3 / 1000
  deep_ml = float(((deep >= 0.5) & (pv < 0.5) & (stroke < 0.5)).sum()) * cv.voxel_mm3 / 1000

  # Contrast on the fine grid, then thick-slice partial volume.
  flair_gm, flair_csf = _uniform(rng_img, config.flair_gm), _uniform(rng_img, config.flair_csf)
  t1_gm, t1_csf = _uniform(rng_img, config.t1_gm), _uniform(rng_img, config.t1_csf)
  t1_wmh, t1_glio = _uniform(rng_img, config.t1_wmh), _uniform(rng_img, config.t1_gliosis)
  infarct = _uniform(rng_img, config.infarct_intensity)
  hetero = 1 + _uniform(rng_img, config.wmh_heterogeneity) * texture
  csf = np.maximum(cv.mask - cv.gm - cv.wm, 0)
  keep = 1 - seen
  gliosis = stroke - cavity
  t1 = ((cv.wm + t1_gm * cv.gm + t1_csf * csf) * keep + t1_csf * cavity + t1_wmh * wmh_seen
        + t1_glio * gliosis)
  fine = dict(tissue=(cv.wm + flair_gm * cv.gm + flair_csf * csf) * keep,
              cavity=flair_csf * cavity, seen=wmh_seen, wmh=wmh_seen * hetero,
              infarct=infarct * gliosis * hetero, halo=halo * hetero)
  thick = {k: _thick_slices(v, geo.sub) for k, v in fine.items()}
  t1, wm, mask, wmh_label, stroke = (_thick_slices(x, geo.sub)
                                     for x in (t1, cv.wm, cv.mask, wmh_label, stroke))
  csf = _thick_slices(csf * keep + cavity, geo.sub)  # dark CSF, infarct cavities included

  # Acquisition: bias field and noise on the thick-slice grid, then in-plane interpolation to the
  # native grid (a zero-filled-like reconstruction: correlated noise), majority labels.
  step = np.array([cv.grid.step[0], cv.grid.step[1], geo.zooms[2]])
  log_bias = _smooth_noise(rng_img, _Grid(mask.shape, cv.grid.start, step),
                           config.bias_field_smoothness_mm)[0]
  bias = np.exp(_uniform(rng_img, config.bias_field_std) * log_bias)
  bias /= bias[mask >= 0.5].mean()
  noise = rng_img.standard_normal((4,) + mask.shape, dtype=np.float32)
  noise *= _uniform(rng_img, config.noise_std)
  thick = {k: _upsample_inplane(v, geo.k) for k, v in thick.items()}
  t1, wm, mask, csf, wmh_label, stroke, bias = (
      _upsample_inplane(x, geo.k) for x in (t1, wm, mask, csf, wmh_label, stroke, bias))
  noise = np.stack([_upsample_inplane(x, geo.k) for x in noise])
  brain = mask >= 0.5
  labels = _labels(wmh_label, stroke, csf, _uniform(rng_wmh, config.label_max_csf), brain)
  min_voxels = _uniform(rng_wmh, config.label_min_wmh_mm3) / float(np.prod(geo.zooms))
  labels = _drop_specks(labels, min_voxels)

  # FLAIR: lesion intensity, border profile and halo calibrated to the realism table (or drawn).
  parts = _FlairParts(bias=bias, noise=noise[:2], lift=labels == 1, **thick)
  if config.calibrate:
    targets = [_uniform(rng_img, r) for r in (config.wmh_mean_z, config.wmh_p10_z,
                                              config.brain_p99_z)]
    intensity, profile, halo_gain = _calibrate(parts.subset(brain), labels[brain], *targets)
  else:
    intensity, profile = _uniform(rng_img, config.lesion_intensity), 1.0
    halo_gain = _uniform(rng_img, config.halo_gain)
  flair = parts.render(intensity, profile, halo_gain)
  t1 = np.sqrt((bias * t1 + noise[2])**2 + noise[3]**2)

  def full(x: np.ndarray, dtype: Any) -> np.ndarray:
    out = np.zeros(geo.matrix, dtype)
    out[geo.crop[0]:geo.crop[0] + x.shape[0], geo.crop[1]:geo.crop[1] + x.shape[1]] = x
    return out

  def scaled(x: np.ndarray) -> np.ndarray:
    return full(np.clip(np.round(x * brain * _INTENSITY_SCALE), 0, np.iinfo(np.int16).max),
                np.int16)

  arrays = dict(flair=scaled(flair), t1=scaled(t1),
                wm=full(np.round(wm * brain * 256) / 256, np.float32),  # 8 bits: compresses
                brain_mask=full(brain, np.uint8), labels=full(labels, np.uint8))

  # Affine: voxel -> slice frame -> scanner (stack tilted about left-right, a table offset).
  voxel_to_slice = np.eye(4)
  voxel_to_slice[:3, :3] = np.diag(geo.zooms)
  voxel_to_slice[:3, 3] = geo.native_start
  oblique = np.eye(4)
  oblique[:3, :3] = _rotation([_uniform(rng_geo, config.oblique_deg), 0.0, 0.0])
  oblique[:3, 3] = [0.0, -15.0, 30.0]
  arrays, affine = _reorient(arrays, oblique @ voxel_to_slice, config.orientation)

  voxel_ml = float(np.prod(geo.zooms)) / 1000
  icv_ml = float(brain.sum()) * voxel_ml
  wmh_ml = float((labels == 1).sum()) * voxel_ml
  stroke_ml = float((labels == 2).sum()) * voxel_ml
  wmh_pct = 100 * wmh_ml / icv_ml
  mm = config.mmse_model
  mmse = (mm.intercept + mm.wmh_pct * wmh_pct + mm.age_per_decade * (risk["age"] - 70) / 10
          + mm.stroke * (stroke_ml > 0) + rng_mmse.normal(0.0, mm.noise_sd))
  clinical = dict(age=risk["age"], sex="M" if risk["male"] else "F",
                  hypertension=risk["hypertension"], diabetes=risk["diabetes"],
                  smoking=risk["smoking"], sbp=risk["sbp"],
                  fazekas_pv=fazekas(pv_ml, config.fazekas_pv_ml),
                  fazekas_deep=fazekas(deep_ml, config.fazekas_deep_ml),
                  mmse=int(np.clip(round(mmse), 0, 30)), protocol=protocol_name(geo.zooms),
                  icv_ml=round(icv_ml, 1), wmh_ml=round(wmh_ml, 2), stroke_ml=round(stroke_ml, 2),
                  stroke_type=stroke_type if stroke_ml > 0 else "none")
  truth = dict(wmh_linear_predictor=predictor, wmh_residual=residual,
               target_wmh_pct_icv=target_pct, generated_wmh_pct_icv=wmh_pct,
               periventricular_ml=pv_ml, deep_ml=deep_ml, lesion_intensity=intensity,
               lesion_profile=profile, halo_gain=halo_gain, strokes_placed=stroke_type,
               ventricle_enlargement_mm=enlarge)
  return dict(subject=subject_name(index), affine=affine, clinical=clinical, truth=truth,
              **arrays)


def _reorient(arrays: dict[str, np.ndarray], affine: np.ndarray,
              codes: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Stores RAS-ordered arrays in another voxel axis order, keeping the world geometry."""
  ornt = nib.orientations
  transform = ornt.ornt_transform(ornt.axcodes2ornt("RAS"), ornt.axcodes2ornt(tuple(codes)))
  shape = next(iter(arrays.values())).shape
  arrays = {k: np.ascontiguousarray(ornt.apply_orientation(v, transform))
            for k, v in arrays.items()}
  return arrays, affine @ ornt.inv_ornt_aff(transform, shape)


# ----------------------------------------------------------------------------- cohort on disk


def _fingerprint(seed: int, config: ml_collections.ConfigDict) -> str:
  """Identifies what a subject folder was generated from (the worker count does not matter)."""
  settings = config.to_dict()
  settings.pop("num_workers", None)
  text = json.dumps([seed, settings], sort_keys=True, default=list)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_subject(out_dir: str, index: int, seed: int,
                   config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Generates one subject into a temporary folder, renamed into place when complete."""
  out = pathlib.Path(out_dir)
  name = subject_name(index)
  fingerprint = _fingerprint(seed, config)
  final = out / name
  if (final / _DONE).exists():
    record = json.loads((final / _DONE).read_text())
    if record.get("fingerprint") == fingerprint:
      return record
  subject = generate_subject(index, seed, config)
  tmp = out / f".tmp-{name}"
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir()
  for key in IMAGE_COLUMNS:
    nifti_io.save_nifti(tmp / f"{key}.nii.gz", subject[key], subject["affine"])
  record = dict(subject=name, fingerprint=fingerprint, clinical=subject["clinical"],
                truth=subject["truth"])
  text = json.dumps(record, indent=1, sort_keys=True)
  atomic.write_text(tmp / _DONE, text)
  shutil.rmtree(final, ignore_errors=True)
  os.replace(tmp, final)
  return json.loads(text)  # exactly what a resumed run reads back


def generative_model(seed: int, config: ml_collections.ConfigDict,
                     records: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """The known truth a clinical analysis of the cohort can be checked against."""
  model = config.wmh_model
  coefficients = {k: getattr(model, k) for k in ("age_per_decade", "hypertension",
                                                 "sbp_per_10mmhg", "diabetes", "smoking", "male")}
  return {
      "seed": seed,
      "wmh_model": {
          "formula": (
              "log(target WMH % of ICV) = intercept + age_per_decade*(age-70)/10"
              " + hypertension*hypertension + sbp_per_10mmhg*(sbp-140)/10 + diabetes*diabetes"
              " + smoking*smoking + male*(sex=='M') + Normal(0, noise_sd); the target is clipped"
              " to clip_pct and the lesion generator renders it approximately (wmh_ml / icv_ml"
              " * 100 in the manifest is what was generated)"),
          "intercept": model.intercept,
          "coefficients": coefficients,
          "noise_sd": model.noise_sd,
          "clip_pct": list(model.clip_pct),
          "true_effects": sorted(k for k, v in coefficients.items() if v != 0),
          "null_effects": sorted(k for k, v in coefficients.items() if v == 0),
      },
      "risk_factor_model": {
          "age": f"Uniform{tuple(config.age_years)} years",
          "sex": f"male with probability {config.male_probability}",
          "hypertension": (f"Bernoulli(sigmoid({config.hypertension_logit}"
                           f" + {config.hypertension_logit_per_decade}*(age-70)/10))"),
          "sbp": (f"Normal{tuple(config.sbp_hypertensive)} if hypertension"
                  f" else Normal{tuple(config.sbp_normotensive)}"),
          "diabetes": f"Bernoulli({config.diabetes_probability})",
          "smoking": f"Bernoulli({config.smoking_probability})",
      },
      "mmse_model": {
          "formula": ("mmse = clip(round(intercept + wmh_pct*(wmh_ml/icv_ml*100)"
                      " + age_per_decade*(age-70)/10 + stroke*(stroke_ml>0)"
                      " + Normal(0, noise_sd)), 0, 30)"),
          **config.mmse_model.to_dict(),
      },
      "fazekas": {
          "rule": ("score = number of thresholds exceeded by the generated periventricular /"
                   " deep WMH volume (mL)"),
          "periventricular_ml": list(config.fazekas_pv_ml),
          "deep_ml": list(config.fazekas_deep_ml),
      },
      "subjects": {r["subject"]: r["truth"] for r in records},
      "config": config.to_dict(),
  }


_RANGE_KEYS = (
    "random_inplane_mm", "random_thickness_mm", "oblique_deg", "head_scale", "rotation_deg",
    "translation_mm", "deformation_mm", "ventricle_enlargement_mm", "flair_gm", "flair_csf",
    "wmh_mean_z", "wmh_p10_z", "brain_p99_z", "lesion_intensity", "halo_gain",
    "wmh_heterogeneity", "wmh_edge_mm", "label_shrink_mm", "label_max_csf", "label_min_wmh_mm3",
    "halo_mm", "noise_std", "bias_field_std", "t1_gm", "t1_csf", "t1_wmh", "t1_gliosis",
    "pv_decay_mm", "pv_cap_weight", "pv_texture", "deep_count", "deep_radius_mm",
    "deep_elongation", "deep_cluster_probability", "deep_cluster_size", "lacune_count",
    "lacune_diameter_mm", "cortical_half_angle_deg", "gliotic_rim_mm", "infarct_intensity",
    "age_years")
_PROBABILITY_KEYS = ("random_protocol_probability", "stroke_probability",
                     "extra_lacune_probability", "old_infarct_probability", "male_probability",
                     "diabetes_probability", "smoking_probability")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the first knob that cannot be sampled."""
  for key in _RANGE_KEYS:
    value = config[key]
    if len(value) != 2 or not value[0] <= value[1]:
      raise InputError(f"config.{key}={tuple(value)}: expected a (lo, hi) range with lo <= hi")
  for key in _PROBABILITY_KEYS:
    if not 0 <= config[key] <= 1:
      raise InputError(f"config.{key}={config[key]}: expected a probability in [0, 1]")
  if not config.protocols or any(len(p) != 3 or min(p) <= 0 for p in config.protocols):
    raise InputError(f"config.protocols={config.protocols}: expected (in-plane, in-plane, "
                     "thickness) triples in mm, all > 0")
  for key, count in (("protocol_weights", len(config.protocols)), ("stroke_type_weights", 3)):
    weights = config[key]
    if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
      raise InputError(f"config.{key}={weights}: expected {count} weights >= 0, not all 0")
  if not 0 < config.wmh_model.clip_pct[0] < config.wmh_model.clip_pct[1]:
    raise InputError(f"config.wmh_model.clip_pct={config.wmh_model.clip_pct}: "
                     "expected 0 < lo < hi")
  if config.random_inplane_mm[0] <= 0 or config.random_thickness_mm[0] <= 0:
    raise InputError("config.random_inplane_mm / random_thickness_mm: spacings must be > 0")
  if config.num_workers < 1:
    raise InputError(f"config.num_workers={config.num_workers}: expected at least 1")
  axes = sorted(str(config.orientation).translate(str.maketrans("LPI", "RAS")))
  if len(config.orientation) != 3 or axes != ["A", "R", "S"]:
    raise InputError(f"config.orientation={config.orientation!r}: expected three axis codes "
                     "such as RAS or LPS")


def write_cohort(out_dir: str | os.PathLike, num_subjects: int, seed: int,
                 config: ml_collections.ConfigDict) -> pathlib.Path:
  """Writes (or completes) a phantom cohort and returns its manifest, which is written last."""
  if num_subjects < 1:
    raise InputError(f"{out_dir}: the number of subjects must be at least 1, got {num_subjects}")
  validate_config(config)
  out = pathlib.Path(out_dir)
  if out.exists() and not out.is_dir():
    raise InputError(f"{out}: exists and is not a folder")
  out.mkdir(parents=True, exist_ok=True)
  for stale in out.glob(".tmp-*"):  # leftovers of an interrupted run
    if stale.is_dir():
      shutil.rmtree(stale)
    else:
      stale.unlink()
  indices = range(num_subjects)
  workers = min(config.num_workers, num_subjects)
  if workers == 1:
    records = [_write_subject(str(out), i, seed, config) for i in indices]
  else:
    context = multiprocessing.get_context("spawn")  # safe under a parent that imported JAX
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
      records = list(pool.map(_write_subject, [str(out)] * num_subjects, indices,
                              [seed] * num_subjects, [config] * num_subjects))
  truth = generative_model(seed, config, records)
  atomic.write_text(out / GENERATIVE_MODEL, json.dumps(truth, indent=1, default=list))
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(("subject",) + IMAGE_COLUMNS + CLINICAL_COLUMNS)
  for r in records:
    writer.writerow([r["subject"]] + [f"{r['subject']}/{c}.nii.gz" for c in IMAGE_COLUMNS]
                    + [r["clinical"][c] for c in CLINICAL_COLUMNS])
  manifest = out / MANIFEST
  atomic.write_text(manifest, buffer.getvalue())
  return manifest


# ----------------------------------------------------------------------------- CLI

def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  out = flags.DEFINE_string("out", "data/phantom",
                            "Folder to write the cohort into (subjects.csv + sub-*/).")
  subjects = flags.DEFINE_integer("subjects", 40, "Number of subjects.")
  seed = flags.DEFINE_integer("seed", 0, "Cohort seed; subject i depends only on (seed, i).")
  config = config_flags.DEFINE_config_dict("config", phantom_config.get_config(),
                                           "Generator knobs, e.g. --config.noise_std=(0.02,0.05).")

  @exit_on_input_error
  def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
      raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
    if subjects.value < 1:
      raise InputError(f"--subjects={subjects.value}: must be at least 1")
    validate_config(config.value)
    print(write_cohort(out.value, subjects.value, seed.value, config.value))

  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
