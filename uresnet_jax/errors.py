"""User-facing input errors: one readable line, a non-zero exit, never a traceback."""
import functools
import sys
from typing import Callable, TypeVar

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
