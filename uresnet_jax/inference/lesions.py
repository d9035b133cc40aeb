"""Per-subject lesion measures of a prediction: post-processing, volumes with an interval, lesion
tables and lesion locations. Pure functions of arrays (labels, probabilities, masks, affine).

Location rule (an approximation without an atlas; docs/predict.md states it): on the preprocessed
grid, ventricular CSF is brain voxels darker than `ventricle_z` (FLAIR z-score) lying deeper than
`ventricle_depth_mm` below the brain surface; a lesion is
  - infratentorial when most of its voxels lie in the lowest `infratentorial_fraction` of the
    brain's inferior-superior extent, else
  - periventricular when any voxel lies within `periventricular_mm` of ventricular CSF, else
  - juxtacortical when any voxel lies within `juxtacortical_mm` of the brain surface, else
  - deep.
"""
import numpy as np
from scipy import ndimage

from uresnet_jax.common import labelling


CONNECTIVITY = np.ones((3, 3, 3), bool)  # 26-connected lesions, as the WMH challenge counts them
ZONE_PERIVENTRICULAR, ZONE_JUXTACORTICAL, ZONE_INFRATENTORIAL = 1, 2, 4
LESION_COLUMNS = ("subject", "lesion_id", "class", "volume_ml", "centroid_x_mm", "centroid_y_mm",
                  "centroid_z_mm", "location", "mean_probability", "mean_p_wmh", "mean_p_stroke",
                  "ambiguous")
LOCATIONS = ("periventricular", "deep", "juxtacortical", "infratentorial")
LOCATION_COLUMNS = tuple(f"{c}_{kind}_{where}" for c in labelling.CLASSES
                         for kind in ("ml", "lesions") for where in LOCATIONS)


def remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
  """`mask` without its 26-connected components of fewer than `min_voxels` voxels."""
  if min_voxels <= 1 or not mask.any():
    return mask
  components, _ = ndimage.label(mask, CONNECTIVITY)
  sizes = np.bincount(components.ravel())
  keep = sizes >= min_voxels
  keep[0] = False
  return keep[components]


def unconfident_stroke(labels: np.ndarray, stroke_probability: np.ndarray,
                       threshold: float) -> np.ndarray:
  """The stroke lesions (26-connected) whose mean stroke probability is below `threshold`: stroke
  candidates, reported apart and not counted as stroke (0 keeps every stroke lesion)."""
  stroke = labels == labelling.STROKE
  if threshold <= 0 or not stroke.any():
    return np.zeros(labels.shape, bool)
  components, count = ndimage.label(stroke, structure=CONNECTIVITY)
  means = ndimage.mean(stroke_probability, components, index=np.arange(1, count + 1))
  return np.isin(components, np.flatnonzero(np.asarray(means) < threshold) + 1)


def postprocess(labels: np.ndarray, exclusion: np.ndarray | None, min_voxels: float) -> np.ndarray:
  """Labels with excluded voxels set to background, then lesions under the minimum size removed."""
  out = np.array(labels, np.uint8)
  if exclusion is not None:
    out[exclusion] = 0
  for label in labelling.CLASSES.values():
    mask = out == label
    out[mask & ~remove_small(mask, min_voxels)] = 0
  return out


def volume_interval(probabilities: np.ndarray, labels: np.ndarray, label: int,
                    exclusion: np.ndarray | None, min_voxels: float, low_p: float,
                    high_p: float) -> tuple[int, int]:
  """Voxel counts (low, high) bracketing the class's labelled count: the labelled voxels with
  p >= high_p, and the voxels (not excluded, lesions of at least the minimum size) with p >= low_p.
  With low_p < 1/K <= 1/2 < high_p the bracket always holds the argmax count."""
  p = probabilities[..., label]
  low = int(((labels == label) & (p >= high_p)).sum())
  wide = p >= low_p
  if exclusion is not None:
    wide &= ~exclusion
  return low, int(remove_small(wide, min_voxels).sum())


def location_zones(image: np.ndarray, mask: np.ndarray, zooms: tuple[float, float, float],
                   options) -> np.ndarray:
  """uint8 bit map on the preprocessed (RAS) grid: ZONE_* bits by the module's location rule."""
  mask = np.asarray(mask, bool)
  zones = np.zeros(mask.shape, np.uint8)
  if not mask.any():
    return zones
  # distances within the brain's bounding box padded by one voxel of outside, not the whole field
  box = ndimage.find_objects(mask.astype(np.uint8))[0]
  brain, flair = np.pad(mask[box], 1), np.pad(image[box][..., 0], 1)
  depth = ndimage.distance_transform_edt(brain, sampling=zooms)
  ventricles = brain & (flair < options.ventricle_z) & (depth > options.ventricle_depth_mm)
  local = np.zeros(brain.shape, np.uint8)
  if ventricles.any():
    to_ventricles = ndimage.distance_transform_edt(~ventricles, sampling=zooms)
    local[brain & (to_ventricles <= options.periventricular_mm)] |= ZONE_PERIVENTRICULAR
  local[brain & (depth <= options.juxtacortical_mm)] |= ZONE_JUXTACORTICAL
  zones[box] = local[1:-1, 1:-1, 1:-1]
  slices = np.flatnonzero(mask.any(axis=(0, 1)))
  height = slices[-1] - slices[0] + 1
  low = slices[0] + int(np.floor(options.infratentorial_fraction * height))
  zones[:, :, :low][mask[:, :, :low]] |= ZONE_INFRATENTORIAL
  return zones


def by_location(rows: list[dict]) -> dict:
  """Volume (mL) and lesion count of each class in each location (LOCATION_COLUMNS), from a scan's
  lesion rows: what users compare across scans without reading lesions.csv."""
  totals = {k: 0.0 if "_ml_" in k else 0 for k in LOCATION_COLUMNS}
  for row in rows:
    if row["class"] in labelling.CLASSES:  # stroke candidates are not stroke
      totals[f"{row['class']}_ml_{row['location']}"] += row["volume_ml"]
      totals[f"{row['class']}_lesions_{row['location']}"] += 1
  return totals


def _location(n: int, periventricular: int, juxtacortical: int, infratentorial: int) -> str:
  if 2 * infratentorial > n:
    return "infratentorial"
  if periventricular:
    return "periventricular"
  if juxtacortical:
    return "juxtacortical"
  return "deep"


def lesion_rows(subject: str, labels: np.ndarray, probabilities: np.ndarray, zones: np.ndarray,
                affine: np.ndarray, ambiguity_margin: float,
                stroke_candidates: np.ndarray | None = None) -> list[dict]:
  """One row per 26-connected lesion of each class (columns LESION_COLUMNS), ids from 1 per
  subject; `stroke_candidates` (voxels of strokes below the threshold) as class stroke_candidate."""
  rows = []
  voxel_ml = labelling.voxel_volume_ml(affine)
  affine = np.asarray(affine, float)
  masks = [(name, labels == label) for name, label in labelling.CLASSES.items()]
  if stroke_candidates is not None:
    masks.append((labelling.STROKE_CANDIDATE, stroke_candidates))
  for name, mask in masks:
    components, count = ndimage.label(mask, CONNECTIVITY)
    if not count:
      continue
    ids = components.ravel()
    inside = ids > 0
    ids = ids[inside]
    n = np.bincount(ids, minlength=count + 1)[1:]

    def total(values: np.ndarray) -> np.ndarray:
      return np.bincount(ids, weights=values.ravel()[inside], minlength=count + 1)[1:]

    coords = [total(np.broadcast_to(
        np.arange(s).reshape([-1 if a == axis else 1 for a in range(3)]), labels.shape))
        for axis, s in enumerate(labels.shape)]
    centroids = np.stack(coords, axis=1) / n[:, None] @ affine[:3, :3].T + affine[:3, 3]
    p_wmh = total(probabilities[..., labelling.CLASSES["wmh"]]) / n
    p_stroke = total(probabilities[..., labelling.CLASSES["stroke"]]) / n
    bits = {bit: total((zones & bit) > 0) for bit in
            (ZONE_PERIVENTRICULAR, ZONE_JUXTACORTICAL, ZONE_INFRATENTORIAL)}
    for i in range(count):
      rows.append({
          "subject": subject, "class": name, "volume_ml": float(n[i] * voxel_ml),
          "centroid_x_mm": float(centroids[i, 0]), "centroid_y_mm": float(centroids[i, 1]),
          "centroid_z_mm": float(centroids[i, 2]),
          "location": _location(int(n[i]), *(int(bits[b][i]) for b in (
              ZONE_PERIVENTRICULAR, ZONE_JUXTACORTICAL, ZONE_INFRATENTORIAL))),
          "mean_probability": float(p_wmh[i] if name == "wmh" else p_stroke[i]),
          "mean_p_wmh": float(p_wmh[i]), "mean_p_stroke": float(p_stroke[i]),
          "ambiguous": bool(abs(p_wmh[i] - p_stroke[i]) < ambiguity_margin),
      })
  rows.sort(key=lambda r: -r["volume_ml"])
  for k, row in enumerate(rows, start=1):
    row["lesion_id"] = k
  return [{c: row[c] for c in LESION_COLUMNS} for row in rows]
