"""Progress that suits where output goes: a tqdm bar on a terminal; in a log file or a pipe, a plain
line every LOG_EVERY_S seconds instead of hundreds of carriage-return frames."""
import sys
from typing import IO, Iterable

from tqdm import tqdm

LOG_EVERY_S = 30.0  # seconds between progress lines in a log
_LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class _Lines:
  """A file for tqdm that writes each frame it draws as one plain line (blank frames dropped)."""

  def __init__(self, stream: IO[str]):
    self.stream = stream

  def write(self, text: str) -> None:
    line = text.replace("\r", "").strip()
    if line:
      self.stream.write(line + "\n")

  def flush(self) -> None:
    self.stream.flush()


class _LogBar(tqdm):
  """tqdm that draws only on its clock: a new postfix waits for the next timed line."""

  def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
    super().set_postfix(ordered_dict, refresh=False, **kwargs)


def bar(iterable: Iterable | None = None, stream: IO[str] | None = None, **kwargs) -> tqdm:
  """A tqdm bar on `stream` (stderr): drawn in place on a terminal, plain timed lines otherwise."""
  stream = stream if stream is not None else sys.stderr
  if getattr(stream, "isatty", lambda: False)():
    return tqdm(iterable, file=stream, dynamic_ncols=True, **kwargs)
  kwargs.pop("leave", None)  # a log keeps every line it got
  return _LogBar(iterable, file=_Lines(stream), mininterval=LOG_EVERY_S, maxinterval=LOG_EVERY_S,
              bar_format=_LOG_FORMAT, **kwargs)
