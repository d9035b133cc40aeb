"""How every command line starts: absl flags, and one `error:` line for anything the user got wrong."""
import sys
from typing import Callable

from absl import app, flags, logging

from uresnet_jax.common.errors import InputError


def run_cli(main: Callable[[], None], verbosity: int | None = None) -> None:
  """Runs a command line's `main()` under absl. A bad flag or config file, a stray argument or an
  InputError ends in one `error: ...` line and exit status 1; `verbosity` (an absl level) quiets
  the libraries' INFO chatter unless --verbosity is given."""

  def absl_main(argv: list[str]) -> None:
    try:
      if len(argv) > 1:
        raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
      if verbosity is not None and not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(verbosity)
      main()
    except InputError as e:
      sys.exit(f"error: {e}")

  app.run(absl_main, flags_parser=parse_flags)


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing for `run_cli`: a bad flag or config file or an unknown config field prints
  one `error: ...` line and exits with status 1."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, InputError, AttributeError, KeyError, ValueError, TypeError, OSError) as e:
    text = str(e)
    if "Traceback (most recent call last)" in text:  # a config file's get_config() raised
      last = text.strip().splitlines()[-1]
      text = f"config file: {last.split(': ', 1)[-1]}"
    message = " ".join(text.replace("\\n", " ").replace("\\'", "'").split())
    if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
      message = message[1:-1]
    sys.exit(f"error: {message}")


def get_config(holder: flags.FlagHolder):
  """The value of a config_flags flag; a config file that failed to load becomes an InputError."""
  try:
    config = holder.value
    config.to_dict()  # a config file that failed to load raises only when first used
  except OSError as e:
    raise InputError(" ".join(str(e).split())) from e
  return config
