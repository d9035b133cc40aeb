"""Segment scans that have no expert labels: label maps on each scan's own grid, volumes, lesions, QC.

Run: python -m uresnet_jax.predict --model=WORKDIR|ARTIFACT --input=FILE|FOLDER|MANIFEST|BIDS_ROOT
         --output=DIR [--brain_mask=...] [--exclusion_mask=...] [--tta] [--bids] [--overwrite]

Everything is written into a temporary folder beside DIR and moved into place at the end, so DIR
holds a complete run or nothing. A scan that cannot be read is reported and skipped; the exit
status is then 1.
"""
import csv
import dataclasses
import json
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
from uresnet_jax.evaluation import report
from uresnet_jax.inference import config as predict_config, lesions, predictor

VOLUME_COLUMNS = ("subject", "wmh_ml", "wmh_ml_low", "wmh_ml_high", "wmh_lesions", "wmh_pct_icv",
                  "stroke_ml", "stroke_ml_low", "stroke_ml_high", "stroke_lesions",
                  "stroke_pct_icv", "icv_ml", "icv_source", "excluded_ml", "seconds", "input")


@dataclasses.dataclass(frozen=True)
class ScanResult:
  volumes: dict
  lesions: list[dict]
  files: list[str]  # written, relative to the output folder


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
  if labels.any():
    zones = preprocess.to_native(lesions.location_zones(
        prepared.image, prepared.mask, prepared.geometry.grid_zooms, options), prepared.geometry)
  lesion_rows = lesions.lesion_rows(scan.name, labels, prediction.probabilities, zones,
                                    reference.affine, options.ambiguity_margin)
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
  canonical_image = preprocess.to_canonical(reference.data, reference.affine)[0]
  canonical_labels = preprocess.to_canonical(labels, reference.affine)[0]
  canonical_brain = preprocess.to_canonical(
      volumes.brain_mask.data if volumes.brain_mask is not None else reference.data > 0,
      reference.affine)[0]
  report.qc_image(qc_file, f"{scan.name}: WMH {row['wmh_ml']:.1f} mL, stroke "
                  f"{row['stroke_ml']:.1f} mL", canonical_image, canonical_labels,
                  canonical_brain, options.qc_slices)
  files.append(qc_file)
  row["seconds"] = time.perf_counter() - start
  return ScanResult(row, lesion_rows, [str(f.relative_to(out)) for f in files])


def _write_csv(path: pathlib.Path, rows: Sequence[dict], columns: Sequence[str],
               delimiter: str = ",") -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _bids_description(out: pathlib.Path, model: str) -> None:
  from importlib import metadata
  (out / "dataset_description.json").write_text(json.dumps({
      "Name": "uresnet_jax WMH and stroke segmentation", "BIDSVersion": "1.9.0",
      "DatasetType": "derivative",
      "GeneratedBy": [{"Name": "uresnet_jax", "Version": metadata.version("uresnet_jax"),
                       "Description": f"python -m uresnet_jax.predict --model={model}"}],
  }, indent=2))
  _write_csv(out / "desc-uresnet_dseg.tsv", [{"index": i, "name": n} for i, n in enumerate(labelling.CLASS_NAMES)],
             ("index", "name"), "\t")
  (out / ".bidsignore").write_text("qc/\n*.csv\n*.md\n*.png\n")


def _segment_all(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                 out: pathlib.Path, options: ml_collections.ConfigDict, probabilities: bool,
                 bids: bool, single: bool) -> tuple[list[dict], list[dict], list[str]]:
  """Segments `scans` into `out`; a bad scan is skipped with one line unless it is the only one."""
  rows, lesion_rows, failures = [], [], []
  qc_dir = out / "qc"
  qc_dir.mkdir(parents=True, exist_ok=True)
  with progress.bar(scans, unit="scan", desc="predict") as bar:
    for scan in bar:
      try:
        result = segment_scan(model, scan, out, options, probabilities, bids, qc_dir)
      except InputError as e:
        if single:
          raise
        failures.append(str(e))
        tqdm.write(f"error: {e}; scan skipped", file=sys.stderr)
        continue
      rows.append(result.volumes)
      lesion_rows += result.lesions
      tqdm.write(f"{scan.name}: WMH {result.volumes['wmh_ml']:.2f} mL, stroke "
                 f"{result.volumes['stroke_ml']:.2f} mL ({result.volumes['seconds']:.2f} s)")
  return rows, lesion_rows, failures


def _write_tables(out: pathlib.Path, rows: Sequence[dict], lesion_rows: Sequence[dict],
                  failures: Sequence[str], model_name: str, bids: bool) -> None:
  """volumes.csv, lesions.csv, the BIDS description, volumes.png and report.md of a whole run."""
  if not rows:
    raise InputError(f"no scan could be segmented ({len(failures)} failed, listed above)")
  _write_csv(out / "volumes.csv", rows, VOLUME_COLUMNS)
  _write_csv(out / "lesions.csv", lesion_rows, lesions.LESION_COLUMNS)
  if bids:
    _bids_description(out, model_name)
    _write_csv(out / "volumes.tsv", rows, VOLUME_COLUMNS, "\t")
  report.volume_histograms(out / "volumes.png", {
      c: np.array([r[f"{c}_ml"] for r in rows]) for c in labelling.CLASSES})
  (out / "report.md").write_text(report.prediction_markdown(
      rows, failures, model_name, {r["subject"]: f"qc/{r['subject']}.png" for r in rows},
      "volumes.png"))


def predict_scans(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                  output: pathlib.Path, options: ml_collections.ConfigDict, model_name: str,
                  probabilities: bool = False, bids: bool = False, overwrite: bool = False
                  ) -> tuple[list[dict], list[str]]:
  """Segments every scan into a fresh `output` folder; returns (volume rows, failure messages).

  In a multi-process run (`distributed`) each process segments its share of the scans (every
  process_count-th) into a staging folder beside `output`; process 0 then gathers them into one
  set of tables and swaps the folder in whole."""
  import jax
  from uresnet_jax.common import distributed
  output = pathlib.Path(output)
  atomic.check_output_folder(output, overwrite)
  output.parent.mkdir(parents=True, exist_ok=True)
  index, count = jax.process_index(), jax.process_count()
  if count == 1:
    with atomic.replacing(output) as tmp:
      rows, lesion_rows, failures = _segment_all(model, scans, tmp, options, probabilities, bids,
                                                 single=len(scans) == 1)
      _write_tables(tmp, rows, lesion_rows, failures, model_name, bids)
    return rows, failures
  staging = output.parent / f".parts-{output.name}"
  part = staging / f"process-{index}"

  def segment_share() -> tuple[list[dict], list[str]]:
    if part.exists():
      shutil.rmtree(part)
    rows, lesion_rows, failures = _segment_all(model, scans[index::count], part, options,
                                               probabilities, bids, single=False)
    atomic.write_text(part / "rows.json", json.dumps(
        {"rows": rows, "lesions": lesion_rows, "failures": failures},
        default=lambda value: value.item()))  # numpy scalars
    return rows, failures

  try:
    share = distributed.everywhere("segmenting its share of the scans", segment_share)
    if index != 0:
      return share
    return _gather(staging, count, scans, output, model_name, bids)
  finally:
    if index == 0:  # the chief removes the staging folder, whatever happened
      shutil.rmtree(staging, ignore_errors=True)


def _gather(staging: pathlib.Path, count: int, scans: Sequence[scan_inputs.Scan],
            output: pathlib.Path, model_name: str, bids: bool) -> tuple[list[dict], list[str]]:
  """Process 0: every process's files and rows into one output folder, in the input's order."""
  rows, lesion_rows, failures = [], [], []
  with atomic.replacing(output) as tmp:
    tmp.mkdir()
    for k in range(count):
      source = staging / f"process-{k}"
      if not (source / "rows.json").is_file():
        raise InputError(f"{source}: process {k}'s results are not there; --output must be on a "
                         "filesystem every host shares")
      gathered = json.loads((source / "rows.json").read_text())
      rows += gathered["rows"]
      lesion_rows += gathered["lesions"]
      failures += gathered["failures"]
      (source / "rows.json").unlink()
      shutil.copytree(source, tmp, dirs_exist_ok=True)
    order = {scan.name: i for i, scan in enumerate(scans)}  # the input's order, as one process
    rows.sort(key=lambda r: order[r["subject"]])
    lesion_rows.sort(key=lambda r: order[r["subject"]])
    _write_tables(tmp, rows, lesion_rows, failures, model_name, bids)
  return rows, failures


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
  output = flags.DEFINE_string("output", None, "Folder for the results (created whole).")
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
  overwrite = flags.DEFINE_bool("overwrite", False, "Replace an output folder that holds files.")
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
    atomic.check_output_folder(pathlib.Path(output.value), overwrite.value)
    scans = scan_inputs.find_scans(input_.value, **{k: h.value for k, h in extra.items()})
    loaded = predictor.load_model(model.value, checkpoint.value)
    options = ml_collections.ConfigDict(loaded.options.to_dict())
    for key, holder in knobs.items():
      if holder.value is not None:
        options[key] = holder.value
    loaded = loaded.with_options(options)
    start = time.perf_counter()
    rows, failures = predict_scans(loaded, scans, pathlib.Path(output.value), options,
                                   str(predictor.model_path(model.value)),
                                   probabilities.value, bids.value, overwrite.value)
    seconds = [r["seconds"] for r in rows]
    if seconds:
      where = output.value if jax.process_index() == 0 else f"process 0's {output.value}"
      print(f"{len(rows)} scan(s) into {where}: {np.mean(seconds):.2f} s per scan "
            f"(median {np.median(seconds):.2f} s; {time.perf_counter() - start:.1f} s in all)")
    if failures:
      sys.exit(f"error: {len(failures)} of {len(scans)} scan(s) failed (listed above); the others "
               f"are in {output.value}")

  cli.run_cli(main, logging.ERROR)  # Orbax's notes on read-only checkpoints, TFDS chatter

