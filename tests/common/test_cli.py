"""cli: every command line ends a stray argument, a bad flag or a CommandError (bad input, a
diverged run, a damaged checkpoint) in one `error:` line, and answers `-h` with its help and exit
status 0."""
import sys

import pytest

from conftest import run_module
from uresnet_jax.common import cli, errors


def test_a_bad_flag_is_one_error_line():
  with pytest.raises(SystemExit) as stopped:
    cli.parse_flags(["prog", "--no_such_flag=1"], cli)
  message = str(stopped.value)
  assert message.startswith("error: ") and "no_such_flag" in message and "\n" not in message


@pytest.mark.parametrize("error", [errors.InputError, errors.TrainingDiverged,
                                   errors.DamagedCheckpoint])
def test_each_command_error_is_one_error_line_and_exit_status_1(error, monkeypatch):
  def main():
    raise error("what happened; what to do")

  monkeypatch.setattr(sys, "argv", ["prog"])
  with pytest.raises(SystemExit) as stopped:
    cli.run_cli(main)
  assert stopped.value.code == "error: what happened; what to do"  # printed, exit status 1


def test_dash_h_prints_the_commands_help_and_exits_0(capsys):
  with pytest.raises(SystemExit) as stopped:
    cli.parse_flags(["prog", "-h"], cli)
  assert stopped.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith(cli.__doc__.strip()) and "Try --helpfull" in out


def test_help_leaves_absls_flags_to_helpfull_and_waits_to_be_asked():
  assert "--alsologtostderr" not in cli.help_text(["prog", "--help"], cli)
  assert "--alsologtostderr" in cli.help_text(["prog", "--helpfull"], cli)
  assert cli.help_text(["prog", "--flag=1"], cli) is None
  assert cli.help_text(["prog", "--", "--help"], cli) is None


@pytest.mark.slow  # every command started as a subprocess
@pytest.mark.parametrize("cli, args, expected", [
    ("main", ["--config=configs/tiny.py", "--workdir=run", "stray"], "unexpected arguments: stray"),
    ("phantom", ["stray", "more"], "unexpected arguments: stray more"),
    ("predict", ["--input=scan.nii.gz", "--no_such_flag=1"], "no_such_flag"),
])
def test_stray_argument_or_unknown_flag_is_one_line(cli, args, expected, tmp_path):
  result = run_module(cli, *args, cwd=tmp_path, timeout=300)
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error:") and expected in lines[-1], lines
  assert [l for l in lines if l.startswith("error:")] == lines[-1:]
  assert not list(tmp_path.iterdir())  # nothing written, no workdir made


def test_numbers_reads_a_list_flag_or_names_it():
  assert cli.numbers("edges", ["1", "2.5", "-3"]) == (1.0, 2.5, -3.0)
  with pytest.raises(errors.InputError, match=r"^--edges=1,x: expected numbers$"):
    cli.numbers("edges", ["1", "x"])
