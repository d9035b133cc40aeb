"""The cohort on disk: subject folders written atomically and resumably, then the manifest."""
import concurrent.futures
import csv
import hashlib
import io
import json
import multiprocessing
import os
import pathlib
import shutil
from typing import Any, Sequence

import ml_collections

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.phantom.clinical import generative_model
from uresnet_jax.phantom.knobs import validate_config
from uresnet_jax.phantom.subject import generate_subject, subject_name

MANIFEST = "subjects.csv"
GENERATIVE_MODEL = "generative_model.json"
IMAGE_COLUMNS = ("flair", "labels", "t1", "wm", "brain_mask")
CLINICAL_COLUMNS = ("age", "sex", "hypertension", "diabetes", "smoking", "sbp", "fazekas_pv",
                    "fazekas_deep", "mmse", "protocol", "icv_ml", "wmh_ml", "stroke_ml",
                    "stroke_type")
_DONE = "clinical.json"  # written last inside a subject folder: the folder is complete


def fingerprint(seed: int, config: ml_collections.ConfigDict) -> str:
  """Identifies what a subject folder was generated from (the worker count does not matter)."""
  settings = config.to_dict()
  settings.pop("num_workers", None)
  text = json.dumps([seed, settings], sort_keys=True, default=list)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_subject(out_dir: str, index: int, seed: int,
                   config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Generates one subject into a temporary folder, renamed into place when complete."""
  out = pathlib.Path(out_dir)
  name = subject_name(index)
  digest = fingerprint(seed, config)
  final = out / name
  if (final / _DONE).exists():
    record = json.loads((final / _DONE).read_text())
    if record.get("fingerprint") == digest:
      return record
  subject = generate_subject(index, seed, config)
  tmp = out / f".tmp-{name}"
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir()
  for key in IMAGE_COLUMNS:
    nifti_io.save_nifti(tmp / f"{key}.nii.gz", subject[key], subject["affine"])
  record = dict(subject=name, fingerprint=digest, clinical=subject["clinical"],
                truth=subject["truth"])
  text = json.dumps(record, indent=1, sort_keys=True)
  atomic.write_text(tmp / _DONE, text)
  shutil.rmtree(final, ignore_errors=True)
  os.replace(tmp, final)
  return json.loads(text)  # exactly what a resumed run reads back


def _check_out(out_dir: str | os.PathLike, num_subjects: int,
               config: ml_collections.ConfigDict) -> pathlib.Path:
  if num_subjects < 1:
    raise InputError(f"{out_dir}: the number of subjects must be at least 1, got {num_subjects}")
  validate_config(config)
  out = pathlib.Path(out_dir)
  atomic.check_output_folder(out)
  out.mkdir(parents=True, exist_ok=True)
  return out


def _generate(out: pathlib.Path, indices: Sequence[int], seed: int,
              config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """Writes (or finds complete) the subjects `indices`, in worker processes when configured."""
  workers = min(config.num_workers, len(indices))
  if workers <= 1:
    return [_write_subject(str(out), i, seed, config) for i in indices]
  context = multiprocessing.get_context("spawn")  # safe under a parent that imported JAX
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
    n = len(indices)
    return list(pool.map(_write_subject, [str(out)] * n, indices, [seed] * n, [config] * n))


def write_share(out_dir: str | os.PathLike, num_subjects: int, seed: int,
                config: ml_collections.ConfigDict, index: int, count: int) -> None:
  """One of `count` processes (hosts) generating a cohort together: this one writes subjects
  index, index + count, ... into the shared folder and touches no other subject's files; then
  one `write_cohort` call (after all shares are done) writes the manifest."""
  out = _check_out(out_dir, num_subjects, config)
  _generate(out, range(index, num_subjects, count), seed, config)


def write_cohort(out_dir: str | os.PathLike, num_subjects: int, seed: int,
                 config: ml_collections.ConfigDict) -> pathlib.Path:
  """Writes (or completes) a phantom cohort and returns its manifest, which is written last."""
  out = _check_out(out_dir, num_subjects, config)
  for stale in out.glob(".tmp-*"):  # leftovers of an interrupted run
    if stale.is_dir():
      shutil.rmtree(stale)
    else:
      stale.unlink()
  records = _generate(out, range(num_subjects), seed, config)
  truth = generative_model(seed, config, records)
  atomic.write_text(out / GENERATIVE_MODEL, json.dumps(truth, indent=1, default=list))
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(("subject",) + IMAGE_COLUMNS + CLINICAL_COLUMNS)
  for r in records:
    writer.writerow([r["subject"]] + [f"{r['subject']}/{c}.nii.gz" for c in IMAGE_COLUMNS]
                    + [r["clinical"][c] for c in CLINICAL_COLUMNS])
  manifest = out / MANIFEST
  atomic.write_text(manifest, buffer.getvalue())
  return manifest
