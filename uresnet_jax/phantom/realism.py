"""The realism statistics of one scan, from its images alone: the lesion table of
docs/cohorts.md and the edge-shell table of docs/sim_to_real.md."""
from typing import Sequence

import numpy as np
from scipy import ndimage

from uresnet_jax.common.labelling import BACKGROUND, WMH


def realism_stats(flair: np.ndarray, labels: np.ndarray, brain: np.ndarray,
                  zooms: Sequence[float]) -> dict[str, float]:
  """FLAIR z-scored inside the brain: WMH mean and 10th percentile, unlabelled 99th percentile;
  WMH load (% of the brain), component count and sizes (26-connected); and the edge-shell
  statistics (`edge_stats`). NaN where no WMH."""
  brain = brain > 0
  flair = np.asarray(flair, np.float64)
  z = (flair - flair[brain].mean()) / flair[brain].std()
  wmh = (labels == WMH) & brain
  components, count = ndimage.label(wmh, structure=np.ones((3, 3, 3)))
  sizes_mm3 = np.bincount(components.ravel())[1:] * float(np.prod(zooms))
  nan = float("nan")
  return {
      "wmh_mean_z": float(z[wmh].mean()) if count else nan,
      "wmh_p10_z": float(np.percentile(z[wmh], 10)) if count else nan,
      "brain_p99_z": float(np.percentile(z[brain & (labels == BACKGROUND)], 99)),
      "load_pct": float(100 * wmh.sum() / brain.sum()),
      "components": count,
      "median_component_mm3": float(np.median(sizes_mm3)) if count else nan,
      "largest_ml": float(sizes_mm3.max() / 1000) if count else nan,
      **edge_stats(flair, labels, brain, zooms),
  }


EDGE_MM = 3.0  # the edge shell: brain voxels within this distance (in-plane) of the mask's edge
DEEP_MM = 15.0  # deep tissue: farther than this from the edge


def edge_stats(flair: np.ndarray, labels: np.ndarray, brain: np.ndarray,
               zooms: Sequence[float]) -> dict[str, float]:
  """Where real FLAIR is bright without lesions: z-scored with the mean and std of the brain
  without lesions, the median and 90th percentile of the 3 mm edge shell, the % of its voxels
  brighter than the scan's WMH 10th percentile, the 99th percentile of deep tissue (> 15 mm from
  the edge), and the WMH median and 10th percentile on the same scale."""
  brain = np.asarray(brain) > 0
  flair = np.asarray(flair, np.float64)
  healthy = brain & (labels == BACKGROUND)
  z = (flair - flair[healthy].mean()) / flair[healthy].std()
  # In-plane distance: slices far apart, so the nearest background is always in the same slice.
  depth = ndimage.distance_transform_edt(brain, sampling=(zooms[0], zooms[1], 1e4))
  edge, deep = z[healthy & (depth <= EDGE_MM)], z[healthy & (depth > DEEP_MM)]
  wmh = z[(labels == WMH) & brain]
  nan = float("nan")
  wmh_p10 = float(np.percentile(wmh, 10)) if wmh.size else nan
  return {
      "edge_median_z": float(np.median(edge)) if edge.size else nan,
      "edge_p90_z": float(np.percentile(edge, 90)) if edge.size else nan,
      "edge_bright_pct": float(100 * (edge > wmh_p10).mean()) if edge.size and wmh.size else nan,
      "deep_p99_z": float(np.percentile(deep, 99)) if deep.size else nan,
      "wmh_median_healthy_z": float(np.median(wmh)) if wmh.size else nan,
      "wmh_p10_healthy_z": wmh_p10,
  }
