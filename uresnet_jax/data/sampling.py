"""Lesion-centred, shifted 2D patch sampling (Guerrero et al. 2018, Section 2.3).

Patches are centred at a random subset of lesion voxels per class, and each centre is shifted
in-plane by a random offset so that lesions land anywhere in the patch rather than always in its
middle (without the shift, "NoC", the network learns that lesions sit at the patch centre).
Pure functions: randomness comes from an explicit `np.random.Generator`.
"""
import dataclasses

import numpy as np

from uresnet_jax.common.labelling import STROKE, WMH



@dataclasses.dataclass(frozen=True)
class Centres:
  """Sampled patch centres; row i of every field describes patch i."""

  lesion_voxel: np.ndarray  # (N, 3) int64: the sampled voxel (x, y, z)
  lesion_class: np.ndarray  # (N,) uint8: its class (1 WMH, 2 stroke; 0 a healthy-tissue patch)
  offset: np.ndarray  # (N, 2) int64: in-plane shift applied
  centre: np.ndarray  # (N, 3) int64: patch centre = lesion_voxel + (offset, 0); may lie outside

  def __len__(self) -> int:
    return len(self.centre)


def num_samples(num_voxels: int, rate: float) -> int:
  """round(rate * n) voxels, but at least one when the class is present and rate > 0."""
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"sampling rate must be in [0, 1], got {rate}")
  if num_voxels == 0 or rate == 0.0:
    return 0
  return min(num_voxels, max(1, round(rate * num_voxels)))


def sample_centres(
    labels: np.ndarray,
    *,
    wmh_rate: float,
    stroke_rate: float,
    max_shift: int,
    rng: np.random.Generator,
    brain: np.ndarray | None = None,
    healthy_rate: float = 0.0,
    bright: np.ndarray | None = None,
    bright_share: float = 0.0,
    slice_share: float = 0.0,
    dark: np.ndarray | None = None,
    dark_share: float = 0.0,
) -> Centres:
  """Picks round(rate * n) voxels of each lesion class and shifts each in-plane; then, with
  `healthy_rate` > 0, round(healthy_rate * lesion patches) (at least one) random voxels of `brain`
  that are no lesion, unshifted: patches of what is *not* a lesion (the paper has none).

  The offset is uniform in [-max_shift, max_shift] per in-plane axis (max_shift=0: no shift).
  With the paper's max_shift = patch_size / 2 the offset -max_shift puts the lesion voxel one
  voxel beyond the patch's upper edge (an even patch covers centre - P/2 .. centre + P/2 - 1).
  The lesion centres do not depend on `healthy_rate`: they are drawn first.
  With `bright_share` > 0, that share of the healthy patches is centred on `bright` voxels (healthy
  tissue as bright as a lesion: cortex, choroid plexus, a loose skull strip), where a model
  otherwise learns "bright = lesion". With `slice_share` > 0, that share picks its slice uniformly
  among the slices holding healthy brain, then a healthy voxel in it: the top and bottom slices,
  where an axial cut grazes the cortex and a loose skull strip leaves dura and CSF, hold few voxels
  and are otherwise rarely seen. With `dark_share` > 0, that share is centred on `dark` voxels
  (healthy CSF darker than the brain: grainy ventricles and sulci, which a model taught old
  infarcts' cavities otherwise calls stroke). The four draws are made in that order (random,
  bright, slice, dark), so shares of 0 leave the others' centres as they were.
  """
  if labels.ndim != 3:
    raise ValueError(f"labels must be 3D (X, Y, Z), got shape {labels.shape}")
  if max_shift < 0:
    raise ValueError(f"max_shift must be >= 0, got {max_shift}")
  voxels, classes = [], []
  for cls, rate in ((WMH, wmh_rate), (STROKE, stroke_rate)):
    candidates = np.argwhere(labels == cls)  # C order: independent of anything but the labels
    k = num_samples(len(candidates), rate)
    chosen = np.sort(rng.choice(len(candidates), size=k, replace=False))
    voxels.append(candidates[chosen])
    classes.append(np.full(k, cls, np.uint8))
  lesion_voxel = np.concatenate(voxels).astype(np.int64)
  offset = rng.integers(-max_shift, max_shift, size=(len(lesion_voxel), 2), endpoint=True)
  centre = lesion_voxel.copy()
  centre[:, :2] += offset
  classes = np.concatenate(classes)
  if healthy_rate < 0:
    raise ValueError(f"healthy_rate must be >= 0, got {healthy_rate}")
  if healthy_rate > 0:
    if brain is None or brain.shape != labels.shape:
      raise ValueError("healthy-tissue patches need a brain mask shaped as the labels")
    if not 0 <= bright_share <= 1:
      raise ValueError(f"bright_share must be in [0, 1], got {bright_share}")
    if not 0 <= slice_share <= 1 - bright_share:
      raise ValueError(f"slice_share must be in [0, 1 - bright_share = {1 - bright_share:g}], "
                       f"got {slice_share}")
    if not 0 <= dark_share <= 1 - bright_share - slice_share:
      raise ValueError("dark_share must be in [0, 1 - bright_share - slice_share = "
                       f"{1 - bright_share - slice_share:g}], got {dark_share}")
    healthy_mask = brain.astype(bool) & (labels == 0)
    candidates = np.argwhere(healthy_mask)
    k = min(len(candidates), max(1, round(healthy_rate * len(lesion_voxel))))
    bright_candidates = _on(bright, healthy_mask, "bright") if bright_share > 0 else candidates[:0]
    k_bright = min(len(bright_candidates), round(bright_share * k))
    k_slice = round(slice_share * k) if len(candidates) else 0
    dark_candidates = _on(dark, healthy_mask, "dark") if dark_share > 0 else candidates[:0]
    # rounding three shares may overshoot k by one: the dark ones take what is left
    k_dark = min(len(dark_candidates), round(dark_share * k), k - k_bright - k_slice)
    healthy = _pick(candidates, k - k_bright - k_slice - k_dark, rng)
    if k_bright:
      healthy = np.concatenate([healthy, _pick(bright_candidates, k_bright, rng)])
    if k_slice:
      healthy = np.concatenate([healthy, _slice_uniform(candidates, k_slice, rng)])
    if k_dark:
      healthy = np.concatenate([healthy, _pick(dark_candidates, k_dark, rng)])
    lesion_voxel = np.concatenate([lesion_voxel, healthy.astype(np.int64)])
    centre = np.concatenate([centre, healthy.astype(np.int64)])
    offset = np.concatenate([offset, np.zeros((k, 2), offset.dtype)])
    classes = np.concatenate([classes, np.zeros(k, np.uint8)])
  return Centres(lesion_voxel, classes, offset.astype(np.int64), centre)


def _on(tissue: np.ndarray | None, healthy_mask: np.ndarray, name: str) -> np.ndarray:
  """The healthy voxels of a `name` tissue mask (bright, dark), as argwhere gives them."""
  if tissue is None or tissue.shape != healthy_mask.shape:
    raise ValueError(f"{name} healthy-tissue patches need a {name} mask shaped as the labels")
  return np.argwhere(healthy_mask & tissue)


def _pick(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  """k distinct rows of `candidates`, in their order."""
  return candidates[np.sort(rng.choice(len(candidates), size=k, replace=False))]


def _slice_uniform(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  """k voxels of `candidates` (M, 3): a slice drawn uniformly among theirs, then a voxel in it."""
  order = np.argsort(candidates[:, 2], kind="stable")
  slices, first, count = np.unique(candidates[order, 2], return_index=True, return_counts=True)
  picked = rng.integers(len(slices), size=k)
  within = rng.integers(count[picked])
  return candidates[order[first[picked] + within]]


def extract_patches(
    image: np.ndarray,
    labels: np.ndarray,
    centre: np.ndarray,
    patch_size: int,
    pad_value: float,
) -> tuple[np.ndarray, np.ndarray]:
  """Cuts (P, P) axial patches around each centre; outside the volume: pad_value and label 0.

  The patch covers centre - P//2 .. centre - P//2 + P - 1 on each in-plane axis.
  Returns (patches (N, P, P, C) float32, patch_labels (N, P, P) uint8).
  """
  if image.ndim != 4 or image.shape[:3] != labels.shape:
    raise ValueError(f"image (X, Y, Z, C) {image.shape} does not match labels {labels.shape}")
  if patch_size < 1:
    raise ValueError(f"patch_size must be >= 1, got {patch_size}")
  centre = np.asarray(centre, np.int64).reshape(-1, 3)
  if len(centre) and not np.all((centre[:, 2] >= 0) & (centre[:, 2] < labels.shape[2])):
    raise ValueError(f"centre slice outside 0..{labels.shape[2] - 1}")
  num_channels = image.shape[3]
  if not len(centre):
    return (np.zeros((0, patch_size, patch_size, num_channels), np.float32),
            np.zeros((0, patch_size, patch_size), np.uint8))
  start = centre[:, :2] - patch_size // 2
  # Pad in-plane just enough that every window lies inside, then gather all windows at once.
  pad_lo = np.maximum(0, -start.min(axis=0))
  pad_hi = np.maximum(0, start.max(axis=0) + patch_size - np.array(labels.shape[:2]))
  pad = [(pad_lo[0], pad_hi[0]), (pad_lo[1], pad_hi[1]), (0, 0)]
  padded_image = np.pad(image.astype(np.float32, copy=False), pad + [(0, 0)],
                        constant_values=pad_value)
  padded_labels = np.pad(labels.astype(np.uint8, copy=False), pad, constant_values=0)
  steps = np.arange(patch_size)
  xs = (start[:, 0] + pad_lo[0])[:, None, None] + steps[None, :, None]
  ys = (start[:, 1] + pad_lo[1])[:, None, None] + steps[None, None, :]
  zs = centre[:, 2][:, None, None]
  return padded_image[xs, ys, zs], padded_labels[xs, ys, zs]
