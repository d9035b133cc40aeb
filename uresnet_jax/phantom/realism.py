"""The realism table's statistics (docs/cohorts.md) of one scan, from its images alone."""
from typing import Sequence

import numpy as np
from scipy import ndimage


def realism_stats(flair: np.ndarray, labels: np.ndarray, brain: np.ndarray,
                  zooms: Sequence[float]) -> dict[str, float]:
  """FLAIR z-scored inside the brain: WMH mean and 10th percentile, unlabelled 99th percentile;
  WMH load (% of the brain), component count and sizes (26-connected). NaN where no WMH."""
  brain = brain > 0
  flair = np.asarray(flair, np.float64)
  z = (flair - flair[brain].mean()) / flair[brain].std()
  wmh = (labels == 1) & brain
  components, count = ndimage.label(wmh, structure=np.ones((3, 3, 3)))
  sizes_mm3 = np.bincount(components.ravel())[1:] * float(np.prod(zooms))
  nan = float("nan")
  return {
      "wmh_mean_z": float(z[wmh].mean()) if count else nan,
      "wmh_p10_z": float(np.percentile(z[wmh], 10)) if count else nan,
      "brain_p99_z": float(np.percentile(z[brain & (labels == 0)], 99)),
      "load_pct": float(100 * wmh.sum() / brain.sum()),
      "components": count,
      "median_component_mm3": float(np.median(sizes_mm3)) if count else nan,
      "largest_ml": float(sizes_mm3.max() / 1000) if count else nan,
  }
