"""Scores any model (a training run or an exported one) on a config's phantom domains, as `main`
does after training: the same cohorts (reused when present), Dice and false stroke per domain.

  python scripts/score_domains.py --config=configs/release.py --model=uresnet_jax/release_model \
      --output=OUT      (writes OUT/domains.json and prints the table)

Used to put two bundled models side by side on the same held-out domains.
"""
import pathlib
import sys

from absl import flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # configs/ imports configs.*

from uresnet_jax.common.cli import get_config, run_cli
from uresnet_jax.experiments import domains
from uresnet_jax.inference import predictor

_CONFIG = config_flags.DEFINE_config_file("config", None, "The config whose domains to score.")
_MODEL = flags.DEFINE_string("model", None, "Training run or exported model (default: bundled).")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for domains.json.")
flags.mark_flags_as_required(["config", "output"])


def main() -> None:
  config = get_config(_CONFIG)
  domains.check_held_out(config)
  output = pathlib.Path(_OUTPUT.value)
  output.mkdir(parents=True, exist_ok=True)
  result = domains.evaluate_domains(config, predictor.load_model(_MODEL.value), output)
  print(domains.format_table(result))


if __name__ == "__main__":
  run_cli(main)
