"""The clinical model: risk factors, WMH burden, Fazekas scores, and its truth for the cohort."""
import math
from typing import Any, Sequence

import ml_collections
import numpy as np

from uresnet_jax.phantom.knobs import uniform


def _sigmoid(x: float) -> float:
  return 1.0 / (1.0 + math.exp(-x))


def sample_risk_factors(rng: np.random.Generator,
                        config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Age, sex, hypertension, systolic BP, diabetes and smoking of one subject."""
  age = uniform(rng, config.age_years)
  male = int(rng.uniform() < config.male_probability)
  decades = (age - 70) / 10
  htn = int(rng.uniform() < _sigmoid(config.hypertension_logit
                                     + config.hypertension_logit_per_decade * decades))
  mean, sd = config.sbp_hypertensive if htn else config.sbp_normotensive
  sbp = int(round(rng.normal(mean, sd)))
  diabetes = int(rng.uniform() < config.diabetes_probability)
  smoking = int(rng.uniform() < config.smoking_probability)
  return dict(age=round(age, 1), male=male, hypertension=htn, sbp=sbp, diabetes=diabetes,
              smoking=smoking)


def wmh_covariates(risk: dict[str, Any]) -> dict[str, float]:
  """Covariates of the WMH model, keyed like config.wmh_model's coefficients."""
  return dict(age_per_decade=(risk["age"] - 70) / 10, hypertension=risk["hypertension"],
              sbp_per_10mmhg=(risk["sbp"] - 140) / 10, diabetes=risk["diabetes"],
              smoking=risk["smoking"], male=risk["male"])


def wmh_linear_predictor(risk: dict[str, Any], model: ml_collections.ConfigDict) -> float:
  """Expected log(WMH % of ICV) given the risk factors."""
  return model.intercept + sum(getattr(model, k) * v for k, v in wmh_covariates(risk).items())


def sample_wmh_burden(rng: np.random.Generator, risk: dict[str, Any],
                      model: ml_collections.ConfigDict) -> tuple[float, float, float]:
  """(linear predictor, residual, target WMH % of ICV) of the log-linear WMH model."""
  predictor = wmh_linear_predictor(risk, model)
  residual = float(rng.normal(0.0, model.noise_sd))
  return predictor, residual, float(np.clip(math.exp(predictor + residual), *model.clip_pct))


def fazekas(volume_ml: float, thresholds: Sequence[float]) -> int:
  """A rater-like score: how many of the volume thresholds the lesion volume exceeds."""
  return int(sum(volume_ml > t for t in thresholds))


def generative_model(seed: int, config: ml_collections.ConfigDict,
                     records: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """The known truth a clinical analysis of the cohort can be checked against."""
  model = config.wmh_model
  coefficients = {k: getattr(model, k) for k in ("age_per_decade", "hypertension",
                                                 "sbp_per_10mmhg", "diabetes", "smoking", "male")}
  return {
      "seed": seed,
      "wmh_model": {
          "formula": (
              "log(target WMH % of ICV) = intercept + age_per_decade*(age-70)/10"
              " + hypertension*hypertension + sbp_per_10mmhg*(sbp-140)/10 + diabetes*diabetes"
              " + smoking*smoking + male*(sex=='M') + Normal(0, noise_sd); the target is clipped"
              " to clip_pct and the lesion generator renders it approximately (wmh_ml / icv_ml"
              " * 100 in the manifest is what was generated)"),
          "intercept": model.intercept,
          "coefficients": coefficients,
          "noise_sd": model.noise_sd,
          "clip_pct": list(model.clip_pct),
          "true_effects": sorted(k for k, v in coefficients.items() if v != 0),
          "null_effects": sorted(k for k, v in coefficients.items() if v == 0),
      },
      "risk_factor_model": {
          "age": f"Uniform{tuple(config.age_years)} years",
          "sex": f"male with probability {config.male_probability}",
          "hypertension": (f"Bernoulli(sigmoid({config.hypertension_logit}"
                           f" + {config.hypertension_logit_per_decade}*(age-70)/10))"),
          "sbp": (f"Normal{tuple(config.sbp_hypertensive)} if hypertension"
                  f" else Normal{tuple(config.sbp_normotensive)}"),
          "diabetes": f"Bernoulli({config.diabetes_probability})",
          "smoking": f"Bernoulli({config.smoking_probability})",
      },
      "mmse_model": {
          "formula": ("mmse = clip(round(intercept + wmh_pct*(wmh_ml/icv_ml*100)"
                      " + age_per_decade*(age-70)/10 + stroke*(stroke_ml>0)"
                      " + Normal(0, noise_sd)), 0, 30)"),
          **config.mmse_model.to_dict(),
      },
      "fazekas": {
          "rule": ("score = number of thresholds exceeded by the generated periventricular /"
                   " deep WMH volume (mL)"),
          "periventricular_ml": list(config.fazekas_pv_ml),
          "deep_ml": list(config.fazekas_deep_ml),
      },
      "subjects": {r["subject"]: r["truth"] for r in records},
      "config": config.to_dict(),
  }
