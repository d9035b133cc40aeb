"""The bundled release model: uResNet trained on a domain-randomised phantom alone.

Differences from configs/demo.py: every subject is drawn from wide ranges of anatomy (head size and
shape, deformation, ventricular and sulcal atrophy, field of view, stored axis order), contrast
(grey matter, CSF suppression, a bright brain edge, bright ventricle walls), lesions (barely above
white matter to very bright, punctate to confluent, the four stroke types) and acquisition (any
protocol of 0.45-1.2 mm in-plane and 1-7 mm slices, bias field, noise, blur, Gibbs ringing, motion
ghosts); healthy-tissue patches teach what is not a lesion. Four domains are held out of training
and scored at the end (config.domains): 8 mm slices, poorly suppressed CSF, very bright lesions and
strong deformations, against an in-domain cohort of the same size and seed.

Run: python -m uresnet_jax.main --config=configs/release.py --workdir=runs/release
     python -m uresnet_jax.export --workdir=runs/release --output=uresnet_jax/release_model
"""
import ml_collections

from configs import demo
from configs import tiny as tiny_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the same ranges and domains on the tests' tiny scale (configs/tiny.py)."""
  if arg not in ("", "tiny"):
    raise ValueError(f"configs/release.py:{arg}: expected no argument or tiny")
  config = demo.get_config()
  config.data.cohort = "data/phantom_release"
  config.data.phantom_subjects = 96
  config.data.num_folds = 12  # 88 subjects to train on, 8 in-domain subjects to check in training

  p = config.phantom
  # Anatomy.
  p.head_scale = (0.8, 1.02)
  p.head_aspect = (0.92, 1.08)
  p.rotation_deg = (-12.0, 12.0)
  p.translation_mm = (-10.0, 10.0)
  p.deformation_mm = (1.0, 3.5)  # held out: 4.5-5.5
  p.ventricle_enlargement_mm = (0.0, 4.0)
  p.sulcal_widening_mm = (0.0, 2.5)
  p.fov_extra_mm = (-20.0, 30.0)
  p.orientations = ("RAS", "LAS", "LPS", "RPS")
  # Contrast.
  p.flair_gm = (1.05, 1.5)  # held out: 1.6-1.8
  p.flair_csf = (0.05, 0.6)  # held out: 0.65-0.8
  p.edge_rim = (0.15, 0.9)
  p.edge_rim_mm = (0.8, 3.0)
  p.ependymal = (0.0, 0.6)
  p.ependymal_mm = (0.5, 2.0)
  # Healthy bright tissue of real FLAIR, which the first release called stroke.
  p.edge_irregularity = (0.3, 1.2)
  p.mask_margin_mm = (-1.5, 2.5)  # held out: 3-4.5
  p.dura = (0.4, 1.2)
  p.sulcal_csf = (0.2, 0.7)
  p.choroid_plexus = (0.3, 1.2)  # held out: 1.4-1.8
  p.choroid_plexus_mm = (3.0, 6.0)
  p.csf_flow = (0.0, 0.6)  # held out: 0.8-1.1
  p.random_contrast_probability = 0.15
  p.random_contrast = (0.3, 1.8)
  p.lesion_min_over_gm = 1.08  # real WMH outshine the cortex
  # Lesions: contrast drawn, not calibrated to one clinical table.
  p.calibrate = False
  p.lesion_intensity = (1.1, 2.4)  # calibrated cohorts: 1.5-1.85; held out: 2.6-3.4
  p.halo_gain = (0.0, 0.8)
  p.wmh_heterogeneity = (0.02, 0.2)  # faint parts within lesions
  p.wmh_edge_mm = (0.4, 2.2)  # soft, fading borders
  p.deep_count = (5.0, 40.0)
  p.deep_radius_mm = (0.6, 2.6)  # 1-voxel punctate foci to confluent patches
  p.label_min_wmh_mm3 = (1.0, 6.0)
  p.wmh_model.intercept = 0.3  # loads from a trace (0.1 % of ICV) to confluent (7.5 %)
  p.wmh_model.noise_sd = 0.9
  p.wmh_model.clip_pct = (0.1, 7.5)
  p.stroke_probability = 0.5
  p.stroke_type_weights = (0.4, 0.2, 0.4)
  p.old_infarct_probability = 0.6
  p.infarct_intensity = (0.7, 1.3)
  # Acquisition.
  p.random_protocol_probability = 1.0
  p.random_inplane_mm = (0.45, 1.2)
  p.random_thickness_mm = (1.0, 7.0)  # held out: 8 mm
  p.slice_gap_mm = (0.0, 1.5)
  p.noise_std = (0.015, 0.08)
  p.bias_field_std = (0.02, 0.2)
  p.blur_mm = (0.0, 0.8)
  p.ringing = (0.0, 0.25)
  p.ghosting = (0.0, 0.06)

  config.sampling.wmh_rate = 0.01
  config.sampling.stroke_rate = 0.3
  config.sampling.healthy_rate = 0.5  # healthy patches per lesion patch ...
  config.sampling.bright_share = 0.6  # ... most of them on healthy tissue brighter than z = 1

  config.train.epochs = 10  # about 50 min on 2 CPU cores
  config.train.decay_epoch = 8
  config.train.eval_every = 10

  # What a new bundled model must meet (python -m uresnet_jax.release_gate): on real labelled
  # scans the user supplies, and on the phantom's held-out domains.
  config.release_gate = ml_collections.ConfigDict()
  config.release_gate.stroke_dice_min = 0.40  # each scan with expert stroke ...
  config.release_gate.stroke_called_min_pct = 50.0  # ... with this much of its infarct called stroke
  config.release_gate.false_stroke_max_ml = 1.0  # each stroke-free scan
  config.release_gate.wmh_dice_mean_min = 0.45  # mean over the scans with expert WMH
  config.release_gate.phantom_false_stroke_median_max_ml = 0.5  # each held-out domain

  d = config.domains
  d.subjects = 6
  d.held_out.thick_8mm = dict(random_thickness_mm=(8.0, 8.0))
  d.held_out.csf_unsuppressed = dict(flair_csf=(0.65, 0.8))
  d.held_out.bright_lesions = dict(lesion_intensity=(2.6, 3.4))
  d.held_out.strong_deformation = dict(deformation_mm=(4.5, 5.5))
  d.held_out.bright_cortex = dict(flair_gm=(1.6, 1.8))
  d.held_out.choroid_plexus = dict(choroid_plexus=(1.4, 1.8))
  d.held_out.loose_skull_strip = dict(mask_margin_mm=(3.0, 4.5))
  d.held_out.csf_flow = dict(csf_flow=(0.8, 1.1))
  if arg == "tiny":
    _shrink(config)
  return config


def own_cohort(config: ml_collections.ConfigDict, name: str, arg: str) -> None:
  """A later round's phantom cohort of its own, data/<name> (data/<name>_tiny at the tests' scale),
  so that a round's new phantom ranges never mix with an earlier round's subjects."""
  config.data.cohort = f"data/{name}_tiny" if arg == "tiny" else f"data/{name}"


def _shrink(config: ml_collections.ConfigDict) -> None:
  tiny = tiny_config.get_config()
  for key in ("data.cohort", "data.records_dir", "data.phantom_subjects", "sampling.patch_size",
              "sampling.max_shift", "model.base_width", "train.batch_size",
              "predict.batch_slices"):
    section, field = key.split(".")
    config[section][field] = tiny[section][field]
  config.data.num_folds = 2
  config.sampling.wmh_rate = 0.003
  config.sampling.stroke_rate = 0.02
  config.train.epochs = 1
  config.train.decay_epoch = 1
  config.train.eval_every = 1
  config.domains.subjects = 1
  config.domains.root = "data/domains_tiny"
  for name in ("bright_cortex", "choroid_plexus", "loose_skull_strip", "csf_flow"):
    del config.domains.held_out[name]  # the tests' time: four domains are enough to check the flow
