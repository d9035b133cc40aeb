"""A model's checksum, the sha256 of its files: a resumed `predict` knows its model is the same."""
import hashlib
import os
import pathlib

from uresnet_jax.model import run_folder


def model_checksum(path: os.PathLike | str, checkpoint: str = "latest") -> str:
  """sha256 of a model's files (an exported folder; a run's config.json and checkpoint), so a
  resumed run can tell that its earlier results came from the same model."""
  path = pathlib.Path(path)
  if run_folder.is_run(path) and run_folder.checkpoint_dir(path).is_dir():
    files = run_folder.model_files(path, checkpoint)
  else:
    files = sorted(path.rglob("*"))
  digest = hashlib.sha256()
  for f in files:
    if f.is_file() and "__pycache__" not in f.parts:
      digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
  return digest.hexdigest()
