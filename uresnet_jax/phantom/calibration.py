"""FLAIR from its ingredients, with lesion contrast calibrated to the realism table."""
import dataclasses
import math
from typing import Callable

import numpy as np

from uresnet_jax.common.labelling import BACKGROUND, WMH


@dataclasses.dataclass(frozen=True)
class FlairParts:
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

  def subset(self, index: np.ndarray) -> "FlairParts":
    return FlairParts(**{f.name: getattr(self, f.name)[..., index]
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


def calibrate(parts: FlairParts, labels: np.ndarray, mean_z: float, p10_z: float,
              p99_z: float) -> tuple[float, float, float]:
  """Lesion intensity, border profile and halo gain matching the realism table (brain z units).

  WMH voxels get mean mean_z (intensity) and 10th percentile p10_z (profile); unlabelled brain
  gets 99th percentile p99_z (halo gain, as far as the faint halo can). parts and labels (0/1/2)
  cover the brain voxels. Exact: only lesion and halo voxels change; the rest is summarised once.
  """
  wmh = labels == WMH
  if wmh.sum() < 10:
    return 1.5, 1.0, 0.0
  n = labels.size
  noise_var = float(np.var(parts.noise[0]))
  k99 = int(0.99 * (int((labels == BACKGROUND).sum()) - 1))
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
