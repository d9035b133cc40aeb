"""Atomic file writes: every output appears whole or not at all (write a temporary name, then rename)."""
import contextlib
import csv
import os
import pathlib
import shutil
import uuid
from typing import Iterator, Mapping, Sequence

from uresnet_jax.common.errors import InputError


@contextlib.contextmanager
def replacing(path: os.PathLike | str) -> Iterator[pathlib.Path]:
  """Yields a temporary path beside `path` (same suffixes); on success it replaces `path`, on any
  error it is removed. Works for files and folders; a folder that `path` names is replaced whole."""
  path = pathlib.Path(path)
  tmp = path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"
  try:
    yield tmp
    if path.is_dir() and tmp.is_dir():
      old = path.parent / f".old-{uuid.uuid4().hex[:12]}-{path.name}"
      os.replace(path, old)
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  except BaseException:
    if tmp.is_dir():
      shutil.rmtree(tmp, ignore_errors=True)
    else:
      tmp.unlink(missing_ok=True)
    raise


def remove_leftovers(folder: pathlib.Path) -> None:
  """Removes the temporary names that a killed `replacing` left anywhere under `folder`."""
  for leftover in [*folder.rglob(".tmp-*"), *folder.rglob(".old-*")]:
    if leftover.is_dir():
      shutil.rmtree(leftover, ignore_errors=True)
    else:
      leftover.unlink(missing_ok=True)


def write_text(path: os.PathLike | str, text: str) -> None:
  with replacing(path) as tmp:
    tmp.write_text(text)


def write_bytes(path: os.PathLike | str, data: bytes) -> None:
  with replacing(path) as tmp:
    tmp.write_bytes(data)


def write_csv(path: os.PathLike | str, rows: Sequence[Mapping], columns: Sequence[str],
              delimiter: str = ",") -> None:
  """A table of `rows` (keys beyond `columns` ignored), floats to 6 significant digits."""
  with replacing(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def check_output_file(output: pathlib.Path) -> None:
  """Refuses, as one InputError line, an output file that names a folder or lies in a folder that
  does not exist: checked before the work, so that no run ends in a failed write."""
  if output.is_dir():
    raise InputError(f"{output}: is a folder; name a file to write")
  if not output.parent.is_dir():
    raise InputError(f"{output}: its folder {output.parent} does not exist")


def check_output_folder(output: pathlib.Path, overwrite: bool = True) -> None:
  """Refuses, as one InputError line, an output folder that is a file, or (unless `overwrite`)
  one that already holds files: the check every command makes before its work."""
  if output.exists() and not output.is_dir():
    raise InputError(f"{output}: exists and is not a folder")
  if not overwrite and output.is_dir() and any(output.iterdir()):
    raise InputError(f"{output}: already holds files; pass --overwrite to replace it")
