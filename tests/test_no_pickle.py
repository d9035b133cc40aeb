"""Nothing is ever loaded by pickle: not checkpoints, artifacts, records, scans or caches."""
import pickle
import re

import numpy as np
import pytest

from conftest import ROOT

_PATTERNS = (r"\bpickle\b", r"\bcloudpickle\b", r"\bdill\b", r"\bjoblib\b", r"\bshelve\b",
             r"\bmarshal\b", r"allow_pickle\s*=\s*True", r"torch\.load")


def test_no_source_file_loads_by_pickle():
  sources = [p for folder in ("uresnet_jax", "configs") for p in (ROOT / folder).rglob("*.py")]
  sources.append(ROOT / "notebooks" / "colab_tpu.ipynb")
  # every module of the package and the loader shipped with the bundled model are read
  assert ROOT / "uresnet_jax" / "inference" / "predictor.py" in sources and len(sources) > 60
  assert ROOT / "uresnet_jax" / "release_model" / "uresnet_artifact.py" in sources
  offending = []
  for path in sources:
    for number, line in enumerate(path.read_text().splitlines(), 1):
      code = line.split("#", 1)[0]
      if "without pickle" in code or "allow_pickle=False" in code:
        continue
      if any(re.search(p, code) for p in _PATTERNS) or (
          "np.load(" in code and "allow_pickle=False" not in code):
        offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
  assert not offending, offending


@pytest.fixture
def no_unpickling(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("something tried to unpickle")

  monkeypatch.setattr(pickle, "load", refuse)
  monkeypatch.setattr(pickle, "loads", refuse)
  monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_checkpoints_artifacts_records_and_scans_load_without_pickle(tiny_run, tmp_path,
                                                                     no_unpickling):
  from uresnet_jax.inference import artifact, export, predictor
  from uresnet_jax.model import checkpoints
  from uresnet_jax.data import nifti_io
  data, workdir, _, _ = tiny_run
  config = predictor.read_run_config(workdir)
  _, variables = checkpoints.restore_variables(workdir, config)  # Orbax checkpoint
  assert variables["params"]
  export.export_model(workdir, tmp_path / "art")
  model = artifact.load(tmp_path / "art")  # jax.export module, npz weights, JSON
  assert model(np.zeros((1, 16, 16, 1), np.float32)).shape == (1, 16, 16, 3)
  import tensorflow_datasets as tfds
  # every records folder under data/tfds (other tests build theirs beside the tiny run's)
  folders = [p for p in (data / "tfds").rglob("1.0.0") if p.is_dir()]
  assert folders
  for records in folders:
    source = tfds.builder_from_directory(str(records)).as_data_source(split="fold0")
    image = source[0]["image"]  # array_record patches: FLAIR, or FLAIR + T1 for that variant
    assert image.ndim == 3 and image.shape[-1] in (1, 2)
  scan = nifti_io.load_nifti(data / "cohort" / "sub-000" / "flair.nii.gz")
  assert scan.data.ndim == 3
