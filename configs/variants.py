"""The paper's ablations (Tables A.5 and B.6) as configs: a base config plus one variant.

Run: python -m uresnet_jax.main --config=configs/variants.py:noc --workdir=runs/noc
     python -m uresnet_jax.main --config=configs/variants.py:f_t1,demo --workdir=runs/demo_f_t1
The argument is VARIANT[,BASE] with BASE one of default (the paper's settings), demo or tiny.
"""
import importlib

import ml_collections

VARIANTS = {
    "uresnet": {},  # the paper's model: one 3x3 convolution per residual element
    "uresnet2": {"model.residual_convs": 2},  # two 3x3 convolutions per residual element
    "noc": {"sampling.max_shift": 0},  # lesion-centred patches without the random centre shift
    "f": {"data.channels": ("flair",)},  # input channels (Table B.6): FLAIR ...
    "f_t1": {"data.channels": ("flair", "t1")},  # ... and T1
    "f_wm": {"data.channels": ("flair", "wm")},  # ... and a white-matter probability map
    "f_t1_wm": {"data.channels": ("flair", "t1", "wm")},
}
BASES = ("default", "demo", "tiny")


def apply(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """A copy of `config` with `variant`'s settings."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
  config = config.copy_and_resolve_references()
  for dotted, value in VARIANTS[variant].items():
    section, field = dotted.split(".")
    config[section][field] = value
  return config


def get_config(arg: str = "uresnet") -> ml_collections.ConfigDict:
  variant, _, base = arg.partition(",")
  base = base or "default"
  if base not in BASES:
    raise ValueError(f"unknown base config {base!r}; choose from {', '.join(BASES)}")
  return apply(importlib.import_module(f"configs.{base}").get_config(), variant)
