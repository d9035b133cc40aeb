"""TFDS builder: cohort -> lesion-centred, shifted patch records (array_record), a split per fold.

Records are read back with random access and without TensorFlow:
  builder = build_patches(config); fold0 = builder.as_data_source("fold0"); fold0[i]["image"]

Run: python -m uresnet_jax.patches_tfds --config=configs/default.py [--config.data.cohort=...]
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import pathlib
import resource
import shlex
import shutil
import tempfile
import time
import types
import zlib
from typing import Iterator, Sequence

from absl import logging
from etils import epath
import ml_collections
from ml_collections import config_flags
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from uresnet_jax.common import labelling, progress
from uresnet_jax.common.cli import get_config, run_cli
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import folds, nifti_io, preprocess, sampling

NAME = "uresnet_patches"
METADATA_FILE = "metadata.json"  # where tfds.core.MetadataDict saves itself in the dataset dir
_LOCK_FILE = ".build.lock"
_INCOMPLETE_GLOB = "incomplete.*"  # TFDS builds in <config>/incomplete.XXXXXX_<version>/


@dataclasses.dataclass(eq=False)
class PatchesConfig(tfds.core.BuilderConfig):
  """Every setting the records depend on; `name` is a hash of them (see `make_patches_config`)."""

  cohort: str = ""  # absolute path of the cohort folder or manifest (where to read; not hashed)
  cohort_fingerprint: str = ""  # hash of the used files' contents: survives moving the cohort
  channels: tuple[str, ...] = ("flair",)
  patch_size: int = 64
  wmh_rate: float = 0.2
  stroke_rate: float = 0.8
  max_shift: int = 32
  healthy_rate: float = 0.0
  bright_share: float = 0.0
  bright_z: float = 1.0
  slice_share: float = 0.0
  dark_share: float = 0.0
  dark_z: float = -1.0
  num_folds: int = 2
  inplane_mm: float = 1.0
  clip_low: float = -3.0
  seed: int = 0

  def settings(self) -> dict:
    """The fields above (not TFDS's own), as hashed into the name and saved in the metadata."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(PatchesConfig)
            if f.name not in _BASE_FIELDS}


_BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(tfds.core.BuilderConfig))


def make_patches_config(**settings) -> PatchesConfig:
  """A PatchesConfig named by a hash of its settings, so different settings never share records."""
  config = PatchesConfig(name="unnamed", **settings)
  settings = config.settings()
  # A moved cohort keeps its records; so do records made before healthy-tissue patches existed.
  identity = {k: v for k, v in settings.items()
              if k != "cohort" and not (k in ("healthy_rate", "bright_share", "slice_share", "dark_share") and v == 0)
              and not (k == "bright_z" and settings["bright_share"] == 0)
              and not (k == "dark_z" and settings["dark_share"] == 0)}
  digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
  return dataclasses.replace(
      config, name=f"p{config.patch_size}_shift{config.max_shift}_{digest}",
      description=json.dumps(settings, sort_keys=True))


def _check_settings(config: PatchesConfig) -> None:
  """Raises InputError naming the config field of an unusable setting."""
  checks = [
      ("data.channels", bool(config.channels), "must name at least one channel"),
      ("sampling.patch_size", config.patch_size >= 1, "must be >= 1"),
      ("sampling.wmh_rate", 0.0 <= config.wmh_rate <= 1.0, "must be in [0, 1]"),
      ("sampling.stroke_rate", 0.0 <= config.stroke_rate <= 1.0, "must be in [0, 1]"),
      ("sampling.max_shift", config.max_shift >= 0, "must be >= 0"),
      ("sampling.healthy_rate", config.healthy_rate >= 0, "must be >= 0"),
      ("sampling.bright_share", 0.0 <= config.bright_share <= 1.0, "must be in [0, 1]"),
      ("sampling.slice_share", 0.0 <= config.slice_share <= 1.0 - config.bright_share,
       "must be in [0, 1 - sampling.bright_share]"),
      ("sampling.dark_share",
       0.0 <= config.dark_share <= 1.0 - config.bright_share - config.slice_share,
       "must be in [0, 1 - sampling.bright_share - sampling.slice_share]"),
      ("data.num_folds", config.num_folds >= 1, "must be >= 1"),
      ("preprocess.inplane_mm", config.inplane_mm > 0, "must be > 0"),
  ]
  for field, ok, problem in checks:
    if not ok:
      raise InputError(f"config.{field}: {problem}")


def _file_digest(path: pathlib.Path) -> str:
  digest = hashlib.blake2b(digest_size=16)
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def cohort_fingerprint(records: Sequence[nifti_io.SubjectRecord], channels: Sequence[str]) -> str:
  """A hash of the subjects and the contents of the files training reads: the same for a moved or
  copied cohort, different when a used file changes (a regenerated cohort never reuses records)."""
  entries = []
  for record in records:
    for field in (*channels, "labels", "brain_mask"):
      path = getattr(record, field, None)
      if path is not None:
        entries.append((record.subject, field, _file_digest(pathlib.Path(path))))
  return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()[:16]


def patches_config_from(config: ml_collections.ConfigDict) -> PatchesConfig:
  """The builder config for configs/default.py fields (reads the cohort listing, not its images)."""
  cohort = pathlib.Path(config.data.cohort).expanduser().resolve()
  channels = tuple(config.data.channels)
  records = nifti_io.read_cohort(cohort)
  patches_config = make_patches_config(
      cohort=str(cohort),
      cohort_fingerprint=cohort_fingerprint(records, channels),
      channels=channels,
      patch_size=int(config.sampling.patch_size),
      wmh_rate=float(config.sampling.wmh_rate),
      stroke_rate=float(config.sampling.stroke_rate),
      max_shift=int(config.sampling.max_shift),
      healthy_rate=float(config.sampling.get("healthy_rate", 0.0)),
      bright_share=float(config.sampling.get("bright_share", 0.0)),
      bright_z=float(config.sampling.get("bright_z", 1.0)),
      slice_share=float(config.sampling.get("slice_share", 0.0)),
      dark_share=float(config.sampling.get("dark_share", 0.0)),
      dark_z=float(config.sampling.get("dark_z", -1.0)),
      num_folds=int(config.data.num_folds),
      inplane_mm=float(config.preprocess.inplane_mm),
      clip_low=float(config.preprocess.clip_low),
      seed=int(config.seed),
  )
  _check_settings(patches_config)
  return patches_config


def subject_rng(seed: int, subject: str) -> np.random.Generator:
  """Per-subject generator: the records do not depend on the order subjects are processed in."""
  return np.random.default_rng([seed, zlib.crc32(subject.encode())])


def _labelled_records(cohort: str) -> list[nifti_io.SubjectRecord]:
  records = nifti_io.read_cohort(cohort)
  if not records:
    raise InputError(f"{cohort}: cohort has no subjects")
  for record in records:
    if record.labels is None:
      raise InputError(f"{record.subject}: no labels file; patch records need labelled subjects")
  return sorted(records, key=lambda r: r.subject)


def _lesion_classes(record: nifti_io.SubjectRecord) -> tuple[bool, bool]:
  """Whether the subject's labels hold (WMH, stroke) voxels."""
  labels = nifti_io.load_nifti(record.labels, kind="labels", subject=record.subject)
  return bool(np.any(labels.data == labelling.WMH)), bool(np.any(labels.data == labelling.STROKE))


def _check_folds_have_wmh(fold_of: dict[str, int], has_wmh: dict[str, bool], cohort: str) -> None:
  """Every fold must hold a WMH subject: it trains the other folds' models and scores its own."""
  for fold in sorted(set(fold_of.values())):
    members = sorted(s for s, k in fold_of.items() if k == fold)
    if not any(has_wmh[s] for s in members):
      raise InputError(f"{cohort}: fold{fold} ({', '.join(members)}) holds no subject with WMH "
                       "labels; add subjects with WMH, or use fewer folds (config.data.num_folds)")


class UresnetPatches(tfds.core.GeneratorBasedBuilder,
                     skip_registration=__name__ == "__main__"):
  """Lesion-centred, shifted axial patches of a cohort; one split per cross-validation fold."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def __init__(self, *, use_beam: bool = False, **kwargs):
    """use_beam: the splits are Beam PTransforms (build with a DownloadConfig beam_runner or
    beam_options); the records are the same either way, and so is their name."""
    self._use_beam = use_beam
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    size, channels = config.patch_size, len(config.channels)
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            # Raw bytes: TFDS's proto float/int lists cost ~3 ms a patch to write without TF.
            "image": tfds.features.Tensor(shape=(size, size, channels), dtype=np.float32,
                                          encoding=tfds.features.Encoding.BYTES),
            "label": tfds.features.Tensor(shape=(size, size), dtype=np.uint8,
                                          encoding=tfds.features.Encoding.BYTES),
            "subject": tfds.features.Text(),  # read back as bytes
            "slice": tfds.features.Scalar(dtype=np.int32),
            "centre": tfds.features.Tensor(shape=(3,), dtype=np.int32),  # on the 1 mm grid
            "offset": tfds.features.Tensor(shape=(2,), dtype=np.int32),
            "lesion_class": tfds.features.Scalar(dtype=np.uint8),  # class of the sampled voxel
        }),
        supervised_keys=("image", "label"),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the cohort is local
    config = self.builder_config
    records = _labelled_records(config.cohort)
    with progress.bar(records, desc="reading labels", unit="subject", leave=False) as bar:
      classes = {r.subject: _lesion_classes(r) for r in bar}  # the bar is cleared on an error too
    has_stroke = {s: stroke for s, (_, stroke) in classes.items()}
    fold_of = folds.assign_folds(list(has_stroke), list(has_stroke.values()),
                                 config.num_folds, config.seed)
    _check_folds_have_wmh(fold_of, {s: wmh for s, (wmh, _) in classes.items()}, config.cohort)
    self.info.metadata.update(fold_of_subject=fold_of, has_stroke=has_stroke,
                              settings=config.settings())
    if not self._use_beam:  # Beam workers cannot fill the driver's metadata; nothing reads it
      self.info.metadata["patches_per_subject"] = {}
    return {
        f"fold{k}": self._generate_examples([r for r in records if fold_of[r.subject] == k], k)
        for k in range(config.num_folds)
    }

  def _generate_examples(self, records: Sequence[nifti_io.SubjectRecord], fold: int):
    config = self.builder_config
    if self._use_beam:  # TFDS runs the returned PTransform in its pipeline (build_patches)
      return _beam_fold_examples(records, fold, config.settings())
    return self._iterate_examples(records, fold)

  def _iterate_examples(self, records: Sequence[nifti_io.SubjectRecord],
                        fold: int) -> Iterator[tuple[str, dict]]:
    config = self.builder_config
    total = 0
    with progress.bar(records, desc=f"fold{fold}", unit="subject", leave=False) as bar:
      for record in bar:  # the bar is cleared on an error too
        examples = subject_examples(record, config.settings())
        self.info.metadata["patches_per_subject"][record.subject] = len(examples)
        yield from examples
        total += len(examples)
    if not total:
      raise InputError(_no_patches_message(fold, records))


def subject_examples(record: nifti_io.SubjectRecord, settings: dict) -> list[tuple[str, dict]]:
  """One subject's (key, example) pairs; `settings` is PatchesConfig.settings(). Module-level and
  picklable: the plain build and Beam workers both run it, so their records are the same."""
  volumes = nifti_io.load_subject(record, settings["channels"])
  prepared = preprocess.prepare_subject(volumes, settings["inplane_mm"], settings["clip_low"])
  centres = sampling.sample_centres(
      prepared.labels, wmh_rate=settings["wmh_rate"], stroke_rate=settings["stroke_rate"],
      max_shift=settings["max_shift"], rng=subject_rng(settings["seed"], record.subject),
      brain=prepared.mask, healthy_rate=settings["healthy_rate"],
      bright=prepared.image[..., 0] > settings.get("bright_z", 1.0),
      bright_share=settings.get("bright_share", 0.0),
      slice_share=settings.get("slice_share", 0.0),
      dark=prepared.image[..., 0] < settings.get("dark_z", -1.0),
      dark_share=settings.get("dark_share", 0.0))
  patches, patch_labels = sampling.extract_patches(
      prepared.image, prepared.labels, centres.centre, settings["patch_size"],
      settings["clip_low"])
  if not len(centres):
    logging.warning("%s: no lesion voxels; it contributes no patches", record.subject)
  return [(f"{record.subject}/{i}", {
      "image": patches[i],
      "label": patch_labels[i],
      "subject": record.subject,
      "slice": np.int32(centres.centre[i, 2]),
      "centre": centres.centre[i].astype(np.int32),
      "offset": centres.offset[i].astype(np.int32),
      "lesion_class": centres.lesion_class[i],
  }) for i in range(len(centres))]


def _no_patches_message(fold: int, records: Sequence[nifti_io.SubjectRecord]) -> str:
  return (f"fold{fold}: no patches: none of its subjects "
          f"({', '.join(r.subject for r in records)}) has lesion voxels")


def _check_fold_count(count: int, fold: int, records) -> None:
  if not count:
    raise InputError(_no_patches_message(fold, records))


def _beam_fold_examples(records: Sequence[nifti_io.SubjectRecord], fold: int, settings: dict):
  """A fold as a Beam PTransform: the subjects spread over the workers, each running
  subject_examples; a side branch fails the pipeline with the plain build's error when the fold
  has no patch at all (TFDS's writer would fail too, with a less helpful message)."""
  beam = tfds.core.lazy_imports.apache_beam
  records = list(records)

  @beam.ptransform_fn
  def fold_examples(pipeline):
    examples = (pipeline
                | "Subjects" >> beam.Create(records)
                | "Spread" >> beam.Reshuffle()  # else a runner may fuse all subjects into a worker
                | "Examples" >> beam.FlatMap(subject_examples, settings=settings))
    _ = (examples
         | "Count" >> beam.combiners.Count.Globally()
         | "CheckNotEmpty" >> beam.Map(_check_fold_count, fold=fold, records=records))
    return examples

  return fold_examples()  # pylint: disable=no-value-for-parameter


class _NeverRaised(Exception):
  """Stands in for tf.errors.ResourceExhaustedError, which only TensorFlow raises."""


# The TFDS releases whose Shuffler internals (`shuffle.tf`, `shuffle.BUCKETS_NUMBER`) the record
# builder relies on; setup.py pins the same range.
SUPPORTED_TFDS = ((4, 9, 7), (4, 10, 0))  # [first, end)


def check_tfds_internals(version: str | None = None) -> None:
  """Fails with a clear message on a TFDS release outside SUPPORTED_TFDS, or one whose Shuffler
  lacks what `_shuffler_without_tensorflow` swaps, instead of failing deep in a build."""
  version = version or tfds.__version__
  try:
    parts = tuple(int(p) for p in version.split(".")[:3])
  except ValueError:
    parts = ()
  (lo, hi), fmt = SUPPORTED_TFDS, lambda v: ".".join(map(str, v))
  if not (lo <= parts < hi and hasattr(tfds_shuffle, "tf")
          and hasattr(tfds_shuffle, "BUCKETS_NUMBER")):
    raise InputError(f"tensorflow-datasets {version} is not supported by the patch-record builder "
                     f"(it relies on the Shuffler internals of {fmt(lo)} to before {fmt(hi)}); "
                     f"pip install 'tensorflow-datasets>={fmt(lo)},<{fmt(hi)}'")


@contextlib.contextmanager
def _shuffler_without_tensorflow() -> Iterator[None]:
  """Lets TFDS shuffle splits larger than its 1 GB memory buffer without TensorFlow.

  Past that size TFDS's Shuffler spills into 1000 bucket files through tf.io.gfile, which fails
  when TensorFlow is not installed; these few file calls are all it needs. Its bucket files stay
  open together, so the open-file limit is raised for the build.
  """
  gfile = types.SimpleNamespace(
      GFile=lambda path, mode: epath.Path(path).open(mode),
      exists=lambda path: epath.Path(path).exists(),
      remove=lambda path: epath.Path(path).unlink(),
  )
  check_tfds_internals()
  shim = types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile),
                               errors=types.SimpleNamespace(ResourceExhaustedError=_NeverRaised))
  limits = resource.getrlimit(resource.RLIMIT_NOFILE)
  wanted = tfds_shuffle.BUCKETS_NUMBER + 1024
  if limits[0] != resource.RLIM_INFINITY and limits[0] < wanted:
    hard = limits[1]
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
  original = tfds_shuffle.tf
  tfds_shuffle.tf = shim
  try:
    yield
  finally:
    tfds_shuffle.tf = original
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


@contextlib.contextmanager
def _build_lock(config_dir: pathlib.Path) -> Iterator[None]:
  """Serialises builds of one config (e.g. several processes of a multi-process run)."""
  config_dir.mkdir(parents=True, exist_ok=True)
  with open(config_dir / _LOCK_FILE, "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, also when the process is killed
    yield


def build_patches(config: ml_collections.ConfigDict) -> UresnetPatches:
  """Builds the records for `config` unless already built; a killed build's remains are removed.

  TFDS writes into <records_dir>/uresnet_patches/<config>/incomplete.XXXXXX_<version>/ and renames
  it to <version>/ on success; a killed process leaves that folder behind, so it is deleted here
  (under a lock, so a concurrent build is never disturbed) before building again.
  """
  patches_config = patches_config_from(config)
  download_config = _download_config(config)  # refuses a Beam build without apache-beam first
  data_dir = pathlib.Path(config.data.records_dir).expanduser()
  config_dir = data_dir / NAME / patches_config.name
  with _build_lock(config_dir):
    builder = UresnetPatches(config=patches_config, data_dir=data_dir,
                             use_beam=download_config.beam_options is not None)
    if not builder.data_path.exists():  # the same test download_and_prepare makes
      for leftover in config_dir.glob(_INCOMPLETE_GLOB):
        logging.info("Removing the remains of an interrupted build: %s", leftover)
        shutil.rmtree(leftover)
      # Nothing is downloaded, but TFDS makes a downloads/ folder: keep it out of records_dir.
      with (tempfile.TemporaryDirectory(prefix="incomplete.downloads.", dir=config_dir) as tmp,
            _shuffler_without_tensorflow()):
        builder.download_and_prepare(file_format="array_record", download_dir=tmp,
                                     download_config=download_config)
  return builder


_BEAM_RUNNERS = {"direct": "DirectRunner"}  # config.data.beam_runner -> Beam's runner name


def _download_config(config: ml_collections.ConfigDict) -> tfds.download.DownloadConfig:
  """The plain build's DownloadConfig, or, with config.data.beam_runner or beam_options set, one
  that makes TFDS build the records in a Beam pipeline (the same records, under the same name)."""
  runner = str(config.data.get("beam_runner", "") or "").strip()
  flags = str(config.data.get("beam_options", "") or "").strip()
  if not runner and not flags:
    return tfds.download.DownloadConfig(try_download_gcs=False)
  if runner and runner.lower() not in _BEAM_RUNNERS:
    raise InputError(f"config.data.beam_runner: {runner!r} is not one of "
                     f"{', '.join(map(repr, _BEAM_RUNNERS))} (or empty); other runners go through "
                     "config.data.beam_options, e.g. '--runner=FlinkRunner --flink_master=H:8081'")
  if runner and "--runner" in flags:
    raise InputError("config.data.beam_runner and a --runner in config.data.beam_options: set one")
  try:
    from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise InputError("config.data.beam_runner/beam_options: apache-beam is not installed; "
                     "pip install -e '.[beam]'") from None
  options = pipeline_options.PipelineOptions(flags=shlex.split(flags))
  if runner:
    options.view_as(pipeline_options.StandardOptions).runner = _BEAM_RUNNERS[runner.lower()]
  return tfds.download.DownloadConfig(try_download_gcs=False, beam_options=options)


def open_patches(config: ml_collections.ConfigDict) -> UresnetPatches:
  """The builder of records another process built; refuses to build them itself."""
  data_dir = pathlib.Path(config.data.records_dir).expanduser()
  builder = UresnetPatches(config=patches_config_from(config), data_dir=data_dir)
  if not builder.data_path.exists():
    raise InputError(f"{builder.data_path}: patch records not found on this host; records_dir "
                     "must be on a filesystem every host shares, "
                     "or build the records on each host first (python -m uresnet_jax.patches_tfds)")
  return builder


def get_fold_assignment(builder: tfds.core.DatasetBuilder) -> dict[str, int]:
  """Subject -> fold, as assigned when the records were built (works for read-only builders)."""
  path = epath.Path(builder.data_dir) / METADATA_FILE
  if not path.exists():
    raise InputError(f"{builder.data_dir}: no {METADATA_FILE}; the patch records are not built")
  return {s: int(k) for s, k in json.loads(path.read_text())["fold_of_subject"].items()}


def main(config: ml_collections.ConfigDict) -> None:
  """Builds the records and prints where they are, the build time and the patches per split."""
  start = time.perf_counter()
  builder = build_patches(config)
  print(f"{builder.info.full_name} in {builder.data_dir} ({time.perf_counter() - start:.1f} s)")
  for name, split in sorted(builder.info.splits.items()):
    print(f"  {name}: {split.num_examples} patches")


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  config_flag = config_flags.DEFINE_config_file("config", "configs/default.py",
                                                "Experiment config.")

  def cli_main() -> None:
    main(get_config(config_flag))

  run_cli(cli_main)

