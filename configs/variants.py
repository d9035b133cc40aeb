"""The paper's ablations (Tables A.5 and B.6) as configs: a base config plus one variant
(uresnet_jax/experiments/variants.py lists them).

Run: python -m uresnet_jax.main --config=configs/variants.py:noc --workdir=runs/noc
     python -m uresnet_jax.main --config=configs/variants.py:f_t1,demo --workdir=runs/demo_f_t1
The argument is VARIANT[,BASE] with BASE one of default (the paper's settings), demo or tiny.
`python -m uresnet_jax.reproduce` runs them all (configs/reproduce.py).
"""
import importlib

import ml_collections

from uresnet_jax.experiments import variants

BASES = ("default", "demo", "tiny")


def get_config(arg: str = "uresnet") -> ml_collections.ConfigDict:
  variant, _, base = arg.partition(",")
  base = base or "default"
  if base not in BASES:
    raise ValueError(f"unknown base config {base!r}; choose from {', '.join(BASES)}")
  return variants.apply(importlib.import_module(f"configs.{base}").get_config(), variant)
