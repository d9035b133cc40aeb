"""Progress output: in a log, a few plain lines (no carriage returns); on a terminal, tqdm's bar."""
import io

from uresnet_jax.common import progress


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


def test_a_log_gets_plain_lines_not_frames():
  log = io.StringIO()
  with progress.bar(range(500), stream=log, desc="train", unit="step") as bar:
    for _ in bar:
      bar.set_postfix(loss="0.1")
  text = log.getvalue()
  assert "\r" not in text
  lines = text.splitlines()
  assert 1 <= len(lines) <= 3, lines
  assert lines[-1].startswith("train: 500/500 step")


def test_a_terminal_gets_the_bar():
  screen = _Terminal()
  for _ in progress.bar(range(5), stream=screen, desc="predict", mininterval=0):
    pass
  assert "\r" in screen.getvalue() and "100%" in screen.getvalue()
