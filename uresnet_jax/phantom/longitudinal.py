"""The longitudinal phantom: two visits of one phantom subject with planted change between them
(new WMH, a growing or a shrinking WMH, a new stroke, or nothing), the head moved by a known rigid
transform and the second visit acquired differently (slice thickness, contrast, bias field, noise).

Each subject is rendered once on a 1 mm grid (the cross-sectional generator, untouched, with a 1 mm
protocol): the anatomy. The change is painted into a copy of it, and each visit is an acquisition
of its anatomy: sampled on the visit's slice stack (the follow-up's through the planted
transform), averaged over thick slices, then given its own contrast, bias field and noise. Layout
(docs/cohorts.md, "Longitudinal pairs"): `subjects.csv` with one row per visit (subject, visit,
flair, labels, brain_mask; the baseline first), `<subject>/<visit>/*.nii.gz`, and
`truth/<subject>.json` (`followup_to_baseline`, `kind`, `events`) with `truth/<subject>_new.nii.gz`
(the planted new lesions on the follow-up's grid, voxel value 10 * class + 2).
"""
import concurrent.futures
import csv
import io
import json
import math
import multiprocessing
import os
import pathlib
import shutil
from typing import Any

import ml_collections
import numpy as np
from scipy import ndimage

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.common.labelling import CLASSES, STROKE, WMH
from uresnet_jax.data import nifti_io
from uresnet_jax.phantom.fields import Grid, rotation_matrix, smooth_noise
from uresnet_jax.phantom.knobs import uniform, validate_config
from uresnet_jax.phantom.lesions import rater_labels
from uresnet_jax.phantom.subject import generate_subject, subject_name

KINDS = ("new_wmh", "stable", "new_stroke", "growth", "shrinkage")  # pair i is KINDS[i % 5]
VISITS = ("ses-01", "ses-02")
MANIFEST = "subjects.csv"
COLUMNS = ("subject", "visit", "flair", "labels", "brain_mask")
_NEW = 2  # the event code of a new lesion (longitudinal/events.EVENTS["new"])
_SCALE = 1000.0  # stored FLAIR = relative intensity x this, as the cross-sectional phantom has it


def get_config() -> ml_collections.ConfigDict:
  """The knobs of the pairs; (lo, hi) tuples are drawn uniformly per subject."""
  c = ml_collections.ConfigDict()
  c.thickness_mm = (4, 5, 6)  # each visit's slice thickness is drawn from these (whole mm: the
  #                             anatomy's 1 mm slices averaged): the clinical 2D FLAIR protocols
  #                             (4-6.5 mm) the phantom cohort and the bundled model know
  c.rotation_deg = (-4.0, 4.0)  # planted head rotation about each axis between the visits
  c.translation_mm = (-5.0, 5.0)  # planted head shift along each axis
  # The new WMH of a new_wmh pair (mm3 on the anatomy): several, from just over the 10 mm3 that
  # MSSEG-2-style scoring counts up to a large focus. Ellipsoids 1.5x longer superior-inferior.
  c.new_wmh_mm3 = (15.0, 30.0, 60.0, 120.0, 250.0)
  # The new stroke of a new_stroke pair: a subcortical infarct that has cavitated by the follow-up
  # (visits are months to years apart), as the cross-sectional phantom draws old infarcts: a
  # CSF-dark core inside a bright gliotic rim; sized between its lacunes and striatocapsular
  # infarcts.
  c.new_stroke_semi_axes_mm = ((5.0, 8.0), (6.0, 10.0), (6.0, 10.0))
  c.gliotic_rim_mm = (1.5, 3.0)
  c.infarct_intensity = (0.9, 1.2)  # the rim's intensity relative to the subject's WMH
  c.cavity_intensity = (0.1, 0.25)  # the core's, relative to white matter (suppressed CSF)
  c.growth_mm = (1.5, 2.5)  # a growing WMH's border moves out this far
  c.shrinkage_mm = (1.5, 2.0)  # a shrinking WMH's border moves in this far
  c.change_semi_axes_mm = ((3.5, 5.0), (3.5, 5.0), (4.5, 7.0))  # the WMH that grows or shrinks
  c.min_separation_mm = 15.0  # between the planted new lesions: each one lesion of the truth
  c.contrast_gamma = (0.85, 1.15)  # follow-up intensity = baseline ^ gamma: another scanner
  c.bias_field_std = (0.02, 0.06)  # each visit's own smooth log bias field
  c.bias_field_smoothness_mm = 60.0
  c.noise_std = (0.02, 0.04)  # each visit's Rician noise (x white matter), after slice averaging
  return c


def anatomy_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The cross-sectional generator's knobs for the 1 mm anatomy: one 1 mm protocol, RAS storage
  (the third axis is the slice axis), no slice gap."""
  anatomy = ml_collections.ConfigDict(config.to_dict())
  anatomy.protocols, anatomy.protocol_weights = ((1.0, 1.0, 1.0),), (1.0,)
  anatomy.random_protocol_probability = 0.0
  anatomy.slice_gap_mm = (0.0, 0.0)
  anatomy.orientation, anatomy.orientations = "RAS", ()
  return anatomy


def _ellipsoid(shape: tuple[int, ...], centre: np.ndarray, semi: np.ndarray,
               extent: np.ndarray | None = None) -> tuple[tuple[slice, ...], np.ndarray]:
  """The box around an ellipsoid on a 1 mm grid (or around semi-axes `extent`) and the
  ellipsoid's lesion fraction there (1 mm ramp)."""
  extent = semi if extent is None else extent
  lo = np.maximum(np.floor(centre - extent - 2).astype(int), 0)
  hi = np.minimum(np.ceil(centre + extent + 3).astype(int), shape)
  box = tuple(slice(a, b) for a, b in zip(lo, hi))
  d = [(np.arange(s.start, s.stop) - centre[a]) / semi[a] for a, s in enumerate(box)]
  rho = np.sqrt(d[0][:, None, None]**2 + d[1][None, :, None]**2 + d[2][None, None, :]**2)
  return box, np.clip(0.5 + (1 - rho) * semi.min(), 0.0, 1.0).astype(np.float32)


class _Anatomy:
  """A subject's 1 mm anatomy being edited: FLAIR, labels, and what was planted new."""

  def __init__(self, subject: dict[str, Any]):
    self.flair = subject["flair"].astype(np.float32) / _SCALE
    self.labels = subject["labels"].copy()
    self.brain = subject["brain_mask"] > 0
    self.wm = subject["wm"]
    self.affine = subject["affine"]
    normal = self.brain & (self.wm > 0.9) & (self.labels == 0)
    self.wm_level = float(np.median(self.flair[normal]))
    wmh = self.labels == WMH
    self.wmh_level = float(np.median(self.flair[wmh])) if wmh.any() else 1.9 * self.wm_level
    self.local = ndimage.gaussian_filter(self.flair, 1.5)  # intensity without the noise
    self.new = {WMH: np.zeros(self.flair.shape, np.float32),
                STROKE: np.zeros(self.flair.shape, np.float32)}
    self.depth = ndimage.distance_transform_edt(self.brain)  # mm from the brain's edge
    self.clear = ndimage.distance_transform_edt(self.labels == 0)  # mm from any lesion

  def paint(self, box: tuple[slice, ...], fraction: np.ndarray, level: float, label: int) -> None:
    """Moves the intensity towards `level` by the fraction (keeping the noise) and labels it."""
    fraction = fraction * self.brain[box]
    step = fraction * (level - self.local[box])
    self.flair[box] += step
    self.local[box] += step  # a later change paints over this one
    self.labels[box] = np.where(fraction >= 0.5, label, self.labels[box])

  def site(self, rng: np.random.Generator, away_mm: float, taken: list[np.ndarray],
           separation: float) -> np.ndarray:
    """A voxel in deep white matter, `away_mm` from lesions and the brain's edge, `separation`
    from the sites already taken."""
    ok = (self.wm > 0.9) & (self.depth > 12) & (self.clear > away_mm)
    candidates = np.argwhere(ok[::2, ::2, ::2]) * 2
    if len(candidates) == 0:
      raise InputError("longitudinal phantom: no deep white matter left to plant a lesion in")
    for _ in range(200):
      centre = candidates[rng.integers(len(candidates))].astype(float)
      if all(np.linalg.norm(centre - t) >= separation for t in taken):
        return centre
    return centre


def _plant_new(anatomy: _Anatomy, rng: np.random.Generator, kind: str,
               config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """New WMH (several sizes) or a new stroke, in deep white matter clear of other lesions."""
  planted, taken = [], []
  if kind == "new_wmh":
    for volume in config.new_wmh_mm3:
      r = (3 * volume / (4 * math.pi * 1.5))**(1 / 3)
      semi = np.array([r, r, 1.5 * r])
      centre = anatomy.site(rng, semi.max() + 3, taken, config.min_separation_mm)
      box, fraction = _ellipsoid(anatomy.flair.shape, centre, semi)
      anatomy.paint(box, fraction, anatomy.wmh_level, WMH)
      anatomy.new[WMH][box] = np.maximum(anatomy.new[WMH][box], fraction * anatomy.brain[box])
      taken.append(centre)
      planted.append({"class": "wmh", "planted_mm3": volume, "voxel": centre})
  else:
    semi = np.array([uniform(rng, r) for r in config.new_stroke_semi_axes_mm])
    centre = anatomy.site(rng, semi.max() + 3, taken, config.min_separation_mm)
    box, fraction = _ellipsoid(anatomy.flair.shape, centre, semi)
    anatomy.paint(box, fraction, anatomy.wmh_level * uniform(rng, config.infarct_intensity),
                  STROKE)
    core = np.maximum(semi - uniform(rng, config.gliotic_rim_mm), 1.0)
    _, cavity = _ellipsoid(anatomy.flair.shape, centre, core, semi)
    anatomy.paint(box, cavity, anatomy.wm_level * uniform(rng, config.cavity_intensity), STROKE)
    anatomy.new[STROKE][box] = np.maximum(anatomy.new[STROKE][box], fraction * anatomy.brain[box])
    planted.append({"class": "stroke", "planted_mm3": float(4 / 3 * math.pi * np.prod(semi)),
                    "voxel": centre})
  return planted


def _plant_changing(anatomy: _Anatomy, rng: np.random.Generator,
                    config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """A deep WMH at the baseline, clear of other lesions, that the follow-up grows or shrinks:
  its centre (anatomy voxel) and semi-axes (mm)."""
  semi = np.array([uniform(rng, r) for r in config.change_semi_axes_mm])
  centre = anatomy.site(rng, semi.max() + max(config.growth_mm) + 3, [], 0.0)
  box, fraction = _ellipsoid(anatomy.flair.shape, centre, semi)
  anatomy.paint(box, fraction, anatomy.wmh_level, WMH)
  return centre, semi


def _change_size(anatomy: _Anatomy, rng: np.random.Generator, kind: str, centre: np.ndarray,
                 semi: np.ndarray, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The follow-up of _plant_changing's WMH: its border moved out (growth) or in (shrinkage), the
  freed rim normal white matter again."""
  before = anatomy.labels == WMH
  step = uniform(rng, config.growth_mm if kind == "growth" else config.shrinkage_mm)
  after_semi = semi + (step if kind == "growth" else -step)
  extent = np.maximum(semi, after_semi)
  box, old = _ellipsoid(anatomy.flair.shape, centre, semi, extent)
  _, new = _ellipsoid(anatomy.flair.shape, centre, after_semi, extent)
  if kind == "growth":
    anatomy.paint(box, new, anatomy.wmh_level, WMH)
  else:
    anatomy.paint(box, np.clip(old - new, 0, 1), anatomy.wm_level, 0)
  region = np.zeros(anatomy.labels.shape, bool)
  region[box] = True
  after = (anatomy.labels == WMH) & region
  return dict(cls="wmh", event="enlarging" if kind == "growth" else "shrinking",
              volume_ml_baseline=float((before & region).sum()) / 1000,
              volume_ml_followup=float(after.sum()) / 1000, voxel=centre)


def _stack(anatomy_affine: np.ndarray, thickness: int) -> np.ndarray:
  """A visit's affine: the anatomy's in-plane grid, `thickness` of its 1 mm slices per slice."""
  s = np.eye(4)
  s[2, 2], s[2, 3] = thickness, (thickness - 1) / 2
  return anatomy_affine @ s


def _acquire(volumes: dict[str, np.ndarray], to_anatomy: np.ndarray, thickness: int,
             gamma: float, rng: np.random.Generator, wm_level: float,
             config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """One visit: the anatomy's FLAIR and label fractions sampled on the visit's 1 mm sub-slices
  (`to_anatomy`: sub-slice voxel -> anatomy voxel), averaged per thick slice, then the visit's
  contrast, bias field and noise; labels by majority as a rater draws them."""
  moved = not np.allclose(to_anatomy, np.eye(4))
  n = volumes["flair"].shape[2] // thickness

  def sample(x: np.ndarray) -> np.ndarray:
    if moved:
      x = ndimage.affine_transform(x, to_anatomy[:3, :3], to_anatomy[:3, 3], order=1)
    a, b, _ = x.shape
    return x[:, :, :n * thickness].reshape(a, b, n, thickness).mean(-1, dtype=np.float32)

  out = {k: sample(v) for k, v in volumes.items()}
  brain = out.pop("brain") >= 0.5
  flair = wm_level * (np.maximum(out.pop("flair"), 0) / wm_level)**gamma
  grid = Grid(flair.shape, np.zeros(3), np.array([1.0, 1.0, float(thickness)]))
  log_bias = smooth_noise(rng, grid, config.bias_field_smoothness_mm)[0]
  bias = np.exp(uniform(rng, config.bias_field_std) * log_bias)
  bias /= bias[brain].mean()
  sigma = uniform(rng, config.noise_std) * wm_level
  noise = rng.standard_normal((2,) + flair.shape, dtype=np.float32) * np.float32(sigma)
  flair = np.sqrt((flair * bias + noise[0])**2 + noise[1]**2) * brain
  labels = rater_labels(out["wmh"], out["stroke"], np.zeros_like(flair), 1.0, brain)
  new = np.zeros(flair.shape, np.uint8)
  for cls, value in ((WMH, 10 * WMH + _NEW), (STROKE, 10 * STROKE + _NEW)):
    key = f"new_{cls}"
    if key in out:  # at least half of the voxel's lesion is planted new
      total = out["wmh" if cls == WMH else "stroke"]
      new[(labels == cls) & (out[key] >= 0.5 * np.maximum(total, 1e-6))] = value
  return dict(flair=np.clip(np.round(flair * _SCALE), 0, np.iinfo(np.int16).max).astype(np.int16),
              labels=labels, brain_mask=brain.astype(np.uint8), new=new)


def planted_transform(rng: np.random.Generator, centre_mm: np.ndarray,
                      config: ml_collections.ConfigDict) -> np.ndarray:
  """Follow-up -> baseline scanner mm: a head turn about the brain's centre and a shift."""
  m = np.eye(4)
  m[:3, :3] = rotation_matrix([uniform(rng, config.rotation_deg) for _ in range(3)])
  m[:3, 3] = centre_mm - m[:3, :3] @ centre_mm + [uniform(rng, config.translation_mm)
                                                  for _ in range(3)]
  return m


def generate_pair(index: int, seed: int, config: ml_collections.ConfigDict,
                  pairs: ml_collections.ConfigDict) -> dict[str, Any]:
  """Subject `index`'s two visits (arrays and affines), its planted transform, kind and events;
  the anatomy is the cross-sectional subject (seed, index) rendered at 1 mm."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, index, 28]))  # the pairs' own stream
  pair = make_pair(generate_subject(index, seed, anatomy_config(config)),
                   KINDS[index % len(KINDS)], rng, pairs)
  pair["truth"] = dict(subject=subject_name(index), **pair["truth"])
  return dict(subject=subject_name(index), **pair)


def make_pair(subject: dict[str, Any], kind: str, rng: np.random.Generator,
              pairs: ml_collections.ConfigDict) -> dict[str, Any]:
  """Two visits of a subject's 1 mm anatomy (flair, labels, brain_mask, wm, affine as
  generate_subject returns them) with `kind`'s change planted: `visits` (baseline, follow-up
  arrays, the follow-up's with `new`), `affines`, `truth`."""
  anatomy = _Anatomy(subject)
  if kind in ("growth", "shrinkage"):  # a WMH of the baseline, planted where its change is clean
    changing = _plant_changing(anatomy, rng, pairs)
  base_volumes = dict(flair=anatomy.flair.copy(), wmh=(anatomy.labels == WMH).astype(np.float32),
                      stroke=(anatomy.labels == STROKE).astype(np.float32),
                      brain=anatomy.brain.astype(np.float32))
  centre = anatomy.affine[:3, :3] @ np.argwhere(anatomy.brain).mean(0) + anatomy.affine[:3, 3]
  matrix = planted_transform(rng, centre, pairs)
  planted, changed = [], []
  if kind in ("new_wmh", "new_stroke"):
    planted = _plant_new(anatomy, rng, kind, pairs)
  elif kind in ("growth", "shrinkage"):
    changed = [_change_size(anatomy, rng, kind, *changing, pairs)]
  follow_volumes = dict(flair=anatomy.flair, wmh=(anatomy.labels == WMH).astype(np.float32),
                        stroke=(anatomy.labels == STROKE).astype(np.float32),
                        brain=anatomy.brain.astype(np.float32))
  if kind in ("new_wmh", "new_stroke"):
    follow_volumes[f"new_{WMH if kind == 'new_wmh' else STROKE}"] = \
        anatomy.new[WMH if kind == "new_wmh" else STROKE]
  thickness = [int(rng.choice(pairs.thickness_mm)) for _ in VISITS]
  gamma = uniform(rng, pairs.contrast_gamma)
  baseline = _acquire(base_volumes, np.eye(4), thickness[0], 1.0, rng, anatomy.wm_level, pairs)
  to_anatomy = np.linalg.inv(anatomy.affine) @ matrix @ anatomy.affine
  followup = _acquire(follow_volumes, to_anatomy, thickness[1], gamma, rng, anatomy.wm_level,
                      pairs)
  affines = [_stack(anatomy.affine, t) for t in thickness]
  events = _new_events(followup["new"], affines[1])
  to_followup = np.linalg.inv(matrix) @ anatomy.affine  # anatomy voxel -> follow-up scanner mm
  for e in changed:
    x, y, z = to_followup[:3, :3] @ e.pop("voxel") + to_followup[:3, 3]
    events.append(_json_event(dict(e, centroid_x_mm=x, centroid_y_mm=y, centroid_z_mm=z)))
  for p in planted:
    p["centre_mm"] = (to_followup[:3, :3] @ p.pop("voxel") + to_followup[:3, 3]).tolist()
  truth = dict(kind=kind, followup_to_baseline=matrix.tolist(), events=events, planted=planted,
               thickness_mm=thickness, contrast_gamma=gamma, visits=list(VISITS))
  return dict(visits=(baseline, followup), affines=affines, truth=truth)


def _new_events(new: np.ndarray, affine: np.ndarray) -> list[dict[str, Any]]:
  """One `new` event per connected planted lesion on the follow-up's grid."""
  events = []
  voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
  for name, cls in CLASSES.items():
    components, count = ndimage.label(new == 10 * cls + _NEW, structure=np.ones((3, 3, 3)))
    for index in range(1, count + 1):
      voxels = np.argwhere(components == index)
      x, y, z = affine[:3, :3] @ voxels.mean(0) + affine[:3, 3]
      events.append(dict(cls=name, event="new", volume_ml_baseline=0.0,
                         volume_ml_followup=len(voxels) * voxel_ml,
                         centroid_x_mm=x, centroid_y_mm=y, centroid_z_mm=z))
  return [_json_event(e) for e in events]


def _json_event(e: dict[str, Any]) -> dict[str, Any]:
  """An event as truth/<subject>.json holds it ("class" is a keyword in Python, not in JSON)."""
  out = {"class": e.pop("cls")}
  out.update({k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in e.items()})
  return out


def _write_pair(out_dir: str, index: int, seed: int, config: ml_collections.ConfigDict,
                pairs: ml_collections.ConfigDict) -> dict[str, Any]:
  """Generates one pair into a temporary folder, renamed into place when complete."""
  out = pathlib.Path(out_dir)
  pair = generate_pair(index, seed, config, pairs)
  name = pair["subject"]
  tmp = out / f".tmp-{name}"
  shutil.rmtree(tmp, ignore_errors=True)
  for visit, arrays, affine in zip(VISITS, pair["visits"], pair["affines"]):
    (tmp / visit).mkdir(parents=True)
    for key in ("flair", "labels", "brain_mask"):
      nifti_io.save_nifti(tmp / visit / f"{key}.nii.gz", arrays[key], affine)
  truth = pair["truth"]
  (out / "truth").mkdir(exist_ok=True)
  nifti_io.save_nifti(out / "truth" / f"{name}_new.nii.gz", pair["visits"][1]["new"],
                      pair["affines"][1])
  atomic.write_text(out / "truth" / f"{name}.json", json.dumps(truth, indent=1))
  shutil.rmtree(out / name, ignore_errors=True)
  os.replace(tmp, out / name)
  return truth


def write_pairs(out_dir: str | os.PathLike, num_subjects: int, seed: int,
                config: ml_collections.ConfigDict,
                pairs: ml_collections.ConfigDict) -> pathlib.Path:
  """Writes a cohort of two-visit subjects (kinds in turn: KINDS) and returns its manifest,
  which is written last."""
  if num_subjects < 1:
    raise InputError(f"{out_dir}: the number of subjects must be at least 1, got {num_subjects}")
  validate_config(config)
  if min(pairs.thickness_mm) < 1 or any(int(t) != t for t in pairs.thickness_mm):
    raise InputError(f"thickness_mm={tuple(pairs.thickness_mm)}: whole millimetres, at least 1")
  out = pathlib.Path(out_dir)
  atomic.check_output_folder(out)
  out.mkdir(parents=True, exist_ok=True)
  workers = min(config.num_workers, num_subjects)
  args = [[str(out)] * num_subjects, range(num_subjects), [seed] * num_subjects,
          [config] * num_subjects, [pairs] * num_subjects]
  if workers <= 1:
    truths = list(map(_write_pair, *args))
  else:
    context = multiprocessing.get_context("spawn")  # safe under a parent that imported JAX
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
      truths = list(pool.map(_write_pair, *args))
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(COLUMNS)
  for truth in truths:
    for visit in VISITS:
      writer.writerow([truth["subject"], visit] + [f"{truth['subject']}/{visit}/{key}.nii.gz"
                                                   for key in COLUMNS[2:]])
  manifest = out / MANIFEST
  atomic.write_text(manifest, buffer.getvalue())
  return manifest
