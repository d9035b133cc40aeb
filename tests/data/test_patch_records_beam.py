"""The records built through Apache Beam (DirectRunner) are those of the plain build.

Same keys, same examples, same order: both TFDS writers order a split by the hash of each
example's key (salted with the split name), the plain one through its Shuffler, the Beam one by
sharding on that hash and sorting each shard; the records' name does not depend on the runner.
"""
import builtins
import importlib.util
import pathlib

import numpy as np
import pytest

from test_patch_records import _config, _leftovers, _make_cohort
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import patch_records

pytestmark = pytest.mark.slow  # Apache Beam's DirectRunner builds

needs_beam = pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None,
                                reason="apache-beam is not installed (pip install -e '.[test]')")

FIELDS = ("subject", "slice", "centre", "offset", "lesion_class", "image", "label")


def _examples(builder, split: str) -> list[tuple]:
  source = builder.as_data_source(split)
  rows = []
  for i in range(len(source)):
    r = source[i]
    rows.append(tuple(np.asarray(r[f]).tobytes() if f in ("centre", "offset", "image", "label")
                      else r[f] for f in FIELDS))
  return rows


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
  return _make_cohort(tmp_path_factory.mktemp("cohort"))


@needs_beam
def test_beam_direct_runner_builds_the_same_records(cohort, tmp_path):
  plain = patch_records.build_patches(_config(cohort, tmp_path / "plain"))
  config = _config(cohort, tmp_path / "beam")
  config.data.beam_runner = "direct"
  beam = patch_records.build_patches(config)
  assert beam.builder_config.name == plain.builder_config.name  # the runner is not in the name
  assert sorted(beam.info.splits) == sorted(plain.info.splits) == ["fold0", "fold1"]
  assert patch_records.get_fold_assignment(beam) == patch_records.get_fold_assignment(plain)
  for split in plain.info.splits:
    expected = _examples(plain, split)
    assert expected and _examples(beam, split) == expected  # identical, in the same order
  # Built: the plain build (beam_runner unset) now reuses the Beam-built records as they are.
  again = patch_records.build_patches(_config(cohort, tmp_path / "beam"))
  assert _examples(again, "fold0") == _examples(plain, "fold0")


@needs_beam
def test_beam_empty_fold_and_bad_settings(cohort, tmp_path):
  # A fold without patches fails as in the plain build, naming the fold, and leaves nothing.
  config = _config(cohort, tmp_path / "r", wmh_rate=0.0, stroke_rate=0.0)
  config.data.beam_runner = "direct"
  with pytest.raises(InputError, match=r"fold\d: no patches"):
    patch_records.build_patches(config)
  assert not _leftovers(tmp_path / "r")
  config.data.beam_runner = "spark"
  with pytest.raises(InputError, match="beam_options"):
    patch_records.build_patches(config)
  config.data.beam_runner, config.data.beam_options = "direct", "--runner=FlinkRunner"
  with pytest.raises(InputError, match="set one"):
    patch_records.build_patches(config)


def test_beam_not_installed(cohort, tmp_path, monkeypatch):
  """Refused before anything is read or built, with the install command."""
  real_import = builtins.__import__

  def no_beam(name, *args, **kwargs):
    if name.startswith("apache_beam"):
      raise ImportError(name)
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_beam)
  config = _config(cohort, tmp_path / "r")
  config.data.beam_runner = "direct"
  with pytest.raises(InputError, match=r"pip install -e '\.\[beam\]'"):
    patch_records.build_patches(config)
