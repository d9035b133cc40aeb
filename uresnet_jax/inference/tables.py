"""A predict run's cohort files, rebuilt from its scans' records: volumes.csv, lesions.csv, the BIDS
description, volumes.png, report.md and report.html, each written whole or not at all."""
import json
import pathlib
from typing import Sequence

import numpy as np

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.evaluation import html_report, prediction_report
from uresnet_jax.inference import lesions, output_folder, run_settings

VOLUME_COLUMNS = ("subject", "wmh_ml", "wmh_ml_low", "wmh_ml_high", "wmh_lesions", "wmh_pct_icv",
                  "stroke_ml", "stroke_ml_low", "stroke_ml_high", "stroke_lesions",
                  "stroke_pct_icv", *lesions.LOCATION_COLUMNS, "icv_ml", "icv_source",
                  "excluded_ml", "seconds", "input")


def _bids_description(out: pathlib.Path, model: str) -> None:
  from importlib import metadata
  atomic.write_text(out / "dataset_description.json", json.dumps({
      "Name": "uresnet_jax WMH and stroke segmentation", "BIDSVersion": "1.9.0",
      "DatasetType": "derivative",
      "GeneratedBy": [{"Name": "uresnet_jax", "Version": metadata.version("uresnet_jax"),
                       "Description": f"python -m uresnet_jax.predict --model={model}"}],
  }, indent=2))
  atomic.write_csv(out / "desc-uresnet_dseg.tsv",
                   [{"index": i, "name": n} for i, n in enumerate(labelling.CLASS_NAMES)],
                   ("index", "name"), "\t")
  atomic.write_text(out / ".bidsignore", f"qc/\n{output_folder.SCANS_DIR}/\n"
                    f"{output_folder.RUN_FILE}\n*.csv\n*.md\n*.png\n*.html\n")


def write_tables(out: pathlib.Path, records: Sequence[dict], failures: Sequence[str],
                 settings: run_settings.RunSettings) -> None:
  """volumes.csv, lesions.csv, the BIDS description, volumes.png, report.md and report.html of a
  whole run, from the scans' records."""
  if not records:
    raise InputError(f"no scan could be segmented ({len(failures)} failed, listed above)")
  rows = [r["volumes"] for r in records]
  atomic.write_csv(out / "volumes.csv", rows, VOLUME_COLUMNS)
  atomic.write_csv(out / "lesions.csv", [l for r in records for l in r["lesions"]],
                   lesions.LESION_COLUMNS)
  if settings.bids:
    _bids_description(out, settings.model_name)
    atomic.write_csv(out / "volumes.tsv", rows, VOLUME_COLUMNS, "\t")
  with atomic.replacing(out / "volumes.png") as tmp:
    prediction_report.volume_histograms(tmp, {c: np.array([r[f"{c}_ml"] for r in rows])
                                              for c in labelling.CLASSES})
  atomic.write_text(out / "report.md", prediction_report.markdown(
      rows, failures, settings.model_name,
      {r["subject"]: f"qc/{r['subject']}.png" for r in rows}, "volumes.png"))
  atomic.write_text(out / "report.html", html_report.render(
      records, failures, settings.model_name, (out / "volumes.png").read_bytes()))
