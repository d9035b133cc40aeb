"""Every knob of prediction (the Predictor, `predict` and its tables), with documented defaults.

`configs/default.py` includes it as `config.predict`, so a training run's own evaluation uses the
same settings; `python -m uresnet_jax.predict` exposes each field as a flag of the same name.
"""
from typing import Callable

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Inference.
  c.batch_slices = 8  # axial slices per model call (rounded up to a multiple of the devices)
  c.bucket = 16  # the brain's bounding box is padded up to multiples of this: one compilation per bucket
  c.crop_margin = 8  # voxels kept around the brain's bounding box (in-plane; 8 changed 4 of 236k
  # lesion voxels of the demo's held-out fold against whole slices, 16 none)
  c.tta = False  # average the class probabilities over the 4 in-plane flips (4 passes per slice)
  # Post-processing of the label map, on the scan's native grid.
  c.min_lesion_mm3 = 0.0  # connected lesions smaller than this are set to background
  # A stroke lesion counts as stroke only when its mean stroke probability reaches this; the others
  # are stroke candidates (background in the label map, listed in lesions.csv). 0: every argmax
  # stroke lesion counts. A model calibrates it on data it was not tested on (docs/sim_to_real.md).
  c.stroke_threshold = 0.0
  # The volume interval: the class volume with the decision threshold on its probability moved
  # from the argmax to `interval_high_p` (low end of the interval) and `interval_low_p` (high end).
  c.interval_low_p = 0.3
  c.interval_high_p = 0.7
  c.ambiguity_margin = 0.2  # a lesion is `ambiguous` when |mean p(WMH) - mean p(stroke)| < this
  # Lesion location (an approximation without an atlas: docs/predict.md, "Lesion location").
  c.ventricle_z = -1.0  # FLAIR z-score below which deep brain voxels count as ventricular CSF
  c.ventricle_depth_mm = 15.0  # ventricular CSF lies at least this deep below the brain surface
  c.periventricular_mm = 10.0  # within this distance of the ventricles: periventricular
  c.juxtacortical_mm = 5.0  # within this depth below the brain surface: juxtacortical
  c.infratentorial_fraction = 0.25  # a lesion with most of its voxels in this lowest fraction
  # of the brain's height is infratentorial
  # Quality-control pictures.
  c.qc_slices = 4  # axial slices per QC image
  return c


def define_flags() -> Callable[[ml_collections.ConfigDict], ml_collections.ConfigDict]:
  """Each field as an absl flag of the same name (unset: the model's own value), for every command
  that predicts; returns the function that lays the flags a user set over a model's options."""
  from absl import flags
  knobs = {}
  for key, value in get_config().items():
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
              float: flags.DEFINE_float}[type(value)]
    knobs[key] = define(key, None, f"Default: the model's config.predict (else {value}); see "
                        "uresnet_jax/inference/config.py.")

  def apply(options: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    options = ml_collections.ConfigDict(options.to_dict())
    for key, holder in knobs.items():
      if holder.value is not None:
        options[key] = holder.value
    return options

  return apply
