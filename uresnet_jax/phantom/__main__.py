"""The command line: python -m uresnet_jax.phantom --out=data/phantom --subjects=40 --seed=0

--visits=2 writes longitudinal pairs instead: two visits of each subject with planted change
(phantom/longitudinal.py), the knobs of the pairs under --pairs.*."""

from absl import flags
from ml_collections import config_flags

from uresnet_jax.common.cli import run_cli
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom import config as phantom_config
from uresnet_jax.phantom import longitudinal
from uresnet_jax.phantom.knobs import validate_config
from uresnet_jax.phantom.writer import write_cohort


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  out = flags.DEFINE_string("out", "data/phantom",
                            "Folder to write the cohort into (subjects.csv + sub-*/).")
  subjects = flags.DEFINE_integer("subjects", 40, "Number of subjects.")
  seed = flags.DEFINE_integer("seed", 0, "Cohort seed; subject i depends only on (seed, i).")
  config = config_flags.DEFINE_config_dict("config", phantom_config.get_config(),
                                           "Generator knobs, e.g. --config.noise_std=(0.02,0.05).")
  visits = flags.DEFINE_integer("visits", 1, "1: a cross-sectional cohort; 2: longitudinal pairs "
                                "(kinds in turn: " + ", ".join(longitudinal.KINDS) + ").")
  pairs = config_flags.DEFINE_config_dict("pairs", longitudinal.get_config(),
                                          "With --visits=2: the pairs' knobs, e.g. "
                                          "--pairs.thickness_mm=(4,5).")

  def main() -> None:
    if subjects.value < 1:
      raise InputError(f"--subjects={subjects.value}: must be at least 1")
    validate_config(config.value)
    if visits.value == 2:
      print(longitudinal.write_pairs(out.value, subjects.value, seed.value, config.value,
                                     pairs.value))
    elif visits.value == 1:
      print(write_cohort(out.value, subjects.value, seed.value, config.value))
    else:
      raise InputError(f"--visits={visits.value}: must be 1 or 2")

  run_cli(main)


if __name__ == "__main__":
  run()
