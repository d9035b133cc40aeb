"""The paper's ablations (Tables A.5 and B.6): named changes to a config, one home for them used by
configs/variants.py and `reproduce`."""
import ml_collections

from uresnet_jax.common.errors import InputError

VARIANTS = {
    "uresnet": {},  # the paper's model: one 3x3 convolution per residual element
    "uresnet2": {"model.residual_convs": 2},  # two 3x3 convolutions per residual element
    "noc": {"sampling.max_shift": 0},  # lesion-centred patches without the random centre shift
    "f": {"data.channels": ("flair",)},  # input channels (Table B.6): FLAIR ...
    "f_t1": {"data.channels": ("flair", "t1")},  # ... and T1
    "f_wm": {"data.channels": ("flair", "wm")},  # ... and a white-matter probability map
    "f_t1_wm": {"data.channels": ("flair", "t1", "wm")},
}


def apply(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """A copy of `config` with `variant`'s settings."""
  if variant not in VARIANTS:
    raise InputError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
  config = config.copy_and_resolve_references()
  for dotted, value in VARIANTS[variant].items():
    section, field = dotted.split(".")
    config[section][field] = value
  return config
