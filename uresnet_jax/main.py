"""Train and evaluate uResNet: python -m uresnet_jax.main --config=configs/default.py --workdir=DIR."""
import json
import pathlib

from absl import flags, logging
from ml_collections import config_flags

from uresnet_jax.common import distributed
from uresnet_jax.common.cli import get_config, run_cli
from uresnet_jax.experiments import domains

_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, evaluations and logs go.")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Training configuration file.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])
_JOIN = distributed.define_flags()  # multi-process runs


def main() -> None:
  import jax  # here, not above: `--help` and a refused flag start without JAX and the training stack
  from uresnet_jax.training import loop
  config = get_config(_CONFIG)
  loop.use_compilation_cache(config)
  domains.check_held_out(config)
  _JOIN()
  logging.info("JAX %s, process %d/%d, devices: %s", jax.__version__, jax.process_index(),
               jax.process_count(), jax.devices())
  summary = loop.train_and_evaluate(config, _WORKDIR.value)
  if summary is not None:  # process 0's evaluation
    print(json.dumps(summary, indent=2))
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.ERROR)  # Orbax's notes on opening checkpoints read-only
    result = domains.score_run(config, pathlib.Path(_WORKDIR.value))
    if result is not None:
      print(domains.format_table(result))


def run() -> None:
  """The command line (`python -m uresnet_jax.main` or `uresnet-train`)."""
  run_cli(main, logging.WARNING)  # library INFO chatter (Orbax, TFDS) only on request


if __name__ == "__main__":
  run()
