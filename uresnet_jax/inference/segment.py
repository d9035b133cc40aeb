"""Segment scans that have no expert labels: label maps on each scan's own grid, volumes, lesions, QC.

Run: python -m uresnet_jax.predict --model=WORKDIR|ARTIFACT --input=FILE|FOLDER|MANIFEST|BIDS_ROOT
         --output=DIR [--brain_mask=...] [--exclusion_mask=...] [--tta] [--bids] [--overwrite]

Each scan's files are written into DIR/.partial/<scan> and moved into place when it finishes, then
its record DIR/scans/<scan>.json (rows, files, the run's fingerprint) is written: a rerun of the
same command after a kill skips the scans whose record and files are whole and segments the rest;
the cohort files (volumes.csv, lesions.csv, report.md, report.html) are rebuilt from the records.
DIR/run.json names the model and settings; a rerun with others is refused. A scan that cannot be
read is reported and skipped; the exit status is then 1.
"""
import csv
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time
from typing import Sequence

import ml_collections
import numpy as np
from tqdm import tqdm

from uresnet_jax.common import atomic, labelling, progress
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess, scan_inputs
from uresnet_jax.evaluation import html_report, report
from uresnet_jax.inference import config as predict_config, lesions, predictor

VOLUME_COLUMNS = ("subject", "wmh_ml", "wmh_ml_low", "wmh_ml_high", "wmh_lesions", "wmh_pct_icv",
                  "stroke_ml", "stroke_ml_low", "stroke_ml_high", "stroke_lesions",
                  "stroke_pct_icv", "icv_ml", "icv_source", "excluded_ml", "seconds", "input")
RUN_FILE = "run.json"  # the fingerprint (model checksum, settings, inputs) of a folder's results
SCANS_DIR = "scans"  # <scan>.json per finished scan: written last, so it marks a whole result
PARTIAL_DIR = ".partial"  # a scan's files while it is being segmented


@dataclasses.dataclass(frozen=True)
class ScanResult:
  volumes: dict
  lesions: list[dict]
  files: list[str]  # written, relative to the output folder
  review: dict  # what report.html shows: slice images, lesion -> slice, warnings


def model_checksum(path: os.PathLike | str, checkpoint: str = "latest") -> str:
  """sha256 of a model's files (an exported folder; a run's config.json and checkpoint), so a
  resumed run can tell that its earlier results came from the same model."""
  path = pathlib.Path(path)
  if (path / "config.json").is_file() and (path / "checkpoints").is_dir():
    steps = [int(p.name) for p in (path / "checkpoints").iterdir() if p.name.isdigit()]
    step = checkpoint if checkpoint.isdigit() else str(max(steps, default=-1))
    files = [path / "config.json", *sorted((path / "checkpoints" / step).rglob("*"))]
  else:
    files = sorted(path.rglob("*"))
  digest = hashlib.sha256()
  for f in files:
    if f.is_file() and "__pycache__" not in f.parts:
      digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
  return digest.hexdigest()


def run_fingerprint(checksum: str, options: ml_collections.ConfigDict,
                    scans: Sequence[scan_inputs.Scan], probabilities: bool, bids: bool) -> str:
  """One hash of everything a scan's result depends on: the model, the options, the inputs."""
  settings = {"model": checksum, "options": options.to_dict(), "probabilities": probabilities,
              "bids": bids, "scans": [[s.name, dataclasses.asdict(s.record)] for s in scans]}
  return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _exclusion(record: nifti_io.SubjectRecord, reference: nifti_io.Volume) -> np.ndarray | None:
  if record.exclusion is None:
    return None
  volume = nifti_io.load_nifti(record.exclusion, kind="image", subject=record.subject)
  nifti_io.check_same_grid(reference, volume, record.subject)
  return volume.data > 0


def _icv(record: nifti_io.SubjectRecord, volumes: nifti_io.SubjectVolumes,
         prepared: preprocess.Prepared) -> tuple[float, str]:
  """ICV (mL) and where it came from: the manifest's icv_ml, the given brain mask, or the mask
  derived from the skull-stripped scan."""
  icv_ml = labelling.manifest_icv_ml(record.clinical.get("icv_ml", ""))
  if icv_ml is not None:
    return icv_ml, "manifest"
  if volumes.brain_mask is not None:
    mask = volumes.brain_mask
    return float(mask.data.sum()) * labelling.voxel_volume_ml(mask.affine), "brain_mask"
  grid_ml = labelling.voxel_volume_ml(prepared.geometry.grid_affine)
  return float(prepared.mask.sum()) * grid_ml, "skull-stripped scan"


def segment_scan(model: predictor.Predictor, scan: scan_inputs.Scan, out: pathlib.Path,
                 options: ml_collections.ConfigDict, probabilities: bool, bids: bool,
                 qc_dir: pathlib.Path) -> ScanResult:
  """Predicts one scan and writes its files into `out`; returns its table rows."""
  start = time.perf_counter()
  record = scan.record
  volumes = nifti_io.load_subject(record, model.info.channels)
  reference = next(iter(volumes.channels.values()))
  exclusion = _exclusion(record, reference)
  prepared = model.prepare(volumes, require_stripped=True)
  prediction = model.predict(prepared)
  voxel_ml = labelling.voxel_volume_ml(reference.affine)
  min_voxels = options.min_lesion_mm3 / 1000.0 / voxel_ml
  labels = lesions.postprocess(prediction.labels, exclusion, min_voxels)
  zones = np.zeros(labels.shape, np.uint8)  # the distance maps are only needed for lesions
  candidates = prediction.stroke_candidates & (labels == 0)
  if exclusion is not None:
    candidates &= ~exclusion
  if labels.any() or candidates.any():
    zones = preprocess.to_native(lesions.location_zones(
        prepared.image, prepared.mask, prepared.geometry.grid_zooms, options), prepared.geometry)
  lesion_rows = lesions.lesion_rows(scan.name, labels, prediction.probabilities, zones,
                                    reference.affine, options.ambiguity_margin, candidates)
  icv_ml, icv_source = _icv(record, volumes, prepared)
  row = {"subject": scan.name}
  for name, label in labelling.CLASSES.items():
    low, high = lesions.volume_interval(prediction.probabilities, labels, label, exclusion,
                                        min_voxels, options.interval_low_p, options.interval_high_p)
    ml = float((labels == label).sum() * voxel_ml)
    row.update({f"{name}_ml": ml, f"{name}_ml_low": low * voxel_ml, f"{name}_ml_high": high * voxel_ml,
                f"{name}_lesions": sum(r["class"] == name for r in lesion_rows),
                f"{name}_pct_icv": labelling.percent_of_icv(ml, icv_ml)})
  row.update(icv_ml=icv_ml, icv_source=icv_source,
             excluded_ml=float(exclusion.sum() * voxel_ml) if exclusion is not None else 0.0,
             input=str(record.flair))

  if bids:
    folder = out.joinpath(*scan.bids_path[:-1]) if scan.bids_path else out / f"sub-{scan.name}"
    stem = scan.bids_path[-1] if scan.bids_path else f"sub-{scan.name}"
    folder.mkdir(parents=True, exist_ok=True)
    label_file = folder / f"{stem}_desc-uresnet_dseg.nii.gz"
    prob_file = folder / f"{stem}_desc-uresnet_probseg.nii.gz"
  else:
    label_file = out / f"{scan.name}_labels.nii.gz"
    prob_file = out / f"{scan.name}_probabilities.nii.gz"
  files = [label_file]
  nifti_io.save_nifti(label_file, labels, reference.affine, like=reference)
  if probabilities:
    nifti_io.save_nifti(prob_file, prediction.probabilities.astype(np.float32), reference.affine,
                        like=reference)
    files.append(prob_file)
  qc_file = qc_dir / f"{scan.name}.png"
  canonical_image, canonical_affine = preprocess.to_canonical(reference.data, reference.affine)
  canonical_labels = preprocess.to_canonical(labels, reference.affine)[0]
  canonical_brain = preprocess.to_canonical(
      volumes.brain_mask.data if volumes.brain_mask is not None else reference.data > 0,
      reference.affine)[0]
  report.qc_image(qc_file, f"{scan.name}: WMH {row['wmh_ml']:.1f} mL, stroke "
                  f"{row['stroke_ml']:.1f} mL", canonical_image, canonical_labels,
                  canonical_brain, options.qc_slices)
  files.append(qc_file)
  slices = html_report.slice_images(qc_dir / scan.name, canonical_image, canonical_labels,
                                    canonical_brain, options.qc_slices)
  files += [qc_dir / scan.name / s[k] for s in slices for k in ("image", "overlay")]
  review = {"slices": [{**s, **{k: f"qc/{scan.name}/{s[k]}" for k in ("image", "overlay")}}
                       for s in slices],
            "lesion_slices": html_report.lesion_slices(lesion_rows, canonical_affine),
            "warnings": html_report.scan_warnings(canonical_brain, canonical_affine,
                                                  row["excluded_ml"])}
  row["seconds"] = time.perf_counter() - start
  return ScanResult(row, lesion_rows, [str(f.relative_to(out)) for f in files], review)


def _write_csv(path: pathlib.Path, rows: Sequence[dict], columns: Sequence[str],
               delimiter: str = ",") -> None:
  with atomic.replacing(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _bids_description(out: pathlib.Path, model: str) -> None:
  from importlib import metadata
  atomic.write_text(out / "dataset_description.json", json.dumps({
      "Name": "uresnet_jax WMH and stroke segmentation", "BIDSVersion": "1.9.0",
      "DatasetType": "derivative",
      "GeneratedBy": [{"Name": "uresnet_jax", "Version": metadata.version("uresnet_jax"),
                       "Description": f"python -m uresnet_jax.predict --model={model}"}],
  }, indent=2))
  _write_csv(out / "desc-uresnet_dseg.tsv", [{"index": i, "name": n} for i, n in enumerate(labelling.CLASS_NAMES)],
             ("index", "name"), "\t")
  atomic.write_text(out / ".bidsignore",
                    f"qc/\n{SCANS_DIR}/\n{RUN_FILE}\n*.csv\n*.md\n*.png\n*.html\n")


def check_output(output: pathlib.Path, overwrite: bool) -> None:
  """Refuses, before the model loads, a folder holding files that are not a run's (no run.json):
  atomic.check_output_folder, except that a folder with a run.json may be resumed (open_output
  then compares its fingerprint)."""
  if output.is_dir() and (output / RUN_FILE).is_file():
    return
  atomic.check_output_folder(output, overwrite)


def open_output(output: pathlib.Path, fingerprint: str, overwrite: bool) -> None:
  """Makes `output` ready for this run: emptied with `overwrite`, resumed when its run.json has the
  same fingerprint, refused when it holds another run's or other files."""
  check_output(output, overwrite)
  run_file = output / RUN_FILE
  if overwrite and output.is_dir():
    shutil.rmtree(output)
  if run_file.is_file():
    try:
      recorded = json.loads(run_file.read_text())["fingerprint"]
    except (ValueError, KeyError, TypeError):
      recorded = None
    if recorded != fingerprint:
      raise InputError(f"{output}: holds results of another model, settings or input (see "
                       f"{run_file}); pass --overwrite to replace them, or choose another --output")
  try:
    output.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(output / PARTIAL_DIR, ignore_errors=True)  # a scan a kill interrupted
    atomic.remove_leftovers(output)  # and a write it interrupted
    atomic.write_text(run_file, json.dumps({"fingerprint": fingerprint}))
  except OSError as e:
    raise InputError(f"{output}: cannot write the results there ({e.strerror})") from None


def _sidecar(out: pathlib.Path, name: str) -> pathlib.Path:
  return out / SCANS_DIR / f"{name}.json"


def finished(out: pathlib.Path, name: str, fingerprint: str) -> dict | None:
  """A scan's earlier result when its record is whole, of this run's fingerprint, and every file it
  lists is there at its recorded size; None (segment it again) otherwise."""
  try:
    record = json.loads(_sidecar(out, name).read_text())
    if record["fingerprint"] != fingerprint:
      return None
    if all((out / f).stat().st_size == size for f, size in record["files"].items()):
      return record
  except (OSError, ValueError, KeyError, TypeError, AttributeError):
    pass
  return None


def _commit(out: pathlib.Path, stage: pathlib.Path, result: ScanResult, fingerprint: str) -> dict:
  """Moves a finished scan's files from `stage` into `out`, then writes its record (last)."""
  sizes = {}
  for rel in result.files:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage / rel, target)
    sizes[rel] = target.stat().st_size
  record = {"fingerprint": fingerprint, "volumes": result.volumes, "lesions": result.lesions,
            "review": result.review, "files": sizes}
  (out / SCANS_DIR).mkdir(exist_ok=True)
  atomic.write_text(_sidecar(out, result.volumes["subject"]), json.dumps(
      record, default=lambda value: value.item()))  # numpy scalars
  shutil.rmtree(stage, ignore_errors=True)
  return record


def _segment_all(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                 out: pathlib.Path, options: ml_collections.ConfigDict, probabilities: bool,
                 bids: bool, single: bool, fingerprint: str) -> tuple[list[dict], list[str]]:
  """Segments the `scans` that `out` does not already hold whole; returns every scan's record (in
  the input's order) and the failures. A bad scan is skipped with one line unless it is the only
  one."""
  records, failures = [], []
  done = {s.name: r for s in scans if (r := finished(out, s.name, fingerprint)) is not None}
  if done:
    print(f"{len(done)} of {len(scans)} scan(s) already done in {out}: skipped")
  with progress.bar(scans, unit="scan", desc="predict") as bar:
    for scan in bar:
      if scan.name in done:
        records.append(done[scan.name])
        continue
      stage = out / PARTIAL_DIR / scan.name
      (stage / "qc").mkdir(parents=True, exist_ok=True)
      try:
        result = segment_scan(model, scan, stage, options, probabilities, bids, stage / "qc")
      except InputError as e:
        shutil.rmtree(stage, ignore_errors=True)
        if single:
          raise
        failures.append(str(e))
        tqdm.write(f"error: {e}; scan skipped", file=sys.stderr)
        continue
      records.append(_commit(out, stage, result, fingerprint))
      tqdm.write(f"{scan.name}: WMH {result.volumes['wmh_ml']:.2f} mL, stroke "
                 f"{result.volumes['stroke_ml']:.2f} mL ({result.volumes['seconds']:.2f} s)")
  shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
  return records, failures


def _write_tables(out: pathlib.Path, records: Sequence[dict], failures: Sequence[str],
                  model_name: str, bids: bool) -> None:
  """volumes.csv, lesions.csv, the BIDS description, volumes.png, report.md and report.html of a
  whole run, from the scans' records; each file is written whole or not at all."""
  if not records:
    raise InputError(f"no scan could be segmented ({len(failures)} failed, listed above)")
  rows = [r["volumes"] for r in records]
  _write_csv(out / "volumes.csv", rows, VOLUME_COLUMNS)
  _write_csv(out / "lesions.csv", [l for r in records for l in r["lesions"]],
             lesions.LESION_COLUMNS)
  if bids:
    _bids_description(out, model_name)
    _write_csv(out / "volumes.tsv", rows, VOLUME_COLUMNS, "\t")
  with atomic.replacing(out / "volumes.png") as tmp:
    report.volume_histograms(tmp, {c: np.array([r[f"{c}_ml"] for r in rows])
                                   for c in labelling.CLASSES})
  atomic.write_text(out / "report.md", report.prediction_markdown(
      rows, failures, model_name, {r["subject"]: f"qc/{r['subject']}.png" for r in rows},
      "volumes.png"))
  atomic.write_text(out / "report.html", html_report.render(
      records, failures, model_name, (out / "volumes.png").read_bytes()))


def predict_scans(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                  output: pathlib.Path, options: ml_collections.ConfigDict, model_name: str,
                  probabilities: bool = False, bids: bool = False, overwrite: bool = False,
                  checksum: str = "") -> tuple[list[dict], list[str]]:
  """Segments every scan into `output`, resuming a run of the same fingerprint (`checksum` of the
  model, options, inputs) that was stopped; returns (volume rows, failure messages).

  In a multi-process run (`distributed`) each process segments its share of the scans (every
  process_count-th) into a staging folder beside `output`; process 0 then gathers them into one
  set of tables and swaps the folder in whole."""
  import jax
  from uresnet_jax.common import distributed
  output = pathlib.Path(output)
  fingerprint = run_fingerprint(checksum, options, scans, probabilities, bids)
  index, count = jax.process_index(), jax.process_count()
  if count == 1:
    fresh = overwrite or not output.exists()
    open_output(output, fingerprint, overwrite)
    try:
      records, failures = _segment_all(model, scans, output, options, probabilities, bids,
                                       len(scans) == 1, fingerprint)
      _write_tables(output, records, failures, model_name, bids)
    except InputError:
      if fresh and not any((output / SCANS_DIR).glob("*.json")):  # nothing done: leave no folder
        shutil.rmtree(output, ignore_errors=True)
      raise
    return [r["volumes"] for r in records], failures
  check_output(output, overwrite)
  output.parent.mkdir(parents=True, exist_ok=True)
  staging = output.parent / f".parts-{output.name}"
  part = staging / f"process-{index}"

  def segment_share() -> tuple[list[dict], list[str]]:
    if part.exists():
      shutil.rmtree(part)
    part.mkdir(parents=True)
    records, failures = _segment_all(model, scans[index::count], part, options, probabilities,
                                     bids, False, fingerprint)
    atomic.write_text(part / "rows.json", json.dumps({"records": records, "failures": failures}))
    return [r["volumes"] for r in records], failures

  try:
    share = distributed.everywhere("segmenting its share of the scans", segment_share)
    if index != 0:
      return share
    return _gather(staging, count, scans, output, model_name, bids, fingerprint)
  finally:
    if index == 0:  # the chief removes the staging folder, whatever happened
      shutil.rmtree(staging, ignore_errors=True)


def _gather(staging: pathlib.Path, count: int, scans: Sequence[scan_inputs.Scan],
            output: pathlib.Path, model_name: str, bids: bool, fingerprint: str
            ) -> tuple[list[dict], list[str]]:
  """Process 0: every process's files and records into one output folder, in the input's order."""
  records, failures = [], []
  with atomic.replacing(output) as tmp:
    tmp.mkdir()
    for k in range(count):
      source = staging / f"process-{k}"
      if not (source / "rows.json").is_file():
        raise InputError(f"{source}: process {k}'s results are not there; --output must be on a "
                         "filesystem every host shares")
      gathered = json.loads((source / "rows.json").read_text())
      records += gathered["records"]
      failures += gathered["failures"]
      (source / "rows.json").unlink()
      shutil.copytree(source, tmp, dirs_exist_ok=True)
    order = {scan.name: i for i, scan in enumerate(scans)}  # the input's order, as one process
    records.sort(key=lambda r: order[r["volumes"]["subject"]])
    atomic.write_text(tmp / RUN_FILE, json.dumps({"fingerprint": fingerprint}))
    _write_tables(tmp, records, failures, model_name, bids)
  return [r["volumes"] for r in records], failures


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  import jax
  from absl import flags, logging
  from uresnet_jax.common import cli, distributed
  model = flags.DEFINE_string("model", None, "A training workdir or an exported model folder. "
                              "Default: the bundled release model (uresnet_jax/release_model, "
                              "trained on the domain-randomised phantom; see its MODEL_CARD.md).")
  input_ = flags.DEFINE_string("input", None, "A NIfTI scan, a folder of them, a manifest CSV "
                               "(subject, flair[, brain_mask, exclusion, t1, wm]) or a BIDS root.")
  output = flags.DEFINE_string("output", None, "Folder for the results; a rerun of the same "
                               "command resumes it, skipping the scans already done.")
  checkpoint = flags.DEFINE_string("checkpoint", "latest",
                                 "Checkpoint: latest, or a saved step number.")
  extra = {
      "brain_mask": flags.DEFINE_string("brain_mask", None, "Brain mask: a file for one scan, or "
                                        "a folder of <scan name>.nii[.gz] for a folder or BIDS."),
      "exclusion": flags.DEFINE_string("exclusion_mask", None, "Voxels never labelled as lesion "
                                       "(tumour, oedema, cavity): a file or a folder, as "
                                       "--brain_mask."),
      "t1": flags.DEFINE_string("t1", None, "T1 channel, for models trained with it."),
      "wm": flags.DEFINE_string("wm", None, "White-matter map channel, for models trained with it."),
  }
  probabilities = flags.DEFINE_bool("probabilities", False, "Also write class probabilities.")
  bids = flags.DEFINE_bool("bids", False, "Write a BIDS-derivatives dataset.")
  overwrite = flags.DEFINE_bool("overwrite", False, "Empty an output folder that holds files "
                                  "(another run's, or one to redo from the start) first.")
  defaults = predict_config.get_config()
  knobs = {}
  for key, value in defaults.items():
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float}[type(value)]
    knobs[key] = define(key, None, f"Default: the model's config.predict (else {value}); see "
                        "uresnet_jax/inference/config.py.")

  join = distributed.define_flags()

  def main() -> None:
    join()  # a multi-process run: each process segments its share of the scans
    for name, holder in (("input", input_), ("output", output)):
      if not holder.value:
        raise InputError(f"--{name} is required")
    check_output(pathlib.Path(output.value), overwrite.value)
    scans = scan_inputs.find_scans(input_.value, **{k: h.value for k, h in extra.items()})
    loaded = predictor.load_model(model.value, checkpoint.value)
    options = ml_collections.ConfigDict(loaded.options.to_dict())
    for key, holder in knobs.items():
      if holder.value is not None:
        options[key] = holder.value
    loaded = loaded.with_options(options)
    start = time.perf_counter()
    path = predictor.model_path(model.value)
    rows, failures = predict_scans(loaded, scans, pathlib.Path(output.value), options, str(path),
                                   probabilities.value, bids.value, overwrite.value,
                                   model_checksum(path, checkpoint.value))
    seconds = [r["seconds"] for r in rows]
    if seconds:
      where = output.value if jax.process_index() == 0 else f"process 0's {output.value}"
      print(f"{len(rows)} scan(s) into {where}: {np.mean(seconds):.2f} s per scan "
            f"(median {np.median(seconds):.2f} s; {time.perf_counter() - start:.1f} s in all)")
    if failures:
      sys.exit(f"error: {len(failures)} of {len(scans)} scan(s) failed (listed above); the others "
               f"are in {output.value}")

  cli.run_cli(main, logging.ERROR)  # Orbax's notes on read-only checkpoints, TFDS chatter

