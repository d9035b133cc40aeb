"""The built-in phantom cohort: FLAIR-like WMH + stroke subjects made from the MNI152 anatomy.

Each subject is nilearn's MNI152 1 mm anatomy, scaled, rotated and smoothly deformed, with
enlarged ventricles, periventricular and deep WMH whose volume follows a known risk-factor model,
strokes in about a third of subjects, a bias field and Rician noise, acquired on a clinical 2D
protocol. The anatomy is rendered once per subject on a "fine" grid aligned with the protocol's
slices (in-plane every k-th native voxel, ~1 mm; a few sub-slices per slice), so each template
channel is sampled once, directly, and thick-slice partial volume is a mean over sub-slices.
Lesion intensities are calibrated per subject to the realism table of docs/cohorts.md.
Knobs and their ranges: uresnet_jax/phantom/config.py.

Run: python -m uresnet_jax.phantom --out=data/phantom --subjects=40 --seed=0
"""
from uresnet_jax.phantom.acquisition import protocol_name
from uresnet_jax.phantom.clinical import (fazekas, generative_model, sample_risk_factors,
                                          sample_wmh_burden, wmh_covariates, wmh_linear_predictor)
from uresnet_jax.phantom.knobs import validate_config
from uresnet_jax.phantom.subject import generate_subject, subject_name
from uresnet_jax.phantom.writer import (CLINICAL_COLUMNS, fingerprint, GENERATIVE_MODEL,
                                        IMAGE_COLUMNS, MANIFEST, write_cohort, write_share)

__all__ = ["CLINICAL_COLUMNS", "GENERATIVE_MODEL", "IMAGE_COLUMNS", "MANIFEST", "fazekas", "fingerprint",
           "generate_subject", "generative_model", "protocol_name", "sample_risk_factors",
           "sample_wmh_burden", "subject_name", "validate_config", "wmh_covariates",
           "wmh_linear_predictor", "write_cohort", "write_share"]
