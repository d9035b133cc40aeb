"""Cohort statistics against scipy / statsmodels and the phantom's planted WMH associations."""
import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from uresnet_jax import phantom
from uresnet_jax.evaluation import cohort_stats
from uresnet_jax.phantom import config as phantom_config


def test_mean_std_skips_nan_and_uses_sample_std():
  assert cohort_stats.mean_std([1.0, 3.0, np.nan]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5),
                                                       "n": 2}
  assert np.isnan(cohort_stats.mean_std([np.nan])["mean"])


def test_volume_agreement_is_linregress_of_automatic_on_expert():
  expert = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
  automatic = 2 * expert + 1
  fit = cohort_stats.volume_agreement(automatic, expert)
  assert fit["r2"] == pytest.approx(1.0)
  assert (fit["slope"], fit["intercept"]) == pytest.approx((2.0, 1.0))
  noisy = automatic + np.array([0.3, -0.2, 0.1, 0.4, -0.5])
  ref = stats.linregress(expert, noisy)
  fit = cohort_stats.volume_agreement(noisy, expert)
  assert fit["r2"] == pytest.approx(ref.rvalue ** 2)
  assert fit["p"] == pytest.approx(ref.pvalue)


def test_bland_altman_by_hand():
  expert = np.array([1.0, 2.0, 3.0, 4.0])
  automatic = expert + np.array([1.0, 3.0, 1.0, 3.0])  # differences mean 2, sd 2/sqrt(3)
  ba = cohort_stats.bland_altman(automatic, expert)
  sd = np.std([1.0, 3.0, 1.0, 3.0], ddof=1)
  assert ba["bias"] == pytest.approx(2.0)
  assert ba["rpc"] == pytest.approx(1.96 * sd)
  assert ba["cv_pct"] == pytest.approx(100 * sd / 3.5)  # mean of pair means: (2.5+4.5) / 2
  assert ba["bias_p"] == pytest.approx(stats.ttest_1samp([1.0, 3.0, 1.0, 3.0], 0).pvalue)


def test_correlations_match_scipy_and_drop_missing_pairs():
  rng = np.random.default_rng(1)
  x = rng.normal(size=30)
  y = x + rng.normal(size=30)
  y[3] = np.nan
  c = cohort_stats.correlation(x, y)
  keep = np.isfinite(y)
  assert c["n"] == 29
  assert c["pearson_r"] == pytest.approx(stats.pearsonr(x[keep], y[keep]).statistic)
  assert c["spearman_rho"] == pytest.approx(stats.spearmanr(x[keep], y[keep]).statistic)
  table = cohort_stats.clinical_table([
      {"sex": "M", "fazekas_pv": "2", "fazekas_deep": "1", "mmse": "", "protocol": "1x1x3"},
      {"sex": "F", "fazekas_pv": "1", "fazekas_deep": "0", "mmse": "27", "protocol": "1x1x3"},
  ])
  assert sorted(table) == ["fazekas_deep", "fazekas_pv", "fazekas_total", "male", "mmse"]
  np.testing.assert_array_equal(table["fazekas_total"], [3.0, 1.0])
  np.testing.assert_array_equal(table["male"], [1.0, 0.0])
  assert sorted(cohort_stats.clinical_correlations(x[:2], table)) == [
      "fazekas_deep", "fazekas_pv", "fazekas_total", "mmse"]


def test_risk_factor_ols_matches_statsmodels():
  rng = np.random.default_rng(2)
  age = rng.uniform(50, 90, 40)
  male = (rng.uniform(size=40) < 0.5).astype(float)
  volume = np.exp(0.03 * age + rng.normal(0, 0.3, 40))
  result = cohort_stats.risk_factor_associations(volume, {"age": age}, male, log=True)["age"]
  ref = sm.OLS(np.log(volume), sm.add_constant(np.column_stack([age, male]))).fit()
  assert result["coef"] == pytest.approx(ref.params[1])
  assert result["p"] == pytest.approx(ref.pvalues[1])
  assert result["n"] == 40


def test_wilcoxon_matches_scipy_with_effect_size():
  rng = np.random.default_rng(3)
  a = rng.uniform(0.5, 0.9, 20)
  b = a - rng.uniform(0.0, 0.1, 20)
  w = cohort_stats.wilcoxon_paired(a, b)
  ref = stats.wilcoxon(a, b, method="approx")
  assert w["p"] == pytest.approx(ref.pvalue)
  assert w["effect_size"] == pytest.approx(abs(ref.zstatistic) / np.sqrt(40))
  assert np.isnan(cohort_stats.wilcoxon_paired(a, a)["p"])


def test_risk_factors_recover_planted_associations_on_a_large_clinical_cohort():
  """600 subjects from the phantom's clinical model (no images): true effects significant with
  the planted sign, null effects (smoking) not."""
  config = phantom_config.get_config()
  rng = np.random.default_rng(0)
  rows = [phantom.sample_risk_factors(rng, config) for _ in range(600)]
  pct = np.array([phantom.sample_wmh_burden(rng, r, config.wmh_model)[2] for r in rows])
  factors = {k: np.array([r[k] for r in rows], float) for k in cohort_stats.RISK_FACTORS}
  male = np.array([r["male"] for r in rows], float)
  result = cohort_stats.risk_factor_associations(pct, factors, male, log=True)
  assert result["age"]["p"] < 0.05 and result["age"]["coef"] > 0
  assert result["hypertension"]["p"] < 0.05 and result["hypertension"]["coef"] > 0
  assert result["smoking"]["p"] >= 0.05
  assert config.wmh_model.smoking == 0.0 and config.wmh_model.age_per_decade > 0
