"""The brain: the MNI152 template, its pose on the protocol's grids, its per-subject deformation."""
import dataclasses
import functools
import hashlib
import importlib.metadata
import math
import os
import pathlib
import zipfile

import ml_collections
import numpy as np
from scipy import ndimage

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom.acquisition import sample_protocol, slice_profile
from uresnet_jax.phantom.fields import (clipped_box, control, evaluate_bspline, Grid,
                                        rotation_matrix, smooth_noise)
from uresnet_jax.phantom.knobs import uniform

_VENTRICLE_SIGMA_MM = 5.0  # width of the ventricular enlargement field
FAR_MM = 26.0  # ventricle distance beyond which nothing depends on it (> 3 x the sigma above)


@dataclasses.dataclass(frozen=True)
class Anatomy:
  """MNI152 channels on a crop of the 1 mm template grid (voxel = MNI mm - origin)."""
  gm: np.ndarray
  wm: np.ndarray
  mask: np.ndarray
  vdist: np.ndarray  # signed distance to the lateral ventricles (mm), negative inside
  near_lo: np.ndarray  # voxel box outside which vdist is FAR_MM
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


def _cache_path() -> pathlib.Path:
  """The derived anatomy's file in the user's cache, keyed by nilearn's version and this module's
  source: a change to either derives it again."""
  root = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
  key = hashlib.sha256(importlib.metadata.version("nilearn").encode()
                       + pathlib.Path(__file__).read_bytes()).hexdigest()[:16]
  return root / "uresnet_jax" / f"mni152_anatomy_{key}.npz"


@functools.lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
  """The MNI152 anatomy, once per process; from the user's cache after the first time (importing
  nilearn's datasets alone takes seconds, and every process that generates subjects needs it)."""
  path = _cache_path()
  try:
    with np.load(path, allow_pickle=False) as saved:
      return Anatomy(**{f.name: saved[f.name] for f in dataclasses.fields(Anatomy)})
  except (OSError, KeyError, ValueError, zipfile.BadZipFile):
    pass  # not there yet, or unreadable: derive it
  anatomy = derive_anatomy()
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as tmp, open(tmp, "wb") as f:
      np.savez(f, **dataclasses.asdict(anatomy))
  except OSError:
    pass  # an unwritable cache: derive it in each process
  return anatomy


def derive_anatomy() -> Anatomy:
  """Loads the bundled MNI152 templates and derives the ventricles from them."""
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
  vlo, vhi = _bbox(ventricles, int(FAR_MM))
  vbox = tuple(slice(a, b) for a, b in zip(vlo, vhi))
  v = ventricles[vbox]
  vdist = np.full(inside.shape, FAR_MM, np.float32)
  outside = np.minimum(ndimage.distance_transform_edt(~v), FAR_MM)
  vdist[vbox] = outside - ndimage.distance_transform_edt(v)
  push = np.zeros((3,) + inside.shape, np.float32)
  smooth = ndimage.gaussian_filter(v.astype(np.float32), _VENTRICLE_SIGMA_MM)
  push[(slice(None),) + vbox] = np.gradient(smooth)
  push /= np.sqrt((push**2).sum(0)).max()

  return Anatomy(gm=gm, wm=wm, mask=fmask, vdist=vdist, near_lo=vlo.astype(float),
                 near_hi=(vhi - 1).astype(float), push=push, origin=origin,
                 centre=np.array(ndimage.center_of_mass(inside)) + origin,
                 points=(np.argwhere(inside[::3, ::3, ::3]) * 3 + origin).astype(np.float64))


@dataclasses.dataclass(frozen=True)
class Geometry:
  """Protocol, native grid, head pose and the fine grid the anatomy is rendered on."""
  zooms: tuple[float, float, float]  # in-plane spacing and slice spacing (thickness + gap)
  k: int  # native in-plane voxels per fine voxel
  thickness_mm: float  # slice thickness (zooms[2] minus the gap)
  profile: np.ndarray  # weights of the fine sub-slices of a native slice (len = sub-slices)
  matrix: tuple[int, int, int]  # native shape
  native_start: np.ndarray  # slice-frame mm of native voxel (0, 0, 0)
  crop: tuple[int, int]  # native in-plane index of fine voxel (0, 0)
  fine: Grid
  to_slice: np.ndarray  # slice frame = to_slice @ MNI + offset (before the warp)
  offset: np.ndarray


def geometry(rng: np.random.Generator, male: int, anatomy: Anatomy,
             config: ml_collections.ConfigDict, aspect: np.ndarray, fov_mm: float,
             gap_mm: float = 0.0) -> Geometry:
  """aspect: head-shape factors along the slice frame's axes; fov_mm: the in-plane field of view;
  gap_mm: the gap between slices (the stored spacing is the thickness plus the gap)."""
  inplane_x, inplane_y, thickness = sample_protocol(rng, config)
  zooms = (inplane_x, inplane_y, thickness + gap_mm)
  scale = uniform(rng, config.head_scale) * (config.male_head_scale if male else 1.0)
  rotation = rotation_matrix([uniform(rng, config.rotation_deg) for _ in range(3)])
  shift = np.array([uniform(rng, config.translation_mm) for _ in range(3)])
  to_slice = aspect[:, None] * (scale * rotation.T)
  offset = shift - to_slice @ anatomy.centre
  extent = anatomy.points @ to_slice.T + offset
  margin = np.array([10.0, 10.0, 5.0])  # room for the warp
  low, high = extent.min(0) - margin, extent.max(0) + margin
  k = max(1, int(round(config.fine_inplane_mm / zooms[0])))
  sub = max(1, int(math.ceil(zooms[2] / config.fine_slice_mm - 1e-6)))
  n_slices = int(math.ceil((high[2] - low[2]) / zooms[2]))
  matrix = tuple(2 * int(math.ceil(fov_mm / (2 * z))) for z in zooms[:2]) + (n_slices,)
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
  fine = Grid(((hi[0] - lo[0]) // k + 1, (hi[1] - lo[1]) // k + 1, n_slices * sub), start, step)
  return Geometry(zooms=zooms, k=k, thickness_mm=thickness, profile=slice_profile(sub, zooms[2], thickness),
                  matrix=matrix, native_start=native_start,
                  crop=(int(lo[0]), int(lo[1])), fine=fine, to_slice=to_slice, offset=offset)


class Canvas:
  """A subject's anatomy on the fine grid: MNI coordinates of every voxel and tissue channels."""

  def __init__(self, rng: np.random.Generator, geo: Geometry, enlarge_mm: float,
               anatomy: Anatomy, config: ml_collections.ConfigDict, asymmetry: float = 0.0):
    """asymmetry: the right lateral ventricle enlarged (1 + asymmetry) times, the left
    (1 - asymmetry) times enlarge_mm, blended across the midline."""
    grid = self.grid = geo.fine
    self.geo = geo
    # Backward map fine voxel -> MNI: inverse pose, smooth random warp, ventricular enlargement.
    from_slice = np.linalg.inv(geo.to_slice)
    _, weights, ctrl = control(grid, 4.0)
    ctrl_mni = np.einsum("ij,j...->i...", from_slice, ctrl - geo.offset[:, None, None, None])
    ctrl_voxel = ctrl_mni - anatomy.origin[:, None, None, None]
    push = [ndimage.map_coordinates(anatomy.push[a], ctrl_voxel, order=1) for a in range(3)]
    if asymmetry:
      push = [p * (1 + asymmetry * np.tanh(ctrl_mni[0] / 4.0)) for p in push]
    deform = self.deform_mm = uniform(rng, config.deformation_mm)
    warp = smooth_noise(rng, grid, config.deformation_smoothness_mm, 3)
    axes = [grid.axis(a) - geo.offset[a] for a in range(3)]
    mni = np.empty((3,) + grid.shape, np.float64)  # float64: map_coordinates' fast path
    for i in range(3):
      mni[i] = (from_slice[i, 0] * axes[0])[:, None, None]
      mni[i] += (from_slice[i, 1] * axes[1])[None, :, None] + (from_slice[i, 2] * axes[2])
      mni[i] += deform * warp[i] + enlarge_mm * evaluate_bspline(push[i].astype(np.float32),
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
    self.vdist = np.full_like(self.mask, FAR_MM)
    self.vdist.reshape(-1)[inside[near]] = ndimage.map_coordinates(
        anatomy.vdist, coords[:, near], order=1, output=np.float32, cval=FAR_MM)
    self.voxel_mm3 = float(np.prod(grid.step))

  def mni_box(self, mni_point: np.ndarray, radius_mm: float) -> tuple[slice, ...] | None:
    """Fine-grid box holding an MNI ball (padded for the smooth warp, which it ignores)."""
    centre = (self.geo.to_slice @ mni_point + self.geo.offset - self.grid.start) / self.grid.step
    scale = np.abs(self.geo.to_slice).sum(1).max()
    return clipped_box(centre, (radius_mm * scale + 8.0) / self.grid.step, self.grid.shape)


_SHARP_WIDTH = 0.08  # grey-matter share over which a sharpened boundary goes from 27 % to 73 %


def sharpen_tissue(cv: Canvas, amount: float) -> None:
  """Crisp grey/white boundaries where the MNI152 average blurs them: each voxel's grey share of
  its tissue moves `amount` of the way (0: none, 1: all) to a steep sigmoid of itself, the tissue
  total (and so the CSF) unchanged. Real FLAIR shows the putamen, caudate and thalamus as grey
  matter with the internal capsule's white matter between them, and a crisp cortical ribbon; the
  average shows smooth partial-volume blends (docs/sim_to_real.md, round 22)."""
  if amount <= 0:
    return
  tissue = cv.gm + cv.wm
  share = cv.gm / np.maximum(tissue, 1e-6)
  steep = 1.0 / (1.0 + np.exp(-(share - 0.5) / (_SHARP_WIDTH / 2)))
  share = share + amount * (steep - share)
  cv.gm = (share * tissue).astype(np.float32)
  cv.wm = (tissue - cv.gm).astype(np.float32)


def widen_sulci(cv: Canvas, widening_mm: float) -> None:
  """Cortical atrophy: grey matter recedes from the CSF by up to widening_mm (away from the
  ventricles), which widens the sulci and the brain's outer CSF."""
  if widening_mm <= 0:
    return
  size = [max(1, 2 * int(round(widening_mm / s)) + 1) for s in cv.grid.step]
  tissue = cv.gm + cv.wm
  eroded = ndimage.grey_erosion(tissue, size=size)
  keep = np.where(tissue > 0, np.minimum(eroded / np.maximum(tissue, 1e-6), 1.0), 1.0)
  cortex = cv.vdist >= FAR_MM - 1
  keep = np.where(cortex, keep, 1.0).astype(np.float32)
  cv.gm, cv.wm = cv.gm * keep, cv.wm * keep


_RIBBON_MM = 2.5  # cortical thickness lining each bank of a carved sulcus


def carve_sulci(rng: np.random.Generator, cv: Canvas, depth_mm: float, width_mm: float,
                spacing_mm: float) -> None:
  """Sulci the MNI152 average lacks (averaging blurs them away): CSF clefts on the zero surfaces
  of a smooth random field, `width_mm` wide at the brain's surface and closing `depth_mm` deep,
  lined with grey matter. Real convexities show such dark branching CSF; a model that never saw
  it took it for an old cortical infarct's cavity (docs/sim_to_real.md, round 6)."""
  if depth_mm <= 0:
    return
  field = smooth_noise(rng, cv.grid, spacing_mm)[0]
  slope = np.sqrt(sum(g * g for g in np.gradient(field, *cv.grid.step)))
  distance = np.abs(field) / np.maximum(slope, 1e-6)  # mm to the zero surface, to first order
  depth = ndimage.distance_transform_edt(cv.mask > 0.5, sampling=cv.grid.step)
  taper = np.clip(1.0 - depth / depth_mm, 0.0, 1.0)
  taper *= cv.vdist >= FAR_MM - 1  # the cortex only, away from the ventricles
  half = 0.5 * width_mm * taper
  cleft = np.clip(half - distance + 0.5, 0.0, 1.0) * np.minimum(2.0 * half, 1.0)
  lining = np.clip(1.0 - (distance - half) / _RIBBON_MM, 0.0, 1.0) * (taper > 0)
  moved = cv.wm * lining
  keep = (1.0 - cleft).astype(np.float32)
  cv.gm = ((cv.gm + moved) * keep).astype(np.float32)
  cv.wm = ((cv.wm - moved) * keep).astype(np.float32)
