"""User-facing input errors: one readable line, a non-zero exit, never a traceback."""


class InputError(Exception):
  """A problem with a user's file, shape, value or flag; str() is the one-line message."""
