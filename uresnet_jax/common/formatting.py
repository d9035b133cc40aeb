"""Numbers in reports and tables: fixed digits, and one dash for a value that does not exist."""
import math
from typing import Mapping

MISSING = "–"  # None, NaN or inf in a table


def number(value: float | None, digits: int = 3) -> str:
  """`value` with `digits` decimals; MISSING when it is None or not finite."""
  if value is None or not math.isfinite(value):
    return MISSING
  return f"{value:.{digits}f}"


def p_value(value: float | None) -> str:
  """A p-value: scientific notation below 0.001, three decimals above."""
  if value is None or not math.isfinite(value):
    return MISSING
  return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def mean_std(stat: Mapping[str, float], scale: float = 1.0, digits: int = 1) -> str:
  """"mean (std)" of a {"mean", "std"} summary, both times `scale` (100 for a percentage)."""
  mean, std = stat["mean"] * scale, stat["std"] * scale
  if not math.isfinite(mean):
    return MISSING
  return f"{mean:.{digits}f} ({number(std, digits)})"
