"""Per-lesion change between a baseline and a follow-up: lesions matched by overlap on the baseline's
grid and each group of matched lesions named by what happened to it. Pure functions of arrays.

Lesions are the project's (26-connected per class, `inference.lesions.CONNECTIVITY`), found on each
visit's own grid; the follow-up's lesion ids are moved onto the baseline's grid (nearest voxel) by
the caller. Lesions of one class that overlap there form a group (a connected component of the
overlap graph), and the group's event is:
  - new: a follow-up lesion that overlaps no baseline lesion of its class (a follow-up stroke where
    the baseline had WMH is a new stroke), larger than the baseline's doubt there (its volume
    outnumbers, in mL, the baseline's voxels of p >= interval_low_p where it lies: else the
    baseline's volume interval holds it) and visible in the images: the FLAIR there brightened,
    against the lesion-free tissue around it (`against_surroundings`), by `new_wmh_contrast_z`
    robust SDs of the brain on average (a stroke: its voxels changed by `new_contrast_z` either
    way on average, since an infarct's bright rim and dark cavity cancel in a plain mean; by
    `new_stroke_unseen_contrast_z` where no baseline voxel there had a stroke p >= interval_low_p:
    the model's own sure change), as subtraction images confirm new MS lesions;
  - unconfirmed_new: a follow-up lesion that overlaps no baseline lesion of its class but fails
    the new lesion's rules (the baseline's doubt holds it, or the FLAIR did not change enough):
    present at follow-up, not segmented at baseline, and nothing says it appeared (the model may
    have missed it at baseline or called it now on the same tissue);
  - disappearing: a baseline lesion that overlaps no follow-up lesion of its class, the same way
    round but stricter (its voxels of p >= interval_high_p must outnumber the follow-up's doubt,
    and the FLAIR darken by `new_contrast_z`): the phantom plants no disappearing lesion, so
    nothing measured supports relaxing it as the new lesion's rule was;
  - unconfirmed_disappearing: its mirror, a baseline lesion that overlaps no follow-up lesion of
    its class but fails the disappearing lesion's rules: gone from the follow-up's segmentation,
    and nothing says it went;
  - merged: several baseline lesions overlap one (or more) follow-up lesion(s);
  - split: one baseline lesion overlaps several follow-up lesions;
  - enlarging / shrinking: one to one, and the volume changed by at least the config's relative
    AND absolute change, AND by more than the two visits' volume intervals allow (the follow-up's
    interval lies wholly above, or below, the baseline's; the baseline lesion's interval is
    local, its high end the unsure voxels within `neighbourhood_mm` of it), or, enlarging, as a new lesion is
    new: past the baseline's high end, and the voxels it gained brightened as a new lesion's must
    (small WMH seldom have sure voxels, so the intervals alone would never part); else
  - stable.
A lesion that overlaps nothing is matched first within `match_voxels` voxels (registration and
nearest-voxel resampling move a lesion by up to a voxel), so a 1-voxel shift does not make it new.
"""
import dataclasses
from typing import Mapping, Sequence

import ml_collections
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from uresnet_jax.common import labelling
from uresnet_jax.inference import lesions

# The event codes of the change maps: voxel value 10 * class + code (12 a new WMH, 22 a new stroke).
EVENTS = {"stable": 1, "new": 2, "enlarging": 3, "shrinking": 4, "disappearing": 5, "merged": 6,
          "split": 7, "unconfirmed_new": 8, "unconfirmed_disappearing": 9}
CHANGE_COLUMNS = ("subject", "baseline", "followup", "class", "event", "volume_ml_baseline",
                  "volume_ml_followup", "change_ml", "lesions_baseline", "lesions_followup",
                  "centroid_x_mm", "centroid_y_mm", "centroid_z_mm")


def change_code(cls: str, event: str) -> int:
  """The change map's voxel value of a lesion of class `cls` ("wmh", "stroke") with `event`."""
  return 10 * labelling.CLASSES[cls] + EVENTS[event]


@dataclasses.dataclass(frozen=True)
class ClassLesions:
  """One class's lesions at one visit, on that visit's own grid; index 0 of each array unused."""
  ids: np.ndarray  # int32 lesion id per voxel, 0 outside lesions
  voxels: np.ndarray  # voxels per lesion
  low: np.ndarray  # voxels per lesion with p >= interval_high_p: the volume interval's low end
  high: np.ndarray  # voxels per lesion of its p >= interval_low_p region near it: the high end
  region: np.ndarray  # voxels per lesion of that whole region: the high end of a follow-up's
  wide_mask: np.ndarray  # bool per voxel: p >= interval_low_p, or a lesion
  centroids: np.ndarray  # (count + 1, 3) voxel coordinates

  @property
  def count(self) -> int:
    return len(self.voxels) - 1


@dataclasses.dataclass(frozen=True)
class VisitLesions:
  """Every class's lesions at one visit and the grid they lie on."""
  affine: np.ndarray
  classes: dict[str, ClassLesions]

  @property
  def voxel_ml(self) -> float:
    return labelling.voxel_volume_ml(self.affine)


def _near_high(ids: np.ndarray, count: int, wide_ids: np.ndarray, voxel_mm: np.ndarray,
               radius_mm: float) -> np.ndarray:
  """Per lesion, the voxels of the p >= interval_low_p region holding it that lie within
  `radius_mm` of it (a distance transform cropped around each lesion)."""
  reach = np.ceil(radius_mm / voxel_mm).astype(int)
  high = np.zeros(count + 1, np.int64)
  for i, box in enumerate(ndimage.find_objects(ids), 1):
    if box is None:
      continue
    box = tuple(slice(max(b.start - r, 0), b.stop + r) for b, r in zip(box, reach))
    lesion = ids[box] == i
    region = wide_ids[box] == wide_ids[box][lesion][0]  # a lesion lies in one region
    near = ndimage.distance_transform_edt(~lesion, sampling=voxel_mm) <= radius_mm
    high[i] = np.count_nonzero(near & region)
  return high


def visit_lesions(labels: np.ndarray, probabilities: np.ndarray, affine: np.ndarray,
                  low_p: float, high_p: float, neighbourhood_mm: float) -> VisitLesions:
  """A visit's lesions per class (the project's 26-connected lesions) with each lesion's volume
  interval: p >= `high_p` inside it (low end), the p >= `low_p` region holding it within
  `neighbourhood_mm` of it (high end), as predict's per-scan interval
  (`inference.lesions.volume_interval`) but lesion by lesion, and local: a small lesion's region
  may join a large one far away, whose doubt is not the small lesion's."""
  classes = {}
  voxel_mm = np.sqrt((np.asarray(affine, float)[:3, :3] ** 2).sum(0))
  for name, label in labelling.CLASSES.items():
    mask = labels == label
    ids, count = ndimage.label(mask, lesions.CONNECTIVITY)
    p = probabilities[..., label]
    wide_ids, _ = ndimage.label((p >= low_p) | mask, lesions.CONNECTIVITY)
    index = np.arange(count + 1)
    voxels = ndimage.sum_labels(mask, ids, index).astype(np.int64)
    low = ndimage.sum_labels(mask & (p >= high_p), ids, index).astype(np.int64)
    high = _near_high(ids, count, wide_ids, voxel_mm, neighbourhood_mm)
    region = np.zeros(count + 1, np.int64)
    centroids = np.zeros((count + 1, 3))
    if count:
      held = ndimage.maximum(wide_ids, ids, index[1:]).astype(int)  # a lesion lies in one region
      region[1:] = np.bincount(wide_ids.ravel())[held]
      centroids[1:] = np.asarray(ndimage.center_of_mass(mask, ids, index[1:]))
    classes[name] = ClassLesions(ids.astype(np.int32), voxels, low, high, region, wide_ids > 0,
                                 centroids)
  return VisitLesions(np.asarray(affine, float), classes)


@dataclasses.dataclass(frozen=True)
class Event:
  """One group of matched lesions of one class and what happened to it."""
  cls: str
  event: str
  baseline_ids: tuple[int, ...]  # lesion ids on the baseline's grid
  followup_ids: tuple[int, ...]  # lesion ids on the follow-up's own grid
  volume_ml_baseline: float
  volume_ml_followup: float
  centroid_mm: tuple[float, float, float]  # in the follow-up's scanner coordinates

  @property
  def code(self) -> int:
    return change_code(self.cls, self.event)

  def row(self, subject: str, baseline: str, followup: str) -> dict:
    """The event's changes.csv row (CHANGE_COLUMNS)."""
    return {"subject": subject, "baseline": baseline, "followup": followup, "class": self.cls,
            "event": self.event, "volume_ml_baseline": self.volume_ml_baseline,
            "volume_ml_followup": self.volume_ml_followup,
            "change_ml": self.volume_ml_followup - self.volume_ml_baseline,
            "lesions_baseline": len(self.baseline_ids), "lesions_followup": len(self.followup_ids),
            "centroid_x_mm": self.centroid_mm[0], "centroid_y_mm": self.centroid_mm[1],
            "centroid_z_mm": self.centroid_mm[2]}


def sort_key(event: Event) -> tuple:
  """New strokes first, then by class, event and size: the order of every table and the report."""
  return (not (event.cls == "stroke" and event.event == "new"), list(labelling.CLASSES).index(
      event.cls), EVENTS[event.event], -max(event.volume_ml_baseline, event.volume_ml_followup))


def _pairs(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
  """The (id in a, id in b) of every voxel where both are lesions."""
  both = (a > 0) & (b > 0)
  return set(zip(a[both].tolist(), b[both].tolist()))


def _near(ids: np.ndarray, targets: np.ndarray, unmatched: Sequence[int],
          voxels: int) -> set[tuple[int, int]]:
  """(lesion of `ids`, lesion of `targets`) for each unmatched lesion of `ids` that has a lesion of
  `targets` within `voxels` voxels (26-neighbourhood steps; the largest such id where several)."""
  if not voxels or not len(unmatched) or not targets.any():
    return set()
  reach = ndimage.grey_dilation(targets, footprint=np.ones((2 * voxels + 1,) * 3, bool))
  return _pairs(np.where(np.isin(ids, unmatched), ids, 0), reach)


def match(baseline_ids: np.ndarray, followup_ids_on_baseline: np.ndarray, n_baseline: int,
          n_followup: int, match_voxels: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
  """Groups of (baseline ids, follow-up ids) of one class: connected components of the graph whose
  edges join lesions that overlap on the baseline's grid, or, for a lesion overlapping none, lie
  within `match_voxels` voxels of each other."""
  edges = _pairs(baseline_ids, followup_ids_on_baseline)
  lone_b = sorted(set(range(1, n_baseline + 1)) - {b for b, _ in edges})
  lone_f = sorted(set(range(1, n_followup + 1)) - {f for _, f in edges})
  edges |= _near(baseline_ids, followup_ids_on_baseline, lone_b, match_voxels)
  edges |= {(b, f) for f, b in _near(followup_ids_on_baseline, baseline_ids, lone_f, match_voxels)}
  n = n_baseline + n_followup
  rows = [b - 1 for b, _ in edges]
  cols = [n_baseline + f - 1 for _, f in edges]
  graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n))
  _, component = connected_components(graph, directed=False)
  groups: dict[int, tuple[list[int], list[int]]] = {}
  for node, c in enumerate(component):
    side = groups.setdefault(int(c), ([], []))
    if node < n_baseline:
      side[0].append(node + 1)
    else:
      side[1].append(node - n_baseline + 1)
  return [(tuple(b), tuple(f)) for b, f in groups.values()]


def robust_z(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
  """`image` in robust SDs of its brain from the brain's median (1.4826 x the median absolute
  deviation): two visits' FLAIR on one scale whatever their scanners' gains."""
  values = np.asarray(image, np.float32)[np.asarray(brain, bool)]
  median = float(np.median(values)) if values.size else 0.0
  spread = 1.4826 * float(np.median(np.abs(values - median))) if values.size else 1.0
  return (np.asarray(image, np.float32) - median) / max(spread, 1e-6)


def against_surroundings(change: np.ndarray, lesion: np.ndarray, brain: np.ndarray,
                         voxel_mm: Sequence[float], sigma_mm: float) -> np.ndarray:
  """`change` minus its Gaussian-weighted mean (sigma `sigma_mm`) over the lesion-free brain around
  each voxel: a lesion's change against its surroundings', so that a bias field or a contrast
  that differs between the visits, or a thick slice's partial volume, does not pass for (or
  hide) a lesion that appeared. `lesion`: either visit's lesions; `brain`: where `change` holds."""
  sigma = sigma_mm / np.asarray(voxel_mm, float)
  weight = (np.asarray(brain, bool) & ~np.asarray(lesion, bool)).astype(np.float32)
  change = np.where(brain, np.asarray(change, np.float32), 0.0)
  around = ndimage.gaussian_filter(change * weight, sigma) / np.maximum(
      ndimage.gaussian_filter(weight, sigma), 1e-3)
  return np.where(brain, change - around, 0.0).astype(np.float32)


def cavities(change: np.ndarray, baseline_z: np.ndarray, followup_z: np.ndarray,
             brain: np.ndarray, lesion: np.ndarray, voxel_mm: Sequence[float],
             settings: ml_collections.ConfigDict) -> np.ndarray:
  """Where tissue became a cavity that neither visit's segmentation holds (bool, on the grid of
  the arrays): the FLAIR darkened against its surroundings by `new_contrast_z` (`change`, as
  `against_surroundings` gives it) and is CSF-dark at follow-up (`followup_z` <= -`cavity_z`),
  at least `cavity_away_mm` from the baseline's CSF-dark voxels and the brain's edge (ventricles
  and sulci shift between acquisitions), in 26-connected pieces of at least `cavity_ml` that do
  not touch a lesion of either visit (`lesion`; one next to a lesion is part of that lesion's
  event, and grids of other slice thickness leave such slivers). A cavitated infarct the model
  did not segment shows so: a new stroke seen in the images."""
  brain, lesion = np.asarray(brain, bool), np.asarray(lesion, bool)
  voxel_mm = np.asarray(voxel_mm, float)
  csf = ~brain | (baseline_z <= -settings.cavity_z)
  away = ndimage.distance_transform_edt(~csf, sampling=voxel_mm) >= settings.cavity_away_mm
  dark = (brain & away & ~lesion & (change <= -settings.new_contrast_z)
          & (followup_z <= -settings.cavity_z))
  ids, count = ndimage.label(dark, lesions.CONNECTIVITY)
  ml = np.bincount(ids.ravel(), minlength=count + 1) * float(np.prod(voxel_mm)) / 1000
  touching = np.bincount(ids[ndimage.binary_dilation(lesion, lesions.CONNECTIVITY)],
                         minlength=count + 1) > 0
  keep = (ml >= settings.cavity_ml) & ~touching
  keep[0] = False
  return keep[ids]


def add_lesions(found: ClassLesions, mask: np.ndarray) -> ClassLesions:
  """`found` with each 26-connected piece of `mask` outside its lesions as a lesion of its own,
  sure (its whole volume at both ends of its interval): what the images show and the model did
  not label (`cavities`)."""
  extra, count = ndimage.label(np.asarray(mask, bool) & (found.ids == 0), lesions.CONNECTIVITY)
  if not count:
    return found
  index = np.arange(1, count + 1)
  voxels = np.bincount(extra.ravel(), minlength=count + 1)[1:].astype(np.int64)
  centroids = np.asarray(ndimage.center_of_mass(extra > 0, extra, index)).reshape(count, 3)
  return ClassLesions(np.where(extra > 0, extra + found.count, found.ids).astype(np.int32),
                      np.concatenate([found.voxels, voxels]), np.concatenate([found.low, voxels]),
                      np.concatenate([found.high, voxels]), np.concatenate([found.region, voxels]),
                      found.wide_mask | (extra > 0),
                      np.concatenate([found.centroids, centroids]))


def _visible(cls: str, change: float | None, appeared: bool, unseen: bool,
             settings: ml_collections.ConfigDict) -> bool:
  """Whether a lesion at one visit only shows in the FLAIR (`change`: see `classify`; None: not
  measured): a WMH that `appeared` brightened, one that went darkened; a stroke changed, by less
  where the baseline's model saw no stroke there at all (`unseen`)."""
  if change is None:
    return True
  if cls == "wmh" and not appeared:
    change = -change
  needed = (settings.new_wmh_contrast_z if cls == "wmh" and appeared
            else settings.new_stroke_unseen_contrast_z if appeared and unseen
            else settings.new_contrast_z)
  return change >= needed


def classify(cls: str, n_baseline: int, n_followup: int, baseline: tuple[float, float, float],
             followup: tuple[float, float, float], change: float | None,
             settings: ml_collections.ConfigDict) -> str:
  """A group's event from its lesion counts and each visit's (volume, interval low, interval high)
  in mL (a visit without a lesion there: (0, 0, its p >= interval_low_p volume there));
  `change`: where a lesion lies at one visit only, the follow-up's FLAIR minus the baseline's
  (robust SDs) averaged over it, for a stroke its absolute value averaged; one to one, the same
  over the voxels the follow-up's lesion has outside the baseline's (where it grew).

  A new lesion needs a volume past the baseline's high end there; a disappearing one, and one to
  one an enlarging or a shrinking one, intervals that do not overlap (a change inside the
  interval is not a change); a new or a disappearing lesion also a visible change of the FLAIR
  (a new stroke where the baseline's high end is 0, no voxel of p >= interval_low_p there:
  `new_stroke_unseen_contrast_z`); an enlarging or a shrinking one a change past the relative
  AND the absolute threshold. A lesion also enlarges as a new lesion is new: past the baseline's
  high end, its gained voxels brightened (`change` measured, as a new lesion's). A follow-up
  lesion that is not new is unconfirmed_new, a baseline lesion that is not disappearing
  unconfirmed_disappearing."""
  (vb, lo_b, hi_b), (vf, lo_f, hi_f) = baseline, followup
  if not n_baseline:
    visible = _visible(cls, change, True, hi_b == 0, settings)
    return "new" if vf > hi_b and visible else "unconfirmed_new"
  if not n_followup:
    visible = _visible(cls, change, False, False, settings)
    return "disappearing" if lo_b > hi_f and visible else "unconfirmed_disappearing"
  if n_baseline > 1:
    return "merged"
  if n_followup > 1:
    return "split"
  ratio = 1.0 + settings.relative_change
  seen = change is not None and vf > hi_b and _visible(cls, change, True, False, settings)
  if vf - vb >= settings.absolute_change_ml and vf >= ratio * vb and (lo_f > hi_b or seen):
    return "enlarging"
  if vb - vf >= settings.absolute_change_ml and vb >= ratio * vf and hi_f < lo_b:
    return "shrinking"
  return "stable"


def find_events(baseline: VisitLesions, followup: VisitLesions,
                followup_ids_on_baseline: Mapping[str, np.ndarray],
                followup_wide_on_baseline: Mapping[str, np.ndarray], matrix: np.ndarray,
                settings: ml_collections.ConfigDict,
                brightening: np.ndarray | None = None) -> list[Event]:
  """Every class's events between two visits, new strokes first (`sort_key`).
  `followup_ids_on_baseline`, `followup_wide_on_baseline`: each class's follow-up lesion ids and
  `wide_mask` moved onto the baseline's grid; `matrix`: follow-up scanner mm -> baseline scanner
  mm (registration.Rigid.matrix); `brightening`: on the baseline's grid, the follow-up's
  `robust_z` FLAIR moved there minus the baseline's, `against_surroundings` (None: lesions at one
  visit only are not checked against the images)."""
  back = np.linalg.inv(np.asarray(matrix, float))
  events = []
  for cls in labelling.CLASSES:
    b, f = baseline.classes[cls], followup.classes[cls]
    moved = followup_ids_on_baseline[cls]
    # per lesion, the other visit's unsure voxels where it lies (baseline voxels): one count each
    unsure_b = np.bincount(moved[b.wide_mask], minlength=f.count + 1)
    unsure_f = np.bincount(b.ids[followup_wide_on_baseline[cls]], minlength=b.count + 1)
    if brightening is not None:  # per lesion, the mean change where it lies (see classify)
      weights = (brightening if cls == "wmh" else np.abs(brightening)).ravel()
      gain_f = np.bincount(moved.ravel(), weights, f.count + 1) / np.maximum(
          np.bincount(moved.ravel(), minlength=f.count + 1), 1)
      gain_b = np.bincount(b.ids.ravel(), weights, b.count + 1) / np.maximum(b.voxels, 1)
      grown = ((moved > 0) & (b.ids == 0)).ravel()  # follow-up lesion voxels outside the baseline's
      gain_grown = np.bincount(moved.ravel()[grown], weights[grown], f.count + 1) / np.maximum(
          np.bincount(moved.ravel()[grown], minlength=f.count + 1), 1)
    # a follow-up stroke where the baseline had WMH is a new stroke, however alike they look
    on_wmh = (np.bincount(moved[baseline.classes["wmh"].ids > 0], minlength=f.count + 1) > 0
              if cls == "stroke" else np.zeros(f.count + 1, bool))
    for b_ids, f_ids in match(b.ids, moved, b.count, f.count, settings.match_voxels):
      def measure(lesions_: ClassLesions, ids: tuple[int, ...], ml: float,
                  high: np.ndarray) -> tuple[float, ...]:
        chosen = list(ids)
        return (ml * lesions_.voxels[chosen].sum(), ml * lesions_.low[chosen].sum(),
                ml * high[chosen].sum())
      # a visit without a lesion there: how much of it was unsure where the other's lies; the
      # baseline's high end local (growth is judged against it), the follow-up's its whole region
      # (a local one let a stable pair's WMH pass for shrinking on phantom seed 7)
      vb = (measure(b, b_ids, baseline.voxel_ml, b.high) if b_ids
            else (0.0, 0.0, baseline.voxel_ml * unsure_b[list(f_ids)].sum()))
      vf = (measure(f, f_ids, followup.voxel_ml, f.region) if f_ids
            else (0.0, 0.0, baseline.voxel_ml * unsure_f[list(b_ids)].sum()))
      gain = None
      if brightening is not None and not (b_ids and f_ids):  # a lesion at one visit only
        gain = (float(gain_f[f_ids[0]]) if f_ids and not on_wmh[f_ids[0]]
                else None if f_ids else float(gain_b[b_ids[0]]))
      elif brightening is not None and len(b_ids) == len(f_ids) == 1:  # where it grew, if it did
        gain = float(gain_grown[f_ids[0]])
      event = classify(cls, len(b_ids), len(f_ids), vb, vf, gain, settings)
      if f_ids:  # the follow-up lesions' centroid, on its own grid
        weights = f.voxels[list(f_ids)]
        voxel = weights @ f.centroids[list(f_ids)] / weights.sum()
        centroid = followup.affine[:3, :3] @ voxel + followup.affine[:3, 3]
      else:  # a disappearing lesion: where it was, in the follow-up's coordinates
        voxel = b.centroids[b_ids[0]]
        mm = baseline.affine[:3, :3] @ voxel + baseline.affine[:3, 3]
        centroid = back[:3, :3] @ mm + back[:3, 3]
      events.append(Event(cls, event, b_ids, f_ids, float(vb[0]), float(vf[0]),
                          tuple(float(c) for c in centroid)))
  return sorted(events, key=sort_key)


def change_map(visit: VisitLesions | Mapping[str, np.ndarray], events: Sequence[Event],
               side: str) -> np.ndarray:
  """uint8 map of one visit's lesions, every voxel of a lesion holding its event's code
  (`change_code`); `visit`: the visit's lesions, or its lesion ids per class on another grid.
  `side`: "baseline" or "followup", which of each event's lesion ids `visit` holds (one visit's
  classes never share a voxel)."""
  ids = {c: v.ids for c, v in visit.classes.items()} if isinstance(visit, VisitLesions) else visit
  out = np.zeros(next(iter(ids.values())).shape, np.uint8)
  for cls, class_ids in ids.items():
    chosen = [(e.baseline_ids if side == "baseline" else e.followup_ids, e.code)
              for e in events if e.cls == cls]
    size = max([int(class_ids.max(initial=0)), *(max(i, default=0) for i, _ in chosen)]) + 1
    code_of = np.zeros(size, np.uint8)  # lesion id -> its event's code
    for lesion_ids, code in chosen:
      code_of[list(lesion_ids)] = code
    out = np.where(class_ids > 0, code_of[class_ids], out)
  return out


def common_map(baseline_map: np.ndarray, followup_map_on_baseline: np.ndarray) -> np.ndarray:
  """Both visits' lesions on the baseline's grid: the follow-up's where it has one, else the
  baseline's (a disappearing or shrinking lesion's lost voxels keep their code)."""
  return np.where(followup_map_on_baseline > 0, followup_map_on_baseline, baseline_map)
