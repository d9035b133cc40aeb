"""Every randomisation knob of the phantom cohort generator (uresnet_jax/phantom/).

A `(lo, hi)` tuple is a range sampled uniformly and independently per subject; widen the ranges
for domain-randomised training data. Intensities are relative to normal white matter (= 1) before
the bias field. The defaults reproduce the realism table of docs/cohorts.md on the three clinical 2D
FLAIR protocols. Override on the command line, e.g. `--config.noise_std=(0.02,0.05)`.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """The phantom generator's defaults."""
  c = ml_collections.ConfigDict()
  c.num_workers = 2  # processes generating subjects; the output is the same for any value

  # Acquisition protocols (docs/cohorts.md): in-plane x in-plane x slice thickness, in mm.
  c.protocols = ((0.94, 0.94, 6.5), (0.47, 0.47, 6.0), (1.0, 1.0, 4.0))
  c.protocol_weights = (1.0, 1.0, 1.0)  # relative frequency of each listed protocol
  c.random_protocol_probability = 0.0  # share of subjects given a random protocol, drawn from:
  c.random_inplane_mm = (0.47, 1.0)  # in-plane spacing of a random protocol
  c.random_thickness_mm = (1.0, 7.0)  # slice thickness of a random protocol
  c.fov_mm = 240.0  # in-plane field of view; matrix = fov / spacing, rounded up to even
  # Anatomy is rendered in-plane at the protocol spacing times round(fine_inplane_mm / spacing),
  # through-plane on sub-slices at most fine_slice_mm apart, averaged per slice (partial volume).
  c.fine_inplane_mm = 1.0
  c.fine_slice_mm = 1.7
  c.orientation = "RAS"  # stored voxel axis order, e.g. "RAS", "LAS" (dcm2niix-like), "LPS"
  c.oblique_deg = (-12.0, 12.0)  # slice-stack tilt about left-right, in the affine only

  # Head geometry and anatomy (MNI152 1 mm, deformed per subject).
  c.head_scale = (0.85, 0.95)  # isotropic size relative to MNI152 (ICV about 1.2-1.7 L)
  c.male_head_scale = 1.03  # extra size factor for men
  c.rotation_deg = (-7.0, 7.0)  # head rotation about each axis, relative to the slice stack
  c.translation_mm = (-5.0, 5.0)  # head offset along each axis of the slice stack
  c.deformation_mm = (1.0, 2.5)  # std of the smooth random displacement field
  c.deformation_smoothness_mm = 20.0  # B-spline knot spacing of that field
  c.ventricle_enlargement_mm = (0.0, 1.5)  # ventricular dilation (atrophy) at age 50 ...
  c.ventricle_enlargement_per_decade_mm = 0.6  # ... plus this per decade of age above 50

  # FLAIR contrast (white matter = 1).
  c.flair_gm = (1.15, 1.35)  # grey matter is slightly brighter than white matter
  c.flair_csf = (0.1, 0.25)  # suppressed CSF
  # calibrate=True solves, per subject, the lesion intensity, the sharpness of the WMH borders
  # (partial volume) and the brightness of the faint unlabelled halo around periventricular WMH
  # so that the brain-z statistics of the realism table are met at targets drawn from:
  c.calibrate = True
  c.wmh_mean_z = (1.85, 2.05)  # mean WMH z (table: 1.8-2.1)
  c.wmh_p10_z = (1.13, 1.27)  # 10th percentile WMH z (table: 1.1-1.3)
  c.brain_p99_z = (1.4, 1.8)  # 99th percentile z of unlabelled brain (table: 1.3-1.9)
  # calibrate=False draws them instead (wider domain randomisation):
  c.lesion_intensity = (1.3, 2.2)  # WMH relative to white matter
  c.halo_gain = (0.0, 0.4)  # halo brightness, as a share of the lesion contrast
  c.wmh_heterogeneity = (0.02, 0.05)  # relative std of the smooth texture inside lesions
  c.wmh_edge_mm = (0.6, 1.2)  # width over which a lesion border goes from 0 to 100 % lesion
  c.label_shrink_mm = (0.3, 1.0)  # raters outline the core: a bright rim this wide is unlabelled
  c.label_max_csf = (0.2, 0.35)  # WMH voxels averaged with more CSF look dark: unlabelled
  c.label_min_wmh_mm3 = (4.0, 8.0)  # smaller WMH components (26-connected, native) unlabelled
  c.halo_mm = (2.0, 5.0)  # width of the faint halo fading out around periventricular WMH
  c.noise_std = (0.025, 0.045)  # Rician noise std relative to white matter
  c.bias_field_std = (0.02, 0.05)  # std of the smooth log bias field
  c.bias_field_smoothness_mm = 60.0  # B-spline knot spacing of that field

  # T1 contrast (white matter = 1), rendered from the same anatomy and lesions.
  c.t1_gm = (0.65, 0.8)
  c.t1_csf = (0.2, 0.35)
  c.t1_wmh = (0.7, 0.9)  # WMH are mildly T1-hypointense
  c.t1_gliosis = (0.55, 0.75)  # infarct rim

  # WMH geometry. Severity s in [0, 1]: the subject's WMH burden, log scale, within the model clip.
  c.pv_decay_mm = (4.0, 8.0)  # decay length of the periventricular lesion field
  c.pv_cap_weight = (0.6, 1.5)  # extra weight of frontal and occipital caps over the bodies
  c.pv_texture = (0.35, 0.6)  # log-amplitude of the field making caps and rims irregular
  c.pv_texture_smoothness_mm = 5.0  # B-spline knot spacing of that field
  c.pv_min_fraction = 0.45  # the periventricular share of the WMH volume is at least this
  c.deep_count = (12.0, 30.0)  # number of deep lesions at s = 0 ...
  c.deep_count_severity_gain = 1.5  # ... times (1 + gain * s)
  c.deep_radius_mm = (1.3, 2.2)  # in-plane semi-axis of a deep lesion at s = 0 ...
  c.deep_radius_severity_gain = 0.15  # ... times (1 + gain * s)
  c.deep_elongation = (1.0, 2.0)  # superior-inferior over in-plane semi-axis (radial foci)
  c.deep_cluster_probability = (0.05, 0.5)  # chance a deep lesion grows satellites: s = 0, s = 1
  c.deep_cluster_size = (2, 6)  # satellites per cluster (integers, inclusive)
  c.juxtaventricular_probability = 0.0  # chance a deep lesion is centred 1-4 mm from the
  #                                       ventricles (an ovoid on the wall), not deep in the WM
  c.infratentorial_probability = 0.0  # chance a deep lesion is centred in the brainstem or the
  #                                     cerebellar white matter, which the cerebral draw never reaches

  # Strokes (label 2): about a third of subjects in the paper's cohort (59 of 167).
  c.stroke_probability = 0.35
  c.stroke_type_weights = (0.4, 0.2, 0.4)  # cortical wedge, striatocapsular, lacunar
  c.extra_lacune_probability = 0.3  # a cortical or striatocapsular stroke also has a lacune
  c.lacune_count = (1, 3)  # lacunes of a lacunar-stroke subject (integers, inclusive)
  c.lacune_diameter_mm = (5.0, 15.0)  # smaller ones vanish in thick slices
  c.cortical_half_angle_deg = (15.0, 30.0)  # wedge opening (axial; up to 1.6x sup-inf)
  c.striatocapsular_semi_axes_mm = ((5.0, 8.0), (9.0, 16.0), (6.0, 11.0))  # L-R, A-P, S-I
  c.old_infarct_probability = 0.7  # cavitated: CSF-dark core and a bright gliotic rim
  c.gliotic_rim_mm = (1.5, 3.5)
  c.cavity_like_sulci = False  # an old infarct's cavity is CSF: it takes the sulcal CSF's
  #                              brightening (sulcal_csf) where the sulci do; False: always the
  #                              darkest CSF level, darker than the sulci around a cortical one
  c.infarct_intensity = (0.9, 1.2)  # recent infarct or rim, relative to the WMH intensity
  # Strokes as real FLAIR shows them (docs/sim_to_real.md, round 3). Neutral defaults; drawn from a
  # stream of their own, so that these defaults leave the paper's cohort as it was, bit for bit.
  c.cortical_territory_weights = (1.0, 0.0, 0.0, 0.0)  # MCA branch, ACA, PCA, watershed wedges
  c.cortical_extent = (1.0, 1.0)  # share of its full depth a cortical wedge keeps, from the
  #                                 cortex in: < 1 gives small cortical infarcts
  c.recent_swelling = (0.0, 0.0)  # a recent infarct takes in this share of the sulcal CSF inside
  #                                 it (swelling effaces the sulci); old infarcts never do
  c.thalamic_probability = 0.0  # a deep infarct in the thalamus instead of the striatum/capsule
  c.recent_lacune_probability = 0.0  # a lacune that is recent: bright, not yet a CSF cavity
  c.embolic_count = (0, 0)  # further small cortical or subcortical infarcts (integers, inclusive)
  c.ventricle_asymmetry = (0.0, 0.0)  # the enlargement of one lateral ventricle over the
  #                                     other's, relative (sign and side drawn)
  # Deep infarcts as real FLAIR shows them (docs/sim_to_real.md, round 18). Neutral defaults; the
  # outline and texture are drawn from a stream of their own.
  c.striatocapsular_centre_z_mm = (0.0, 12.0)  # MNI superior-inferior of a striatocapsular
  #                                              infarct's centre: up to ~28 reaches the corona
  #                                              radiata beside the ventricle body
  c.infarct_irregularity = (0.0, 0.0)  # lobulated outline of the ellipsoid infarcts (striato-
  #                                      capsular, thalamic, lacunes, deep emboli): the border
  #                                      moves by this share of the semi-axis (smooth field)
  c.infarct_heterogeneity = (0.0, 0.0)  # relative std of a smooth texture multiplying the bright
  #                                       infarct tissue (recent infarct, gliotic rim)
  c.infarct_texture_mm = 4.0  # B-spline knot spacing of those two fields

  # Clinical generative model (ground truth for the risk-factor analysis).
  c.age_years = (50.0, 90.0)
  c.male_probability = 0.5
  c.hypertension_logit = 0.4  # logit of hypertension at age 70 ...
  c.hypertension_logit_per_decade = 0.6  # ... plus this per decade of age above 70
  c.sbp_normotensive = (126.0, 10.0)  # systolic BP mean and sd (mmHg) without hypertension
  c.sbp_hypertensive = (148.0, 14.0)  # ... and with hypertension
  c.diabetes_probability = 0.2
  c.smoking_probability = 0.3

  # log(WMH % of ICV) = intercept + sum(coefficient * covariate) + Normal(0, noise_sd), clipped.
  c.wmh_model = ml_collections.ConfigDict()
  c.wmh_model.intercept = 1.0  # age 70, normotensive, sbp 140, no diabetes, non-smoker, female
  c.wmh_model.age_per_decade = 0.35  # covariate (age - 70) / 10
  c.wmh_model.hypertension = 0.4
  c.wmh_model.sbp_per_10mmhg = 0.08  # covariate (sbp - 140) / 10
  c.wmh_model.diabetes = 0.2
  c.wmh_model.smoking = 0.0  # no effect, by construction
  c.wmh_model.male = 0.0  # no effect, by construction
  c.wmh_model.noise_sd = 0.4
  c.wmh_model.clip_pct = (1.0, 7.5)  # within the realism table's lesion load, 0.9-8.5 %

  # Fazekas scores from the generated volumes (a score is the number of thresholds exceeded).
  c.fazekas_pv_ml = (2.0, 25.0, 60.0)  # caps or thin lining, smooth halo, irregular into deep WM
  c.fazekas_deep_ml = (0.3, 1.5, 4.0)  # punctate foci, beginning confluence, large confluent

  # MMSE = intercept + coefficients x covariates + Normal(0, noise_sd), rounded, within [0, 30].
  c.mmse_model = ml_collections.ConfigDict()
  c.mmse_model.intercept = 29.5
  c.mmse_model.wmh_pct = -0.6  # per % of ICV of generated WMH
  c.mmse_model.age_per_decade = -0.5
  c.mmse_model.stroke = -1.0
  c.mmse_model.noise_sd = 1.2

  # Domain randomisation beyond the clinical cohort (configs/release.py widens these). The
  # defaults are neutral: they leave the paper's cohort as it was, bit for bit.
  c.head_aspect = (1.0, 1.0)  # per-axis head-shape factor on top of head_scale (each axis drawn)
  c.sulcal_widening_mm = (0.0, 0.0)  # cortical atrophy: tissue eroded this far into the cortex
  c.fov_extra_mm = (0.0, 0.0)  # added to fov_mm per subject
  c.orientations = ()  # stored axis orders drawn per subject, e.g. ("RAS", "LPS"); () = orientation
  c.edge_rim = (0.0, 0.0)  # brightness (x white matter) of a rim at the brain's outer edge, as an
  #                          imperfect skull strip leaves it (dura, marrow, partial volume)
  c.edge_rim_mm = (1.0, 3.0)  # its width (e-folding distance inside the brain mask)
  c.ependymal = (0.0, 0.0)  # brightness (x white matter) along the ventricle walls (ependyma,
  #                           choroid plexus): bright, unlabelled, hugging periventricular WMH
  c.ependymal_mm = (0.5, 1.5)  # its width
  c.blur_mm = (0.0, 0.0)  # in-plane Gaussian blur (sigma, mm) of the reconstructed image
  c.ringing = (0.0, 0.0)  # Gibbs ringing: share of in-plane k-space cut along the phase axis
  c.ghosting = (0.0, 0.0)  # motion ghosts: amplitude of a copy shifted along the phase axis

  # Healthy bright tissue of real FLAIR (docs/sim_to_real.md): what a model trained
  # without it calls stroke. Neutral defaults, drawn from a stream of their own.
  c.slice_gap_mm = (0.0, 0.0)  # gap between thick slices: spacing = thickness + gap
  c.random_contrast_probability = 0.0  # share of subjects whose grey matter, CSF, edge rim and
  c.random_contrast = (0.3, 1.8)  # choroid plexus intensities (x white matter) are drawn from here
  c.edge_irregularity = (0.0, 0.0)  # relative amplitude of a smooth field making the edge rim
  #                                   patchy (dura, vessels, skull-strip residue)
  c.mask_margin_mm = (0.0, 0.0)  # skull-strip error: brain mask dilated (> 0) or eroded (< 0)
  c.dura = (0.6, 1.4)  # brightness (x white matter) of what a dilated mask takes in
  c.sulcal_csf = (0.0, 0.0)  # brightness added to CSF away from the ventricles (sulcal partial
  #                            volume, inflow): sulci and the cortical surface stop being dark
  c.choroid_plexus = (0.0, 0.0)  # brightness (x white matter) of the choroid plexus in each atrium
  c.choroid_plexus_mm = (3.0, 6.0)  # its radius
  c.csf_flow = (0.0, 0.0)  # amplitude of patchy bright CSF flow artefacts in the ventricles
  c.lesion_min_over_gm = 0.0  # with calibrate=False, lesions at least this x grey matter
  # Noise of real FLAIR at its own voxel size (docs/sim_to_real.md, round 4). noise_std is drawn
  # on the thick-slice grid, before in-plane interpolation and the reconstruction filters smooth
  # it: a phantom's fine texture, after preprocessing, is half a real scan's. Neutral default,
  # drawn from a stream of its own.
  c.voxel_noise = (0.0, 0.0)  # Rician noise std (x white matter) drawn at each stored voxel
  # Sulci of a real convexity (docs/sim_to_real.md, round 6): the MNI152 average has them blurred
  # away. Neutral default, drawn from a stream of its own.
  c.sulci_depth_mm = (0.0, 0.0)  # CSF clefts carved this deep into the cortex (0: none)
  c.sulci_width_mm = (1.0, 3.0)  # their width at the brain's surface
  c.sulci_spacing_mm = 10.0  # knot spacing of the random field whose zero surfaces they follow
  # Deep anatomy of real FLAIR (docs/sim_to_real.md, round 22): the MNI152 average blurs the
  # putamen, caudate and thalamus into the internal capsule between them. Neutral default, drawn
  # from a stream of its own.
  c.tissue_sharpening = (0.0, 0.0)  # share of the way each voxel's grey/white split moves to a
  #                                   crisp boundary (0: the average's blend, 1: crisp)
  return c
