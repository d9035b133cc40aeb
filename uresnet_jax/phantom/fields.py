"""Regular grids in mm, boxes and rotations on them, and smooth random fields (cubic B-splines)."""
import dataclasses
import math
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Grid:
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


def control(grid: Grid, spacing: float) -> tuple[tuple[int, ...], list[np.ndarray], np.ndarray]:
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


def evaluate_bspline(ctrl: np.ndarray, weights: Sequence[np.ndarray]) -> np.ndarray:
  """A (cx, cy, cz) control array evaluated on the grid: three GEMMs, the largest last."""
  wx, wy, wz = weights
  cx, cy, cz = ctrl.shape
  nx, ny = wx.shape[0], wy.shape[0]
  a = (wx @ ctrl.reshape(cx, cy * cz)).reshape(nx, cy, cz).transpose(1, 0, 2).reshape(cy, -1)
  a = (wy @ a).reshape(ny, nx, cz).transpose(1, 0, 2).reshape(nx * ny, cz)
  return (a @ wz.T).reshape(nx, ny, wz.shape[0])


def smooth_noise(rng: np.random.Generator, grid: Grid, spacing: float,
                 count: int = 1) -> list[np.ndarray]:
  """`count` smooth random fields with zero mean and unit std (B-splines, knots `spacing` mm)."""
  shape, weights, _ = control(grid, spacing)
  fields = []
  for _ in range(count):
    f = evaluate_bspline(rng.standard_normal(shape).astype(np.float32), weights)
    f -= f.mean()
    f /= max(float(f.std()), 1e-6)
    fields.append(f)
  return fields


def clipped_box(centre: np.ndarray, half: np.ndarray,
                shape: Sequence[int]) -> tuple[slice, ...] | None:
  """Index slices of the box centre +- half (voxels) clipped to shape; None if empty."""
  lo = np.maximum(np.floor(centre - half).astype(int), 0)
  hi = np.minimum(np.ceil(centre + half).astype(int) + 1, shape)
  if np.any(hi <= lo):
    return None
  return tuple(slice(a, b) for a, b in zip(lo, hi))


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
  """Rotation matrix from angles about x, y, z (degrees)."""
  ax, ay, az = np.deg2rad(angles_deg)
  rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
  ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
  rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
  return rz @ ry @ rx
