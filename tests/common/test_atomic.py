import pathlib

import pytest

from uresnet_jax.common import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  target = tmp_path / "a.json"
  target.write_text("old")
  with pytest.raises(RuntimeError):
    with atomic.replacing(target) as tmp:
      tmp.write_text("half")
      raise RuntimeError("killed")
  assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_folder_is_replaced_whole(tmp_path):
  (tmp_path / "d").mkdir()
  (tmp_path / "d" / "old").write_text("x")
  with atomic.replacing(tmp_path / "d") as tmp:
    tmp.mkdir()
    (tmp / "new").write_text("y")
  assert [p.name for p in (tmp_path / "d").iterdir()] == ["new"]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_leftovers_of_a_killed_write_are_removed_and_nothing_else(tmp_path: pathlib.Path):
  """What a SIGKILL between the write and the rename leaves: a file or folder under .tmp-/.old-."""
  (tmp_path / "scans").mkdir()
  (tmp_path / "scans" / ".tmp-0123456789ab-s0.json").write_text("{")
  (tmp_path / ".old-0123456789ab-qc").mkdir()
  (tmp_path / ".old-0123456789ab-qc" / "x.png").write_bytes(b"")
  (tmp_path / "scans" / "s1.json").write_text("{}")
  (tmp_path / ".hidden").write_text("a user's")
  atomic.remove_leftovers(tmp_path)
  assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
      ".hidden", "scans", "scans/s1.json"]


def test_write_csv_keeps_the_columns_and_rounds_floats(tmp_path):
  path = tmp_path / "t.tsv"
  atomic.write_csv(path, [{"a": 1, "b": 0.123456789, "extra": "x"}], ("a", "b"), "\t")
  assert path.read_text().splitlines() == ["a\tb", "1\t0.123457"]


def test_an_output_file_that_is_a_folder_or_has_no_folder_is_refused(tmp_path):
  from uresnet_jax.common.errors import InputError
  with pytest.raises(InputError, match="is a folder"):
    atomic.check_output_file(tmp_path)
  with pytest.raises(InputError, match="does not exist"):
    atomic.check_output_file(tmp_path / "missing" / "t.csv")
  atomic.check_output_file(tmp_path / "t.csv")  # a new file in a folder that exists
