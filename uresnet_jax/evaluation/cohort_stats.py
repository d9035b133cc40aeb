"""Cohort statistics of the paper's evaluation: pure functions of per-subject numbers.

Agreement of automatic with expert volumes (R², linear trend, Bland–Altman), correlation with
clinical scores (Pearson, Spearman), risk-factor associations (OLS adjusted for sex) and the paired
Wilcoxon signed-rank comparison of two methods. NaNs are dropped pairwise; a statistic that needs
more subjects than remain is NaN (with n saying how many there were).
"""
import math
from typing import Mapping, Sequence

import numpy as np
import statsmodels.api as sm
from scipy import stats

CLINICAL_SCORES = ("fazekas_deep", "fazekas_pv", "fazekas_total", "mmse")
RISK_FACTORS = ("age", "hypertension", "diabetes", "smoking", "sbp")
_NAN = float("nan")


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  a, b = np.asarray(a, float), np.asarray(b, float)
  if a.shape != b.shape:
    raise ValueError(f"paired samples of different lengths {a.shape} and {b.shape}")
  keep = np.isfinite(a) & np.isfinite(b)
  return a[keep], b[keep]


def mean_std(values: Sequence[float]) -> dict[str, float]:
  """Mean and sample standard deviation (ddof=1) of the finite values, and their number."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  return {"mean": float(v.mean()) if v.size else _NAN,
          "std": float(v.std(ddof=1)) if v.size > 1 else _NAN, "n": int(v.size)}


def volume_agreement(automatic: Sequence[float], expert: Sequence[float]) -> dict[str, float]:
  """R² and linear trend automatic = slope * expert + intercept (scipy.stats.linregress)."""
  a, e = _finite_pairs(automatic, expert)
  if a.size < 3 or np.ptp(e) == 0:
    return {"r2": _NAN, "slope": _NAN, "intercept": _NAN, "p": _NAN, "n": int(a.size)}
  fit = stats.linregress(e, a)
  return {"r2": float(fit.rvalue ** 2), "slope": float(fit.slope),
          "intercept": float(fit.intercept), "p": float(fit.pvalue), "n": int(a.size)}


def bland_altman(automatic: Sequence[float], expert: Sequence[float]) -> dict[str, float]:
  """Bias (mean of automatic - expert) with a one-sample t-test of zero mean, the reproducibility
  coefficient RPC = 1.96 σ of the differences and CV = 100 σ / mean of the pair means."""
  a, e = _finite_pairs(automatic, expert)
  if a.size < 2:
    return {"bias": _NAN, "bias_p": _NAN, "sd": _NAN, "rpc": _NAN, "cv_pct": _NAN,
            "n": int(a.size)}
  diff = a - e
  sd = float(diff.std(ddof=1))
  mean = float(((a + e) / 2).mean())
  p = float(stats.ttest_1samp(diff, 0.0).pvalue) if sd > 0 else _NAN
  return {"bias": float(diff.mean()), "bias_p": p, "sd": sd, "rpc": 1.96 * sd,
          "cv_pct": 100.0 * sd / mean if mean else _NAN, "n": int(a.size)}


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
  """Pearson and Spearman correlation coefficients with their p-values."""
  a, b = _finite_pairs(x, y)
  if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return {"pearson_r": _NAN, "pearson_p": _NAN, "spearman_rho": _NAN, "spearman_p": _NAN,
            "n": int(a.size)}
  pearson = stats.pearsonr(a, b)
  spearman = stats.spearmanr(a, b)
  return {"pearson_r": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
          "spearman_rho": float(spearman.statistic), "spearman_p": float(spearman.pvalue),
          "n": int(a.size)}


def clinical_correlations(volumes: Sequence[float],
                          clinical: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
  """correlation() of the volumes with each clinical score present (CLINICAL_SCORES order)."""
  return {name: correlation(volumes, clinical[name]) for name in CLINICAL_SCORES if name in clinical}


def risk_factor_associations(volumes: Sequence[float], factors: Mapping[str, Sequence[float]],
                             male: Sequence[float] | None = None,
                             log: bool = False) -> dict[str, dict[str, float]]:
  """Per risk factor, OLS volume ~ 1 + factor (+ male): the factor's coefficient, its standard
  error and p-value. `log` models log(volume) (non-positive volumes dropped)."""
  y_all = np.asarray(volumes, float)
  if log:
    with np.errstate(divide="ignore", invalid="ignore"):
      y_all = np.where(y_all > 0, np.log(np.where(y_all > 0, y_all, 1.0)), np.nan)
  sex = None if male is None else np.asarray(male, float)
  out = {}
  for name, values in factors.items():
    columns = [np.asarray(values, float)] + ([sex] if sex is not None else [])
    x = np.column_stack(columns)
    keep = np.isfinite(y_all) & np.all(np.isfinite(x), axis=1)
    y, x = y_all[keep], x[keep]
    if y.size < x.shape[1] + 2 or np.ptp(x[:, 0]) == 0:
      out[name] = {"coef": _NAN, "se": _NAN, "p": _NAN, "n": int(y.size)}
      continue
    fit = sm.OLS(y, sm.add_constant(x, has_constant="add")).fit()
    out[name] = {"coef": float(fit.params[1]), "se": float(fit.bse[1]),
                 "p": float(fit.pvalues[1]), "n": int(y.size)}
  return out


def wilcoxon_paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
  """Paired Wilcoxon signed-rank test (normal approximation) with effect size r = |z|/√(n1+n2)."""
  x, y = _finite_pairs(a, b)
  n = int(x.size)
  if n < 2 or np.all(x == y):
    return {"statistic": _NAN, "p": _NAN, "z": _NAN, "effect_size": _NAN, "n": n}
  result = stats.wilcoxon(x, y, method="approx")
  z = getattr(result, "zstatistic", None)
  if z is None:  # older scipy: recover |z| from the two-sided p-value
    z = stats.norm.isf(result.pvalue / 2)
  z = float(z)
  return {"statistic": float(result.statistic), "p": float(result.pvalue), "z": z,
          "effect_size": abs(z) / math.sqrt(2 * n), "n": n}


def clinical_table(rows: Sequence[Mapping[str, str]]) -> dict[str, np.ndarray]:
  """Numeric columns of manifest rows (empty or non-numeric -> NaN; columns all NaN dropped): sex as
  `male` (1 for M/male, 0 for F/female), and fazekas_total = fazekas_pv + fazekas_deep."""
  names = sorted({k for row in rows for k in row})
  table = {}
  for name in names:
    raw = [str(row.get(name, "")).strip() for row in rows]
    if name == "sex":
      sexes = {"m": 1.0, "male": 1.0, "f": 0.0, "female": 0.0}
      table["male"] = np.array([sexes.get(v.lower(), _NAN) for v in raw])
      continue
    values = []
    for v in raw:
      try:
        values.append(float(v))
      except ValueError:
        values.append(_NAN)
    table[name] = np.array(values)
  table = {k: v for k, v in table.items() if np.isfinite(v).any()}
  if "fazekas_pv" in table and "fazekas_deep" in table:
    table["fazekas_total"] = table["fazekas_pv"] + table["fazekas_deep"]
  return table
