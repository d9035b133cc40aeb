"""How every command line starts: absl flags, `--help` that lists them, and one `error:` line for
anything the user got wrong."""
import os
import sys
import types
from typing import Callable, Sequence

from absl import app, flags, logging

from uresnet_jax.common.errors import CommandError, InputError

HELP = {"-h", "-?", "--help", "-help", "--helpshort", "-helpshort"}
FULL_HELP = {"--helpfull", "-helpfull"}


def run_cli(main: Callable[[], None], verbosity: int | None = None) -> None:
  """Runs a command line's `main()` under absl. `-h`/`--help` prints the docstring of the module
  that defines `main` and the command's flags; a bad flag or config file, a stray argument or a
  CommandError (bad input, a diverged training run, a damaged checkpoint) ends in one
  `error: ...` line and exit status 1; `verbosity` (an absl level) quiets the libraries' INFO
  chatter unless --verbosity is given."""
  command = sys.modules[main.__module__]

  def absl_main(argv: list[str]) -> None:
    try:
      if len(argv) > 1:
        raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
      if verbosity is not None and not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(verbosity)
      main()
    except CommandError as e:
      sys.exit(f"error: {e}")

  app.run(absl_main, flags_parser=lambda argv: parse_flags(argv, command))


def parse_flags(argv: list[str], command: types.ModuleType) -> list[str]:
  """absl flag parsing for `run_cli`: `-h`/`--help` or `--helpfull` prints `command`'s help and
  exits with status 0; a bad flag or config file or an unknown config field prints one
  `error: ...` line and exits with status 1."""
  text = help_text(argv, command)
  if text is not None:
    try:
      print(text, flush=True)
    except BrokenPipeError:  # `--help | head`: no traceback, and none when Python flushes at exit
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
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


def help_text(argv: list[str], command: types.ModuleType) -> str | None:
  """For `-h`/`--help`, `command`'s docstring and the flags this package defined: the command's own,
  since a command defines its flags only when it runs. For `--helpfull`, every flag; else None.
  absl's own --help lists only sys.argv[0]'s flags, and most commands define theirs elsewhere."""
  args = set(argv[1:argv.index("--")] if "--" in argv else argv[1:])
  doc = (command.__doc__ or f"USAGE: {argv[0]} [flags]").strip()
  if args & FULL_HELP:
    return f"{doc}\n\nflags:\n{flags.FLAGS.get_help()}"
  if not args & HELP:
    return None
  own = sys.argv[0] if command.__name__ == "__main__" else command.__name__
  package = __name__.split(".")[0]
  modules = [m for m in flags.FLAGS.flags_by_module_dict()
             if m == sys.argv[0] or m.split(".")[0] == package]
  listing = "\n".join(flags.FLAGS.module_help(m) for m in sorted(modules, key=lambda m: m != own))
  return f"{doc}\n\nflags:\n{listing}\n\nTry --helpfull to get a list of all flags."


def get_config(holder: flags.FlagHolder):
  """The value of a config_flags flag; a config file that failed to load becomes an InputError."""
  try:
    config = holder.value
    config.to_dict()  # a config file that failed to load raises only when first used
  except OSError as e:
    raise InputError(" ".join(str(e).split())) from e
  return config


def numbers(flag: str, values: Sequence[str]) -> tuple[float, ...]:
  """A list flag's values as numbers, or an InputError naming the flag."""
  try:
    return tuple(float(v) for v in values)
  except ValueError:
    raise InputError(f"--{flag}={','.join(values)}: expected numbers") from None
