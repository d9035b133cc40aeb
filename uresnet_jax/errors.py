"""User-facing input errors: one readable line, a non-zero exit, never a traceback."""
import functools
import sys
from typing import Callable, TypeVar

from absl import flags

T = TypeVar("T")


class InputError(Exception):
  """A problem with a user's file, shape, value or flag; str() is the one-line message."""


def exit_on_input_error(main: Callable[..., T]) -> Callable[..., T]:
  """Wraps a CLI `main` so an InputError prints `error: <message>` and exits with status 1."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except InputError as e:
      sys.exit(f"error: {e}")

  return wrapped


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing for `app.run(..., flags_parser=parse_flags)`: a bad flag or config file or
  an unknown config field prints one `error: ...` line and exits with status 1."""
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
