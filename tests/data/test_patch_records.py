"""Tests for uresnet_jax.patches_tfds on a tiny synthetic cohort (independent of the phantom)."""
import pathlib
import subprocess
import sys
import textwrap

import ml_collections
import nibabel as nib
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, patch_records, preprocess, sampling

REPO = pathlib.Path(__file__).resolve().parents[2]
SHAPE = (40, 40, 6)  # 1 x 1 x 3 mm: smaller in-plane than a 64 x 64 patch
AFFINE = np.diag([1.0, 1.0, 3.0, 1.0])
# subject -> (WMH blobs, stroke blobs); each blob is (x, y, z, half-width in-plane).
SUBJECTS = {
    "s0": ([(12, 12, 2, 1), (25, 20, 3, 1)], [(20, 28, 2, 2)]),
    "s1": ([(15, 25, 1, 1)], [(28, 12, 4, 2)]),
    "s2": ([(10, 20, 2, 1), (30, 30, 3, 1)], []),
    "s3": ([(22, 14, 1, 1)], []),
    "s4": ([(18, 18, 4, 1), (26, 26, 2, 0)], []),
    "clean": ([], []),  # no lesions: contributes no patches
}


def _write_subject(root: pathlib.Path, subject: str, wmh, stroke, seed: int) -> None:
  rng = np.random.default_rng(seed)
  x, y = np.mgrid[:SHAPE[0], :SHAPE[1]]
  brain = ((x - 20) ** 2 + (y - 20) ** 2 < 17 ** 2)[..., None] & np.ones(SHAPE, bool)
  flair = np.where(brain, rng.normal(100, 10, SHAPE), 0).astype(np.float32)
  labels = np.zeros(SHAPE, np.uint8)
  for blobs, cls in ((wmh, 1), (stroke, 2)):
    for cx, cy, cz, r in blobs:
      labels[cx - r:cx + r + 1, cy - r:cy + r + 1, cz] = cls
  flair[labels > 0] += 60
  nib.save(nib.Nifti1Image(flair, AFFINE), root / f"{subject}_flair.nii.gz")
  nib.save(nib.Nifti1Image(labels, AFFINE), root / f"{subject}_labels.nii.gz")


def _make_cohort(root: pathlib.Path, subjects=SUBJECTS) -> pathlib.Path:
  root.mkdir(parents=True, exist_ok=True)
  rows = ["subject,flair,labels,age"]
  for i, (subject, (wmh, stroke)) in enumerate(subjects.items()):
    _write_subject(root, subject, wmh, stroke, seed=i)
    rows.append(f"{subject},{subject}_flair.nii.gz,{subject}_labels.nii.gz,{70 + i}")
  (root / "subjects.csv").write_text("\n".join(rows) + "\n")
  return root


def _config(cohort: pathlib.Path, records_dir: pathlib.Path, **sampling_overrides):
  config = ml_collections.ConfigDict()
  config.seed = 3
  config.data = dict(cohort=str(cohort), records_dir=str(records_dir), channels=("flair",),
                     num_folds=2)
  config.preprocess = dict(inplane_mm=1.0, clip_low=-3.0)
  config.sampling = dict(patch_size=64, wmh_rate=0.5, stroke_rate=0.8, max_shift=32)
  config.sampling.update(sampling_overrides)
  return config


def _leftovers(records_dir: pathlib.Path) -> list[pathlib.Path]:
  return [p for p in records_dir.rglob("*") if "incomplete" in p.name or "tmp" in p.name]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
  return _make_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def built(cohort, tmp_path_factory):
  config = _config(cohort, tmp_path_factory.mktemp("records"))
  return config, patch_records.build_patches(config)


def _expected_centres(config) -> dict[str, sampling.Centres]:
  """Independent of the builder: the sampling pipeline run by hand on every subject."""
  centres = {}
  for record in nifti_io.read_cohort(config.data.cohort):
    prepared = preprocess.prepare_subject(nifti_io.load_subject(record), 1.0, -3.0)
    centres[record.subject] = sampling.sample_centres(
        prepared.labels, wmh_rate=config.sampling.wmh_rate,
        stroke_rate=config.sampling.stroke_rate, max_shift=config.sampling.max_shift,
        rng=patch_records.subject_rng(config.seed, record.subject))
  return centres


def _read_all(source) -> list[dict]:
  """All records, with the subject (Text: bytes in a data source) decoded."""
  return [{**r, "subject": r["subject"].decode()} for r in (source[i] for i in range(len(source)))]


def test_builds_both_folds(built):
  config, builder = built
  fold_of = patch_records.get_fold_assignment(builder)
  assert sorted(fold_of) == sorted(SUBJECTS)
  centres = _expected_centres(config)
  assert len(centres["clean"]) == 0
  for k in range(2):
    expected = sum(len(centres[s]) for s, f in fold_of.items() if f == k)
    assert expected > 0 and builder.info.splits[f"fold{k}"].num_examples == expected
    records = _read_all(builder.as_data_source(f"fold{k}"))
    assert {r["subject"] for r in records} <= {s for s, f in fold_of.items() if f == k}
    for r in records[:3]:
      assert r["image"].shape == (64, 64, 1) and r["image"].dtype == np.float32
      assert r["label"].shape == (64, 64) and r["label"].dtype == np.uint8
      assert r["centre"].shape == (3,) and r["centre"].dtype == np.int32
      assert r["offset"].shape == (2,) and r["offset"].dtype == np.int32
      assert r["slice"] == r["centre"][2] and r["lesion_class"] in (1, 2)  # scalars: Python ints
      assert r["image"].min() == -3.0  # the 40 x 40 image is padded with the background value
    # Every record is one of that subject's sampled centres, each exactly once.
    got = sorted((r["subject"], *r["centre"], *r["offset"]) for r in records)
    want = sorted((s, *c, *o) for s, f in fold_of.items() if f == k
                  for c, o in zip(centres[s].centre, centres[s].offset))
    assert got == want
  assert "clean" not in {r["subject"] for k in range(2)
                         for r in _read_all(builder.as_data_source(f"fold{k}"))}


def test_fold_stratification(built):
  _, builder = built
  fold_of = patch_records.get_fold_assignment(builder)
  stroke = {s for s, (_, blobs) in SUBJECTS.items() if blobs}
  for k in range(2):
    in_fold = {s for s, f in fold_of.items() if f == k}
    assert len(in_fold & stroke) == 1 and len(in_fold - stroke) == 2


def test_random_access_through_tfds_data_source(built):
  config, builder = built
  source = tfds.data_source(f"uresnet_patches/{builder.builder_config.name}", split="fold1",
                            data_dir=config.data.records_dir)
  direct = builder.as_data_source("fold1")
  assert len(source) == len(direct)
  for i in (len(source) - 1, 0):
    np.testing.assert_array_equal(source[i]["image"], direct[i]["image"])
  # The fold assignment is readable from a builder restored from files alone.
  assert patch_records.get_fold_assignment(tfds.builder(
      f"uresnet_patches/{builder.builder_config.name}", data_dir=config.data.records_dir)
  ) == patch_records.get_fold_assignment(builder)


def test_deterministic_and_rebuild_is_a_noop(built, tmp_path):
  config, builder = built
  other = _config(config.data.cohort, tmp_path)
  again = patch_records.build_patches(other)
  assert again.builder_config.name == builder.builder_config.name
  for k in range(2):
    a = _read_all(builder.as_data_source(f"fold{k}"))
    b = _read_all(again.as_data_source(f"fold{k}"))
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
      assert ra["subject"] == rb["subject"]
      np.testing.assert_array_equal(ra["image"], rb["image"])
      np.testing.assert_array_equal(ra["label"], rb["label"])
  files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
  patch_records.build_patches(other)  # already built: nothing is rewritten
  assert files == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}


def test_split_larger_than_the_shuffle_buffer(built, tmp_path, monkeypatch):
  """Past TFDS's in-memory buffer (1 GB) the shuffler spills to disk, without TensorFlow too."""
  config, builder = built
  monkeypatch.setattr(tfds_shuffle, "MAX_MEM_BUFFER_SIZE", 50_000)  # a few records
  spilled = patch_records.build_patches(_config(config.data.cohort, tmp_path))
  for k in range(2):
    a = _read_all(builder.as_data_source(f"fold{k}"))
    b = _read_all(spilled.as_data_source(f"fold{k}"))
    assert [(r["subject"], *r["centre"]) for r in a] == [(r["subject"], *r["centre"]) for r in b]
  assert not _leftovers(tmp_path) and not list(tmp_path.rglob("bucket_*"))


def test_config_name_follows_settings(cohort, tmp_path):
  base = patch_records.patches_config_from(_config(cohort, tmp_path))
  assert base.name == patch_records.patches_config_from(_config(cohort, tmp_path / "x")).name
  names = {base.name}
  for overrides in ({"max_shift": 0}, {"wmh_rate": 0.2}, {"patch_size": 32}, {"healthy_rate": 0.5},
                    {"healthy_rate": 0.5, "slice_share": 0.3},
                    {"healthy_rate": 0.5, "dark_share": 0.3}):
    names.add(patch_records.patches_config_from(_config(cohort, tmp_path, **overrides)).name)
  seeded = _config(cohort, tmp_path)
  seeded.seed = 4
  names.add(patch_records.patches_config_from(seeded).name)
  assert len(names) == 8
  # no healthy-tissue patches: the same records as before the setting existed
  assert patch_records.patches_config_from(_config(cohort, tmp_path, healthy_rate=0.0)).name == base.name
  assert patch_records.patches_config_from(_config(cohort, tmp_path, slice_share=0.0)).name == base.name
  assert patch_records.patches_config_from(_config(cohort, tmp_path, dark_share=0.0,
                                                   dark_z=-2.0)).name == base.name


def test_generator_error_leaves_no_leftovers(cohort, tmp_path, monkeypatch):
  config = _config(cohort, tmp_path, max_shift=0)
  real = sampling.extract_patches
  calls = []

  def failing(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise RuntimeError("disk on fire")
    return real(*args, **kwargs)

  monkeypatch.setattr(sampling, "extract_patches", failing)
  with pytest.raises(RuntimeError, match="disk on fire"):
    patch_records.build_patches(config)
  assert not _leftovers(tmp_path)
  monkeypatch.setattr(sampling, "extract_patches", real)
  builder = patch_records.build_patches(config)
  assert builder.info.splits["fold0"].num_examples > 0 and not _leftovers(tmp_path)


def test_killed_build_then_rebuild(cohort, tmp_path):
  config = _config(cohort, tmp_path, max_shift=16)
  script = textwrap.dedent(f"""
      import os, signal, sys
      sys.path.insert(0, {str(REPO)!r})
      from uresnet_jax.data import patch_records, sampling
      real, calls = sampling.extract_patches, []
      def kill_on_second_subject(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
          os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
      sampling.extract_patches = kill_on_second_subject
      import ml_collections
      patch_records.build_patches(ml_collections.ConfigDict({config.to_dict()!r}))
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO)
  assert result.returncode == -9, result.stderr.decode()[-2000:]
  assert _leftovers(tmp_path)  # TFDS alone would leave its incomplete.* folder behind
  builder = patch_records.build_patches(config)
  assert builder.info.splits["fold1"].num_examples > 0
  assert not _leftovers(tmp_path)


def test_bad_inputs(cohort, tmp_path):
  with pytest.raises(InputError, match="not found"):
    patch_records.build_patches(_config(tmp_path / "nowhere", tmp_path / "r"))
  with pytest.raises(InputError, match="wmh_rate"):
    patch_records.patches_config_from(_config(cohort, tmp_path / "r", wmh_rate=1.5))
  with pytest.raises(InputError, match=r"config.sampling.slice_share: must be in \[0, 1 - "):
    patch_records.patches_config_from(_config(cohort, tmp_path / "r", bright_share=0.7,
                                              slice_share=0.4))
  # A corrupt image propagates nifti_io's InputError naming subject and file.
  broken = _make_cohort(tmp_path / "broken", {"a": SUBJECTS["s0"], "b": SUBJECTS["s2"]})
  (broken / "b_flair.nii.gz").write_bytes(b"not a nifti")
  with pytest.raises(InputError, match="b: .*b_flair.nii.gz"):
    patch_records.build_patches(_config(broken, tmp_path / "r"))
  # An unlabelled subject cannot give training patches.
  unlabelled = _make_cohort(tmp_path / "unlabelled", {"a": SUBJECTS["s0"], "b": SUBJECTS["s2"]})
  manifest = unlabelled / "subjects.csv"
  manifest.write_text(manifest.read_text().replace("b_labels.nii.gz", ""))
  with pytest.raises(InputError, match="b: no labels"):
    patch_records.build_patches(_config(unlabelled, tmp_path / "r"))
  # A fold without WMH subjects is refused before anything is written, naming the fold.
  empty = _make_cohort(tmp_path / "empty", {"a": SUBJECTS["s0"], "clean": SUBJECTS["clean"]})
  with pytest.raises(InputError, match=r"fold\d \(clean\) holds no subject with WMH"):
    patch_records.build_patches(_config(empty, tmp_path / "r"))
  # A fold that yields no patch at all (rates of 0) is an error naming the fold.
  with pytest.raises(InputError, match=r"fold\d: no patches"):
    patch_records.build_patches(_config(cohort, tmp_path / "r", wmh_rate=0.0, stroke_rate=0.0))
  assert not _leftovers(tmp_path / "r")


def test_cli(cohort, tmp_path):
  command = [sys.executable, "-m", "uresnet_jax.patches_tfds", "--config=configs/default.py",
             f"--config.data.cohort={cohort}", f"--config.data.records_dir={tmp_path}",
             "--config.sampling.patch_size=16"]
  result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "fold0:" in result.stdout and "fold1:" in result.stdout
  result = subprocess.run(command[:3] + [f"--config.data.cohort={tmp_path / 'nowhere'}"],
                          capture_output=True, text=True, cwd=REPO)
  assert result.returncode == 1 and result.stderr.strip().startswith("error: ")


def test_tfds_internals_are_used_only_on_supported_releases():
  from uresnet_jax.data import patch_records as pt
  pt.check_tfds_internals()  # the installed release is in the pinned range
  lo, hi = pt.SUPPORTED_TFDS
  installed = tuple(int(p) for p in tfds.__version__.split(".")[:3])
  assert lo <= installed < hi
  for version in ("4.9.6", "4.10.0", "5.0.0", "nightly"):
    with pytest.raises(InputError, match=f"tensorflow-datasets {version} is not supported"):
      pt.check_tfds_internals(version)
  original = tfds_shuffle.tf
  with pt._shuffler_without_tensorflow():
    assert tfds_shuffle.tf is not original  # swapped only inside the build
  assert tfds_shuffle.tf is original


def test_cohort_fingerprint_follows_content_not_place(tiny_run, tmp_path):
  import shutil
  from configs import tiny
  original = tiny_run[0] / "cohort"
  copy = tmp_path / "moved" / "cohort"
  shutil.copytree(original, copy)  # new path, new modification times
  names = []
  for cohort in (original, copy):
    config = tiny.get_config()
    config.data.cohort = str(cohort)
    names.append(patch_records.patches_config_from(config))
  assert names[0].cohort_fingerprint == names[1].cohort_fingerprint
  assert names[0].name == names[1].name  # the moved cohort finds its records
  flair = copy / "sub-000" / "flair.nii.gz"
  img = nib.load(flair)
  nib.save(nib.Nifti1Image(np.asarray(img.dataobj) + 1, img.affine), flair)
  config.data.cohort = str(copy)
  assert patch_records.patches_config_from(config).cohort_fingerprint != names[0].cohort_fingerprint
