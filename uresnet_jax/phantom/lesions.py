"""WMH and stroke lesions: shapes, placement in the brain, and the labels a rater draws."""
import dataclasses
import math

import ml_collections
import numpy as np
from scipy import ndimage

from uresnet_jax.common.labelling import BACKGROUND, WMH, STROKE
from uresnet_jax.phantom.anatomy import FAR_MM, Anatomy, Canvas
from uresnet_jax.phantom.fields import clipped_box, rotation_matrix
from uresnet_jax.phantom.knobs import uniform


def _ramp(margin_mm: np.ndarray, edge_mm: float) -> np.ndarray:
  """Lesion fraction from the distance inside the border: 0.5 on it, 0 to 1 over edge_mm."""
  return np.clip(0.5 + margin_mm / edge_mm, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Borders:
  """How WMH borders look (mm): partial-volume ramp, unlabelled bright rim, halo width."""
  edge: float
  shrink: float
  halo: float


def deep_lesions(rng: np.random.Generator, cv: Canvas, severity: float, max_voxels: int,
                 borders: Borders,
                 config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Punctate deep-WM foci, radially elongated, clustering into confluent patches with severity;
  some on the ventricle wall or below the tentorium, as the knobs ask.

  Returns the lesion fraction as seen (intensity) and as labelled (border shrunk).
  """
  seen, label = np.zeros(cv.grid.shape, np.float32), np.zeros(cv.grid.shape, np.float32)
  candidates = np.flatnonzero((cv.wm > 0.65) & (cv.vdist > 6) & _cerebral(cv))
  if candidates.size == 0:
    return seen, label
  # The other sites, each taken with its knob's probability, in turn; a site at probability 0 is
  # neither computed nor drawn for, so every earlier cohort keeps its lesions, bit for bit.
  sites = [(p, np.flatnonzero(where(cv))) for p, where in (
      (config.juxtaventricular_probability, _on_ventricle_wall),
      (config.infratentorial_probability, _infratentorial)) if p > 0]
  sites = [(p, site) for p, site in sites if site.size > 0]
  count = uniform(rng, config.deep_count) * (1 + config.deep_count_severity_gain * severity)
  radius_gain = 1 + config.deep_radius_severity_gain * severity
  p_cluster = float(np.interp(severity, [0, 1], config.deep_cluster_probability))
  lo_size, hi_size = config.deep_cluster_size
  painted = 0
  for _ in range(int(round(count))):
    site = next((site for p, site in sites if rng.uniform() < p), candidates)
    centre = np.array(np.unravel_index(rng.choice(site), cv.grid.shape), float)
    radius = uniform(rng, config.deep_radius_mm) * radius_gain
    foci = [(centre, radius)]
    if rng.uniform() < p_cluster:
      for _ in range(int(rng.integers(lo_size, hi_size + 1))):
        foci.append((centre + rng.normal(0.0, 1.3 * radius, 3) / cv.grid.step,
                     radius * rng.uniform(0.6, 1.0)))
    for c, r in foci:
      semi = np.array([r, r * rng.uniform(0.7, 1.0), r * uniform(rng, config.deep_elongation)])
      box = clipped_box(c, (semi + borders.shrink + borders.edge) / cv.grid.step + 1, cv.grid.shape)
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


def _cerebral(cv: Canvas) -> np.ndarray:
  """Inside the brain, above MNI z -15: where the deep white matter lesions lie."""
  return (cv.mask > 0.9) & (cv.mni[2] > -15)


def _on_ventricle_wall(cv: Canvas) -> np.ndarray:
  """Where juxtaventricular lesions are centred: 1-4 mm from the ventricles, some white matter."""
  return (cv.wm > 0.3) & (cv.vdist > 1) & (cv.vdist <= 4) & _cerebral(cv)


def _infratentorial(cv: Canvas) -> np.ndarray:
  """Where brainstem and cerebellar lesions lie: the brainstem from the midbrain down (MNI
  |x| < 12, y -42 to -12, z -50 to -5; the template calls it part grey, so any tissue) and the
  cerebellar white matter."""
  x, y, z = cv.mni
  brainstem = ((np.abs(x) < 12) & (y > -42) & (y < -12) & (z > -50) & (z < -5)
               & (cv.wm + cv.gm > 0.8))
  cerebellum = (y < -42) & (z < -15) & (cv.wm > 0.65)
  return (brainstem | cerebellum) & (cv.mask > 0.9)


def periventricular(rng: np.random.Generator, cv: Canvas, texture: np.ndarray, n_voxels: int,
                    exclude: np.ndarray, borders: Borders,
                    config: ml_collections.ConfigDict) -> tuple[np.ndarray, ...]:
  """Caps and rims hugging the ventricles that thicken into a confluent band as n_voxels grows.

  Returns the lesion fraction as seen and as labelled, and the faint unlabelled halo around it.
  """
  seen, label, halo = (np.zeros(cv.grid.shape, np.float32) for _ in range(3))
  cand = np.flatnonzero((cv.vdist > -0.5) & (cv.vdist < FAR_MM - 1) & (cv.wm > 0.15)
                        & (cv.mask > 0.5) & (exclude < 0.5))
  n_voxels = min(n_voxels, cand.size - 1)
  if n_voxels <= 0:
    return seen, label, halo
  decay = uniform(rng, config.pv_decay_mm)
  y = cv.mni[1].reshape(-1)[cand]
  caps = 1 / (1 + np.exp(-(y - 5) / 4)) + 1 / (1 + np.exp(-(-30 - y) / 4))  # frontal, occipital
  wm = cv.wm.reshape(-1)[cand]
  log_field = (-np.maximum(cv.vdist.reshape(-1)[cand], 0) / decay
               + np.log1p(uniform(rng, config.pv_cap_weight) * caps)
               + uniform(rng, config.pv_texture) * texture.reshape(-1)[cand]
               + np.log(np.clip((wm - 0.15) / 0.4, 1e-3, 1.0)))
  threshold = np.partition(log_field, log_field.size - n_voxels)[log_field.size - n_voxels]
  margin = (log_field - threshold) * decay + borders.shrink  # ~ mm inside the seen border
  focus = _ramp(margin, borders.edge)
  seen.reshape(-1)[cand] = focus
  halo.reshape(-1)[cand] = np.clip(1 + margin / borders.halo, 0.0, 1.0) * (1 - focus)
  label.reshape(-1)[cand] = _ramp(margin - borders.shrink, borders.edge)
  return seen, label, halo


def _paint_stroke(cv: Canvas, box: tuple[slice, ...], margin: np.ndarray, rim_mm: float | None,
                  edge_mm: float, out: tuple[np.ndarray, np.ndarray], swelling: float = 0.0) -> None:
  """Adds an infarct (margin: mm inside its border) to the stroke and, if old, cavity fractions.

  A recent infarct swells (swelling > 0): it takes in that share of the sulcal CSF inside it, as
  effaced sulci do on FLAIR; the ventricles stay CSF.
  """
  stroke, cavity = out
  tissue = np.clip((cv.gm[box] + cv.wm[box] - 0.2) / 0.4, 0, 1)
  if swelling > 0 and rim_mm is None:
    tissue = np.maximum(tissue, swelling * np.clip(cv.mask[box], 0, 1) * (cv.vdist[box] > 2))
  frac = _ramp(margin, edge_mm) * tissue
  stroke[box] = np.maximum(stroke[box], frac)
  if rim_mm is not None:
    cavity[box] = np.maximum(cavity[box], np.minimum(_ramp(margin - rim_mm, edge_mm), frac))


def _ellipsoid_stroke(cv: Canvas, centre: np.ndarray, semi: np.ndarray, rotation: np.ndarray,
                      rim_mm: float | None, edge_mm: float, out: tuple[np.ndarray, np.ndarray],
                      swelling: float = 0.0, lobes: np.ndarray | None = None) -> None:
  """Striatocapsular or thalamic infarct, or lacune: a rotated ellipsoid in MNI mm.

  lobes (canvas-sized, or None: smooth) is subtracted from the normalised radius: the border moves
  out where it is positive, by that share of the semi-axis, for a lobulated outline.
  """
  reach = 1.0 if lobes is None else 1.0 + float(np.abs(lobes).max())  # the farthest lobe
  box = cv.mni_box(centre, float(semi.max()) * reach)
  if box is None:
    return
  rel = cv.mni[(slice(None),) + box] - centre[:, None, None, None]
  local = np.einsum("ij,j...->i...", rotation.T, rel)
  rho = np.sqrt(sum((local[a] / semi[a])**2 for a in range(3)))
  if lobes is not None:
    rho = rho - lobes[box]
  _paint_stroke(cv, box, (1 - rho) * semi.min(), rim_mm, edge_mm, out, swelling)


TERRITORIES = ("mca", "aca", "pca", "watershed")  # order of config.cortical_territory_weights


def _territory_ray(rng: np.random.Generator, territory: str) -> tuple[np.ndarray, np.ndarray]:
  """Apex (MNI mm, deep) and unit axis (out to the cortex) of an arterial territory's wedge."""
  side = rng.choice([-1.0, 1.0])
  if territory == "aca":  # medial frontal and parietal cortex, up along the midline
    apex = np.array([side * rng.uniform(4, 10), rng.uniform(-20, 30), rng.uniform(10, 25)])
    axis = np.array([side * rng.uniform(0.1, 0.4), rng.uniform(-0.3, 0.6), 1.0])
  elif territory == "pca":  # occipital lobe and the medial temporal lobe, back from the thalamus
    apex = np.array([side * rng.uniform(8, 18), rng.uniform(-45, -30), rng.uniform(-8, 10)])
    axis = np.array([side * rng.uniform(0.1, 0.6), -1.0, rng.uniform(-0.4, 0.3)])
  else:  # watershed: the superolateral convexity between the middle and anterior/posterior arteries
    apex = np.array([side * rng.uniform(15, 24), rng.uniform(-55, 15), rng.uniform(15, 32)])
    axis = np.array([side * rng.uniform(0.5, 1.0), rng.uniform(-0.4, 0.4), rng.uniform(0.6, 1.0)])
  return apex, axis / np.linalg.norm(axis)


def _cortical_stroke(rng: np.random.Generator, cv: Canvas, anatomy: Anatomy,
                     texture: np.ndarray, rim_mm: float | None, edge_mm: float,
                     config: ml_collections.ConfigDict, out: tuple[np.ndarray, np.ndarray],
                     ray: tuple[np.ndarray, np.ndarray] | None = None, extent: float = 1.0,
                     swelling: float = 0.0) -> None:
  """A wedge from a deep apex out to the cortex: a middle cerebral artery branch infarct, or the
  territory of `ray` (apex, axis). `extent` < 1 scales the wedge down to that share of its
  depth, towards the cortex: a small cortical infarct."""
  if ray is None:
    side = rng.choice([-1.0, 1.0])
    apex = np.array([side * rng.uniform(12, 22), rng.uniform(-40, 20), rng.uniform(-2, 30)])
    axis = np.array([side, rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 0.7)])
    axis /= np.linalg.norm(axis)
  else:
    apex, axis = ray
  steps = np.arange(1.0, 120.0)
  rays = apex[:, None] + axis[:, None] * steps - anatomy.origin[:, None]
  inside = ndimage.map_coordinates(anatomy.mask, rays, order=0) > 0.5
  depth = float(steps[np.argmin(inside)]) if not inside.all() else 60.0
  start = 8.0  # the wedge starts this far from its apex
  if extent < 1:  # the same cone scaled down towards the cortex
    apex = apex + axis * (1 - extent) * depth
    depth, start = depth * extent, start * extent
  # Elliptical cone, wider superior-inferior than in the axial plane, irregular by the texture.
  across = np.cross(axis, [0.0, 0.0, 1.0])
  if np.linalg.norm(across) < 0.3:  # a wedge pointing up: its "across" is left-right
    across = np.cross(axis, [0.0, 1.0, 0.0])
  across /= np.linalg.norm(across)
  up = np.cross(across, axis)
  tan_a = math.tan(np.deg2rad(uniform(rng, config.cortical_half_angle_deg)))
  tan_u = tan_a * rng.uniform(1.0, 1.6)
  box = cv.mni_box(apex + axis * depth / 2, depth / 2 + depth * tan_u + 4)
  if box is None:
    return
  rel = cv.mni[(slice(None),) + box] - apex[:, None, None, None]
  t = np.maximum(np.einsum("i,i...->...", axis, rel), 1e-3)
  rho = np.hypot(np.einsum("i,i...->...", across, rel) / tan_a,
                 np.einsum("i,i...->...", up, rel) / tan_u) / t
  margin = np.minimum((1 + 0.2 * texture[box] - rho) * t * tan_a, t - start)
  _paint_stroke(cv, box, margin, rim_mm, edge_mm, out, swelling)


def strokes(rng: np.random.Generator, cv: Canvas, anatomy: Anatomy, texture: np.ndarray,
            edge_mm: float, config: ml_collections.ConfigDict,
            rng_kind: np.random.Generator,
            lobes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str]:
  """Stroke and cavity fractions and the stroke type ("none", "cortical+lacunar", ...).

  rng_kind draws what the neutral defaults of the stroke-realism knobs leave out (territory,
  extent, swelling, thalamic site, recent lacunes, embolic infarcts), so that those defaults
  leave every draw of `rng` as it was. lobes (None: smooth ellipsoids) makes the outline of every
  ellipsoid infarct lobulated (_ellipsoid_stroke).
  """
  stroke = np.zeros(cv.grid.shape, np.float32)
  cavity = np.zeros(cv.grid.shape, np.float32)
  if rng.uniform() >= config.stroke_probability:
    return stroke, cavity, "none"
  weights = np.asarray(config.stroke_type_weights, float)
  kind = ("cortical", "striatocapsular", "lacunar")[rng.choice(3, p=weights / weights.sum())]
  kinds = [kind]
  swelling = uniform(rng_kind, config.recent_swelling)

  def rim() -> float | None:
    if rng.uniform() < config.old_infarct_probability:
      return uniform(rng, config.gliotic_rim_mm)
    return None

  if kind == "cortical":
    territory = _territory(rng_kind, config)
    ray = None if territory == "mca" else _territory_ray(rng_kind, territory)
    _cortical_stroke(rng, cv, anatomy, texture, rim(), edge_mm, config, (stroke, cavity), ray,
                     uniform(rng_kind, config.cortical_extent), swelling)
    kinds[0] = kind if territory == "mca" else f"cortical_{territory}"
  elif kind == "striatocapsular":
    side = rng.choice([-1.0, 1.0])
    centre = np.array([side * rng.uniform(20, 27), rng.uniform(-6, 10),
                       uniform(rng, config.striatocapsular_centre_z_mm)])
    semi = np.array([uniform(rng, r) for r in config.striatocapsular_semi_axes_mm])
    rotation = rotation_matrix([rng.uniform(-25, 25), rng.uniform(-10, 10),
                                side * rng.uniform(0, 25)])
    if rng_kind.uniform() < config.thalamic_probability:  # deep grey matter further back
      centre = np.array([side * rng_kind.uniform(8, 16), rng_kind.uniform(-28, -12),
                         rng_kind.uniform(0, 12)])
      semi = semi * rng_kind.uniform(0.4, 0.8)
      kinds[0] = "thalamic"
    _ellipsoid_stroke(cv, centre, semi, rotation, rim(), edge_mm, (stroke, cavity), swelling,
                      lobes)
  n_lacunes = 0
  if kind == "lacunar":
    n_lacunes = int(rng.integers(config.lacune_count[0], config.lacune_count[1] + 1))
  elif rng.uniform() < config.extra_lacune_probability:
    n_lacunes = 1
    kinds.append("lacunar")
  for _ in range(n_lacunes):
    radius = uniform(rng, config.lacune_diameter_mm) / 2
    centre = _deep_site(rng, anatomy, radius)
    semi = radius * rng.uniform(0.75, 1.25, 3)
    rim_mm = min(uniform(rng, config.gliotic_rim_mm) * 0.6, radius / 2)
    if rng_kind.uniform() < config.recent_lacune_probability:  # recent: bright, not cavitated
      rim_mm = None
    _ellipsoid_stroke(cv, centre, semi, rotation_matrix(rng.uniform(-30, 30, 3)), rim_mm, edge_mm,
                      (stroke, cavity), swelling, lobes)
  n_emboli = int(rng_kind.integers(config.embolic_count[0], config.embolic_count[1] + 1))
  for _ in range(n_emboli):  # small infarcts of an embolic shower, cortical or subcortical
    old = rng_kind.uniform() < config.old_infarct_probability
    rim_mm = uniform(rng_kind, config.gliotic_rim_mm) * 0.6 if old else None
    if rng_kind.uniform() < 0.5:
      ray = _territory_ray(rng_kind, str(rng_kind.choice(TERRITORIES[1:])))
      if rng_kind.uniform() < 0.5:
        ray = _territory_ray(rng_kind, "watershed")
        ray = (ray[0] * [1.0, 1.0, 0.6], ray[1])  # lower on the convexity: the MCA's cortex
      _cortical_stroke(rng_kind, cv, anatomy, texture, rim_mm, edge_mm, config, (stroke, cavity),
                       ray, rng_kind.uniform(0.1, 0.3), swelling)
    else:
      radius = rng_kind.uniform(2.0, 8.0)
      centre = _deep_site(rng_kind, anatomy, radius)
      _ellipsoid_stroke(cv, centre, radius * rng_kind.uniform(0.7, 1.3, 3),
                        rotation_matrix(rng_kind.uniform(-30, 30, 3)),
                        None if rim_mm is None else min(rim_mm, radius / 2), edge_mm,
                        (stroke, cavity), swelling, lobes)
  if n_emboli:
    kinds.append("embolic")
  return stroke, cavity, "+".join(kinds)


def _territory(rng: np.random.Generator, config: ml_collections.ConfigDict) -> str:
  """A cortical infarct's arterial territory, drawn by config.cortical_territory_weights."""
  weights = np.asarray(config.cortical_territory_weights, float)
  if weights[1:].sum() == 0:
    return "mca"
  return TERRITORIES[int(rng.choice(len(TERRITORIES), p=weights / weights.sum()))]


def _deep_site(rng: np.random.Generator, anatomy: Anatomy, radius: float) -> np.ndarray:
  """MNI mm of a site in deep grey or white matter, clear of the ventricles."""
  for _ in range(20):
    side = rng.choice([-1.0, 1.0])
    centre = np.array([side * rng.uniform(10, 30), rng.uniform(-25, 20), rng.uniform(-5, 30)])
    voxel = tuple(np.round(centre - anatomy.origin).astype(int))
    if anatomy.vdist[voxel] > radius + 2 and anatomy.gm[voxel] + anatomy.wm[voxel] > 0.9:
      break
  return centre


def rater_labels(wmh: np.ndarray, stroke: np.ndarray, csf: np.ndarray, max_csf: float,
                 brain: np.ndarray) -> np.ndarray:
  """Majority labels from lesion fractions, as a rater sees them.

  Stroke wins a tie with WMH; a WMH voxel averaged with more than max_csf of (dark) CSF is not
  hyperintense and stays unlabelled.
  """
  wmh = np.where(csf <= max_csf, wmh, 0)
  mixed = np.where(stroke + wmh >= 0.5, np.where(stroke >= wmh, STROKE, WMH), BACKGROUND)
  labels = np.where(stroke >= 0.5, STROKE, np.where(wmh >= 0.5, WMH, mixed))
  return (labels * brain).astype(np.uint8)


def drop_specks(labels: np.ndarray, min_voxels: float) -> np.ndarray:
  """Unlabels WMH components (26-connected) under min_voxels: raters do not outline specks."""
  components, count = ndimage.label(labels == WMH, structure=np.ones((3, 3, 3)))
  small = np.flatnonzero(np.bincount(components.ravel(), minlength=count + 1) < min_voxels)
  labels = labels.copy()
  labels[np.isin(components, small[small > 0])] = 0
  return labels
