"""Errors a command reports as one readable line and a non-zero exit, never a traceback, each
named for what happened so that the code raising it says what the user sees."""


class CommandError(Exception):
  """What a command ends with as one `error: ...` line (common/cli.run_cli); str() is the line."""


class InputError(CommandError):
  """A problem with a user's file, shape, value or flag; str() is the one-line message."""


class TrainingDiverged(CommandError):
  """Training met a NaN or Inf loss, gradient or state and stopped: the settings need changing."""


class DamagedCheckpoint(CommandError):
  """A checkpoint that cannot be restored (truncated, missing files, NaN or Inf)."""
