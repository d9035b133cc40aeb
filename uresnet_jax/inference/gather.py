"""A multi-process `predict`'s staging: each process's share of the scans in a part folder beside
the output, gathered by process 0 into one output folder that is swapped in whole."""
import json
import pathlib
import shutil
from typing import Sequence

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import scan_inputs
from uresnet_jax.inference import output_folder, run_settings, tables

SHARE_FILE = "rows.json"  # a part's records and failures, written when its share is done


def staging(output: pathlib.Path) -> pathlib.Path:
  return output.parent / f".parts-{output.name}"


def part(output: pathlib.Path, index: int) -> pathlib.Path:
  """Process `index`'s folder for its share."""
  return staging(output) / f"process-{index}"


def write_share(folder: pathlib.Path, records: Sequence[dict], failures: Sequence[str]) -> None:
  atomic.write_text(folder / SHARE_FILE, json.dumps({"records": records, "failures": failures}))


def gather(output: pathlib.Path, count: int, scans: Sequence[scan_inputs.Scan],
           settings: run_settings.RunSettings, run_fingerprint: str
           ) -> tuple[list[dict], list[str]]:
  """Process 0: every process's files and records into one output folder, in the input's order."""
  records, failures = [], []
  with atomic.replacing(output) as tmp:
    tmp.mkdir()
    for k in range(count):
      source = part(output, k)
      if not (source / SHARE_FILE).is_file():
        raise InputError(f"{source}: process {k}'s results are not there; --output must be on a "
                         "filesystem every host shares")
      gathered = json.loads((source / SHARE_FILE).read_text())
      records += gathered["records"]
      failures += gathered["failures"]
      (source / SHARE_FILE).unlink()
      shutil.copytree(source, tmp, dirs_exist_ok=True)
    order = {scan.name: i for i, scan in enumerate(scans)}  # the input's order, as one process
    records.sort(key=lambda r: order[r["volumes"]["subject"]])
    output_folder.write_fingerprint(tmp, run_fingerprint)
    tables.write_tables(tmp, records, failures, settings)
  return [r["volumes"] for r in records], failures
