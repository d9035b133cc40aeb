"""Segment scans that have no expert labels: label maps on each scan's own grid, volumes, lesions, QC.

Run: python -m uresnet_jax.predict --model=WORKDIR|ARTIFACT --input=FILE|FOLDER|MANIFEST|BIDS_ROOT
         --output=DIR [--brain_mask=...] [--exclusion_mask=...] [--tta] [--bids] [--overwrite]

Each scan's files are written into DIR/.partial/<scan> and moved into place when it finishes, then
its record DIR/scans/<scan>.json: a rerun of the same command after a kill or a full disk skips the
scans whose record and files are whole and segments the rest; the cohort files (volumes.csv,
lesions.csv, report.md, report.html) are rebuilt from the records. DIR/run.json names the model and
settings; a rerun with others is refused, and so is a second run while one is writing in DIR. A
scan that cannot be read is reported and skipped; the exit status is then 1.
"""
import pathlib
import shutil
import sys
import time
from typing import Sequence

import ml_collections
import numpy as np
from tqdm import tqdm

from uresnet_jax.common import progress
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import scan_inputs
from uresnet_jax.inference import (config as predict_config, gather, output_folder, predictor,
                                   run_settings, scan_work, tables)


def _segment_all(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                 out: pathlib.Path, settings: run_settings.RunSettings, run_fingerprint: str,
                 single: bool) -> tuple[list[dict], list[str]]:
  """Segments the `scans` that `out` does not already hold whole; returns every scan's record (in
  the input's order) and the failures. A bad scan is skipped with one line unless it is the only
  one (`single`)."""
  records, failures = [], []
  done = {s.name: r for s in scans
          if (r := output_folder.finished(out, s.name, run_fingerprint)) is not None}
  if done:
    print(f"{len(done)} of {len(scans)} scan(s) already done in {out}: skipped")
  with progress.bar(scans, unit="scan", desc="predict") as bar:
    for scan in bar:
      if scan.name in done:
        records.append(done[scan.name])
        continue
      stage = output_folder.staged(out, scan.name)
      try:
        result = scan_work.segment_scan(model, scan, stage, settings)
      except InputError as e:
        shutil.rmtree(stage, ignore_errors=True)
        if single:
          raise
        failures.append(str(e))
        tqdm.write(f"error: {e}; scan skipped", file=sys.stderr)
        continue
      records.append(output_folder.commit(out, stage, result, run_fingerprint))
      tqdm.write(f"{scan.name}: WMH {result.volumes['wmh_ml']:.2f} mL, stroke "
                 f"{result.volumes['stroke_ml']:.2f} mL ({result.volumes['seconds']:.2f} s)")
  output_folder.clear_staging(out)
  return records, failures


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
  settings = run_settings.RunSettings(options, model_name, checksum, probabilities, bids)
  output = pathlib.Path(output)
  run_fingerprint = output_folder.fingerprint(settings, scans)
  if jax.process_count() == 1:
    with output_folder.opened(output, run_fingerprint, overwrite):
      records, failures = _segment_all(model, scans, output, settings, run_fingerprint,
                                       len(scans) == 1)
      tables.write_tables(output, records, failures, settings)
    return [r["volumes"] for r in records], failures
  return _predict_shared(model, scans, output, settings, run_fingerprint, overwrite)


def _predict_shared(model: predictor.Predictor, scans: Sequence[scan_inputs.Scan],
                    output: pathlib.Path, settings: run_settings.RunSettings, run_fingerprint: str,
                    overwrite: bool) -> tuple[list[dict], list[str]]:
  """One process of several: its share into its part, then process 0 gathers every part."""
  import jax
  from uresnet_jax.common import distributed
  index, count = jax.process_index(), jax.process_count()
  output_folder.check(output, overwrite)
  output.parent.mkdir(parents=True, exist_ok=True)
  part = gather.part(output, index)

  def segment_share() -> tuple[list[dict], list[str]]:
    with output_folder.full_disk_told(output, part, resumable=False):
      if part.exists():
        shutil.rmtree(part)
      part.mkdir(parents=True)
      records, failures = _segment_all(model, scans[index::count], part, settings,
                                       run_fingerprint, False)
      gather.write_share(part, records, failures)
    return [r["volumes"] for r in records], failures

  try:
    share = distributed.everywhere("segmenting its share of the scans", segment_share)
    if index != 0:
      return share
    with output_folder.full_disk_told(output, gather.part(output, 0), resumable=False):
      return gather.gather(output, count, scans, settings, run_fingerprint)
  finally:
    if index == 0:  # the chief removes the staging folder, whatever happened
      shutil.rmtree(gather.staging(output), ignore_errors=True)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import cli, distributed
  from uresnet_jax.inference.checksum import model_checksum
  model = flags.DEFINE_string("model", None, "A training workdir or an exported model folder. "
                              "Default: the bundled release model (uresnet_jax/release_model, "
                              "trained on the domain-randomised phantom; see its MODEL_CARD.md).")
  input_ = flags.DEFINE_string("input", None, "A NIfTI scan, a folder of them, a manifest CSV "
                               "(subject, flair[, brain_mask, exclusion, t1, wm]), a BIDS root, "
                               "or a folder of DICOM files (one scan per study; its FLAIR).")
  series = flags.DEFINE_string("series", None, "With DICOM input: the series to segment in each "
                               "study (its SeriesNumber or SeriesInstanceUID) instead of the FLAIR.")
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
  with_flags = predict_config.define_flags()

  join = distributed.define_flags()

  def main() -> None:
    join()  # a multi-process run: each process segments its share of the scans
    for name, holder in (("input", input_), ("output", output)):
      if not holder.value:
        raise InputError(f"--{name} is required")
    scans = scan_inputs.find_scans(input_.value, series.value,
                                   **{k: h.value for k, h in extra.items()})
    loaded = predictor.load_model(model.value, checkpoint.value)
    options = with_flags(loaded.options)
    loaded = loaded.with_options(options)
    start = time.perf_counter()
    path = predictor.model_path(model.value)
    rows, failures = predict_scans(loaded, scans, pathlib.Path(output.value), options, str(path),
                                   probabilities.value, bids.value, overwrite.value,
                                   model_checksum(path, checkpoint.value))
    seconds = [r["seconds"] for r in rows]
    if seconds:
      import jax  # not before: `--help` and refusals start without it
      where = output.value if jax.process_index() == 0 else f"process 0's {output.value}"
      print(f"{len(rows)} scan(s) into {where}: {np.mean(seconds):.2f} s per scan "
            f"(median {np.median(seconds):.2f} s; {time.perf_counter() - start:.1f} s in all)")
    if failures:
      sys.exit(f"error: {len(failures)} of {len(scans)} scan(s) failed (listed above); the others "
               f"are in {output.value}")

  cli.run_cli(main, logging.ERROR)  # Orbax's notes on read-only checkpoints, TFDS chatter

