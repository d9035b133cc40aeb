"""The command line: python -m uresnet_jax.phantom --out=data/phantom --subjects=40 --seed=0"""

from absl import flags
from ml_collections import config_flags

from uresnet_jax.common.cli import run_cli
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom import config as phantom_config
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

  def main() -> None:
    if subjects.value < 1:
      raise InputError(f"--subjects={subjects.value}: must be at least 1")
    validate_config(config.value)
    print(write_cohort(out.value, subjects.value, seed.value, config.value))

  run_cli(main)


if __name__ == "__main__":
  run()
