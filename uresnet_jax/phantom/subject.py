"""One subject: anatomy, lesions, contrast, acquisition and clinical record from (seed, index)."""
import math
from typing import Any

import ml_collections
import numpy as np
import threadpoolctl  # installed with nilearn (via scikit-learn)

from uresnet_jax.common.labelling import WMH, STROKE
from uresnet_jax.phantom.acquisition import (artefacts, protocol_name, reorient, thick_slices,
                                             upsample_inplane, voxel_noise)
from uresnet_jax.phantom import bright_tissue
from uresnet_jax.phantom.anatomy import (Canvas, carve_sulci, geometry, load_anatomy,
                                         sharpen_tissue, widen_sulci)
from uresnet_jax.phantom.calibration import FlairParts, calibrate
from uresnet_jax.phantom.clinical import fazekas, sample_risk_factors, sample_wmh_burden
from uresnet_jax.phantom.fields import Grid, rotation_matrix, smooth_noise
from uresnet_jax.phantom.knobs import uniform
from uresnet_jax.phantom.lesions import (Borders, deep_lesions, drop_specks, periventricular,
                                         rater_labels, strokes)

_INTENSITY_SCALE = 1000.0  # stored FLAIR/T1 = relative intensity x this, as int16


def subject_name(index: int) -> str:
  return f"sub-{index:03d}"


def generate_subject(index: int, seed: int, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Renders subject `index` of cohort `seed`, independently of the cohort size and other subjects.

  Returns arrays flair, t1 (int16, relative intensity x 1000), wm (float32 probability),
  brain_mask and labels (uint8) in the stored voxel order, their affine, the manifest row
  ("clinical") and the latent truth of the generative model ("truth").
  """
  # One BLAS thread: the same bits however many workers run (threaded GEMMs may sum in another
  # order), and faster than threads competing with the other workers.
  with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
    return _generate_subject(index, seed, config)


def _generate_subject(index: int, seed: int, config: ml_collections.ConfigDict) -> dict[str, Any]:
  anatomy = load_anatomy()
  # spawn(n)'s first streams are those of any smaller n: a stream added for new knobs leaves the
  # others (and so every earlier cohort) as they were.
  streams = np.random.SeedSequence([seed, index]).spawn(13)
  (rng_clin, rng_geo, rng_wmh, rng_stroke, rng_img, rng_mmse, rng_dr, rng_real, rng_kind,
   rng_grain, rng_sulci, rng_infarct, rng_tissue) = map(np.random.default_rng, streams)
  # Domain randomisation draws from a stream of its own, always in this order, so that its
  # neutral defaults leave every other draw (and so the paper's cohort) as it was.
  dr = dict(aspect=np.array([uniform(rng_dr, config.head_aspect) for _ in range(3)]),
            fov=config.fov_mm + uniform(rng_dr, config.fov_extra_mm),
            sulci=uniform(rng_dr, config.sulcal_widening_mm),
            rim=uniform(rng_dr, config.edge_rim), rim_mm=uniform(rng_dr, config.edge_rim_mm),
            ependymal=uniform(rng_dr, config.ependymal),
            ependymal_mm=uniform(rng_dr, config.ependymal_mm),
            blur=uniform(rng_dr, config.blur_mm), ringing=uniform(rng_dr, config.ringing),
            ghosting=uniform(rng_dr, config.ghosting), ghost_shift=rng_dr.uniform(0.1, 0.5),
            orientation=(str(rng_dr.choice(list(config.orientations))) if config.orientations
                         else config.orientation))
  # Healthy bright tissue (bright_tissue.py), from a further stream of its own.
  real = dict(gap=uniform(rng_real, config.slice_gap_mm),
              random_contrast=bool(rng_real.uniform() < config.random_contrast_probability),
              contrast=[uniform(rng_real, config.random_contrast) for _ in range(4)],
              irregularity=uniform(rng_real, config.edge_irregularity),
              margin=uniform(rng_real, config.mask_margin_mm), dura=uniform(rng_real, config.dura),
              sulcal=uniform(rng_real, config.sulcal_csf),
              choroid=uniform(rng_real, config.choroid_plexus),
              choroid_mm=uniform(rng_real, config.choroid_plexus_mm),
              flow=uniform(rng_real, config.csf_flow))

  # Clinical risk factors drive the WMH burden (log % of ICV).
  risk = sample_risk_factors(rng_clin, config)
  predictor, residual, target_pct = sample_wmh_burden(rng_clin, risk, config.wmh_model)
  lo_pct, hi_pct = config.wmh_model.clip_pct
  severity = math.log(target_pct / lo_pct) / math.log(hi_pct / lo_pct)

  geo = geometry(rng_geo, risk["male"], anatomy, config, dr["aspect"], dr["fov"], real["gap"])
  enlarge = (uniform(rng_geo, config.ventricle_enlargement_mm)
             + config.ventricle_enlargement_per_decade_mm * max(risk["age"] - 50, 0) / 10)
  asymmetry = uniform(rng_kind, config.ventricle_asymmetry) * rng_kind.choice([-1.0, 1.0])
  cv = Canvas(rng_geo, geo, enlarge, anatomy, config, asymmetry)
  sharpening = uniform(rng_tissue, config.tissue_sharpening)
  sharpen_tissue(cv, sharpening)
  sulci = dict(depth=uniform(rng_sulci, config.sulci_depth_mm),
               width=uniform(rng_sulci, config.sulci_width_mm))
  carve_sulci(rng_sulci, cv, sulci["depth"], sulci["width"], config.sulci_spacing_mm)
  widen_sulci(cv, dr["sulci"])

  # Lesions: deep foci, then periventricular caps and rims up to the target volume, strokes.
  borders = Borders(edge=uniform(rng_wmh, config.wmh_edge_mm),
                    shrink=uniform(rng_wmh, config.label_shrink_mm),
                    halo=uniform(rng_wmh, config.halo_mm))
  pv_texture, texture = smooth_noise(rng_wmh, cv.grid, config.pv_texture_smoothness_mm, 2)
  n_target = int(target_pct / 100 * float(cv.mask.sum()))
  deep_seen, deep = deep_lesions(rng_wmh, cv, severity,
                                 int((1 - config.pv_min_fraction) * n_target), borders, config)
  n_pv = n_target - int((deep >= 0.5).sum())
  pv_seen, pv, halo = periventricular(rng_wmh, cv, pv_texture, n_pv, deep, borders, config)
  # Deep infarcts' lobulated outline and patchy brightness, from a stream of their own; no field
  # is drawn at the neutral defaults.
  infarct_look = dict(irregularity=uniform(rng_infarct, config.infarct_irregularity),
                      heterogeneity=uniform(rng_infarct, config.infarct_heterogeneity))
  lobes = None
  if infarct_look["irregularity"] > 0:
    lobes = infarct_look["irregularity"] * smooth_noise(rng_infarct, cv.grid,
                                                        config.infarct_texture_mm)[0]
  stroke, cavity, stroke_type = strokes(rng_stroke, cv, anatomy, texture, borders.edge, config,
                                        rng_kind, lobes)
  seen = np.maximum(np.maximum(pv_seen, deep_seen), stroke)
  halo *= 1 - seen
  wmh_seen = seen - stroke
  wmh_label = np.maximum(np.maximum(pv, deep), stroke) - stroke
  pv_ml = float(((pv >= 0.5) & (stroke < 0.5)).sum()) * cv.voxel_mm3 / 1000
  deep_ml = float(((deep >= 0.5) & (pv < 0.5) & (stroke < 0.5)).sum()) * cv.voxel_mm3 / 1000

  # Contrast on the fine grid, then thick-slice partial volume.
  flair_gm, flair_csf = uniform(rng_img, config.flair_gm), uniform(rng_img, config.flair_csf)
  t1_gm, t1_csf = uniform(rng_img, config.t1_gm), uniform(rng_img, config.t1_csf)
  t1_wmh, t1_glio = uniform(rng_img, config.t1_wmh), uniform(rng_img, config.t1_gliosis)
  infarct = uniform(rng_img, config.infarct_intensity)
  if real["random_contrast"]:  # SynthSeg-like: tissue classes at random intensities
    flair_gm, flair_csf, dr["rim"], real["choroid"] = real["contrast"]
  hetero = 1 + uniform(rng_img, config.wmh_heterogeneity) * texture
  csf = np.maximum(cv.mask - cv.gm - cv.wm, 0)
  keep = 1 - seen
  gliosis = stroke - cavity
  t1 = ((cv.wm + t1_gm * cv.gm + t1_csf * csf) * keep + t1_csf * cavity + t1_wmh * wmh_seen
        + t1_glio * gliosis)
  tissue = cv.wm + flair_gm * cv.gm + flair_csf * csf
  if dr["rim"] > 0:  # bright outer edge of an imperfectly skull-stripped brain
    tissue = tissue + bright_tissue.edge_rim(rng_real, cv, dr["rim"], dr["rim_mm"],
                                             real["irregularity"])
  if dr["ependymal"] > 0:  # bright lining of the ventricles
    tissue = tissue + dr["ependymal"] * np.exp(-np.abs(cv.vdist) / dr["ependymal_mm"]) * cv.mask
  if real["sulcal"] > 0:
    tissue = tissue + bright_tissue.sulcal_csf(cv, csf, real["sulcal"])
  if real["choroid"] > 0:
    tissue = tissue + bright_tissue.choroid_plexus(rng_real, cv, real["choroid"],
                                                   real["choroid_mm"])
  if real["flow"] > 0:
    tissue = tissue + bright_tissue.csf_flow(rng_real, cv, csf, real["flow"])
  cavity_signal = flair_csf * cavity
  if config.cavity_like_sulci and real["sulcal"] > 0:
    cavity_signal = cavity_signal + bright_tissue.sulcal_csf(cv, cavity, real["sulcal"])
  infarct_signal = infarct * gliosis * hetero
  if infarct_look["heterogeneity"] > 0:  # patchy: bright and faint parts
    patches = smooth_noise(rng_infarct, cv.grid, config.infarct_texture_mm)[0]
    infarct_signal = infarct_signal * np.maximum(1 + infarct_look["heterogeneity"] * patches, 0.2)
  fine = dict(tissue=tissue * keep,
              cavity=cavity_signal, seen=wmh_seen, wmh=wmh_seen * hetero,
              infarct=infarct_signal, halo=halo * hetero)
  thick = {k: thick_slices(v, geo.profile) for k, v in fine.items()}
  t1, wm, mask, wmh_label, stroke = (thick_slices(x, geo.profile)
                                     for x in (t1, cv.wm, cv.mask, wmh_label, stroke))
  csf = thick_slices(csf * keep + cavity, geo.profile)  # dark CSF, infarct cavities included

  # Acquisition: bias field and noise on the thick-slice grid, then in-plane interpolation to the
  # native grid (a zero-filled-like reconstruction: correlated noise), majority labels.
  step = np.array([cv.grid.step[0], cv.grid.step[1], geo.zooms[2]])
  log_bias = smooth_noise(rng_img, Grid(mask.shape, cv.grid.start, step),
                          config.bias_field_smoothness_mm)[0]
  bias_std = uniform(rng_img, config.bias_field_std)
  bias = np.exp(bias_std * log_bias)
  bias /= bias[mask >= 0.5].mean()
  noise = rng_img.standard_normal((4,) + mask.shape, dtype=np.float32)
  noise_std = uniform(rng_img, config.noise_std)
  noise *= noise_std
  thick = {k: upsample_inplane(v, geo.k) for k, v in thick.items()}
  t1, wm, mask, csf, wmh_label, stroke, bias = (
      upsample_inplane(x, geo.k) for x in (t1, wm, mask, csf, wmh_label, stroke, bias))
  noise = np.stack([upsample_inplane(x, geo.k) for x in noise])
  brain = mask >= 0.5
  labels = rater_labels(wmh_label, stroke, csf, uniform(rng_wmh, config.label_max_csf), brain)
  min_voxels = uniform(rng_wmh, config.label_min_wmh_mm3) / float(np.prod(geo.zooms))
  labels = drop_specks(labels, min_voxels)
  strip, band = bright_tissue.skull_strip(brain, geo.zooms, real["margin"])
  labels = labels * strip
  if band.any():  # dura and marrow a loose skull strip takes in
    thick["tissue"] = thick["tissue"] + real["dura"] * band

  # FLAIR: lesion intensity, border profile and halo calibrated to the realism table (or drawn).
  parts = FlairParts(bias=bias, noise=noise[:2], lift=labels == WMH, **thick)
  if config.calibrate:
    targets = [uniform(rng_img, r) for r in (config.wmh_mean_z, config.wmh_p10_z,
                                             config.brain_p99_z)]
    intensity, profile, halo_gain = calibrate(parts.subset(brain), labels[brain], *targets)
  else:
    intensity, profile = uniform(rng_img, config.lesion_intensity), 1.0
    intensity = max(intensity, config.lesion_min_over_gm * flair_gm)  # WMH outshine the cortex
    halo_gain = uniform(rng_img, config.halo_gain)
  flair = parts.render(intensity, profile, halo_gain)
  t1 = np.sqrt((bias * t1 + noise[2])**2 + noise[3]**2)
  flair, t1 = (artefacts(x, geo.zooms, dr["blur"], dr["ringing"], dr["ghosting"], dr["ghost_shift"])
               for x in (flair, t1))
  grain = uniform(rng_grain, config.voxel_noise)  # real FLAIR's grain at its own voxel size
  flair, t1 = (voxel_noise(rng_grain, x, grain) for x in (flair, t1))

  def full(x: np.ndarray, dtype: Any) -> np.ndarray:
    out = np.zeros(geo.matrix, dtype)
    out[geo.crop[0]:geo.crop[0] + x.shape[0], geo.crop[1]:geo.crop[1] + x.shape[1]] = x
    return out

  def scaled(x: np.ndarray) -> np.ndarray:
    return full(np.clip(np.round(x * strip * _INTENSITY_SCALE), 0, np.iinfo(np.int16).max),
                np.int16)

  arrays = dict(flair=scaled(flair), t1=scaled(t1),
                wm=full(np.round(wm * brain * 256) / 256, np.float32),  # 8 bits: compresses
                brain_mask=full(strip, np.uint8), labels=full(labels, np.uint8))

  # Affine: voxel -> slice frame -> scanner (stack tilted about left-right, a table offset).
  voxel_to_slice = np.eye(4)
  voxel_to_slice[:3, :3] = np.diag(geo.zooms)
  voxel_to_slice[:3, 3] = geo.native_start
  oblique = np.eye(4)
  oblique[:3, :3] = rotation_matrix([uniform(rng_geo, config.oblique_deg), 0.0, 0.0])
  oblique[:3, 3] = [0.0, -15.0, 30.0]
  arrays, affine = reorient(arrays, oblique @ voxel_to_slice, dr["orientation"])

  voxel_ml = float(np.prod(geo.zooms)) / 1000
  icv_ml = float(brain.sum()) * voxel_ml
  wmh_ml = float((labels == WMH).sum()) * voxel_ml
  stroke_ml = float((labels == STROKE).sum()) * voxel_ml
  wmh_pct = 100 * wmh_ml / icv_ml
  mm = config.mmse_model
  mmse = (mm.intercept + mm.wmh_pct * wmh_pct + mm.age_per_decade * (risk["age"] - 70) / 10
          + mm.stroke * (stroke_ml > 0) + rng_mmse.normal(0.0, mm.noise_sd))
  clinical = dict(age=risk["age"], sex="M" if risk["male"] else "F",
                  hypertension=risk["hypertension"], diabetes=risk["diabetes"],
                  smoking=risk["smoking"], sbp=risk["sbp"],
                  fazekas_pv=fazekas(pv_ml, config.fazekas_pv_ml),
                  fazekas_deep=fazekas(deep_ml, config.fazekas_deep_ml),
                  mmse=int(np.clip(round(mmse), 0, 30)),
                  protocol=protocol_name(geo.zooms[:2] + (geo.thickness_mm,)),
                  icv_ml=round(icv_ml, 1), wmh_ml=round(wmh_ml, 2), stroke_ml=round(stroke_ml, 2),
                  stroke_type=stroke_type if stroke_ml > 0 else "none")
  truth = dict(wmh_linear_predictor=predictor, wmh_residual=residual,
               target_wmh_pct_icv=target_pct, generated_wmh_pct_icv=wmh_pct,
               periventricular_ml=pv_ml, deep_ml=deep_ml, lesion_intensity=intensity,
               lesion_profile=profile, halo_gain=halo_gain, strokes_placed=stroke_type,
               ventricle_enlargement_mm=enlarge, ventricle_asymmetry=asymmetry,
               flair_gm=flair_gm, flair_csf=flair_csf,
               deformation_mm=cv.deform_mm, noise_std=noise_std, bias_field_std=bias_std,
               voxel_noise=grain, tissue_sharpening=sharpening,
               sulci_depth_mm=sulci["depth"], sulci_width_mm=sulci["width"],
               **{f"infarct_{k}": v for k, v in infarct_look.items()},
               **{f"dr_{k}": v.tolist() if isinstance(v, np.ndarray) else v
                  for k, v in dr.items()},
               **{f"real_{k}": v for k, v in real.items()})
  return dict(subject=subject_name(index), affine=affine, clinical=clinical, truth=truth,
              **arrays)
