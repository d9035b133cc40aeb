"""How a labelled cohort's expert lesions split between WMH and stroke by FLAIR brightness, beside
the ventricles or in the whole brain.

A model that sees FLAIR alone can tell a deep infarct from WMH only by what differs between them
on FLAIR. When, at some brightness and place, a cohort's lesion voxels are nearly all of one class,
a model trained on that cohort calls that class there, whatever a scan's expert says: this table
shows the share a training cohort (the phantom) gives each class, and where a real lesion falls
in it.

Brightness is the preprocessed FLAIR (z over the brain, as the model sees it). The
`periventricular` region is the brain `near_mm` from the ventricles and at least `deep_mm` from
the brain's edge; the ventricles are CSF-dark voxels (z below -1, as the lesion probe takes CSF)
at least `ventricle_deep_mm` from the edge. Distances are in mm on the preprocessed grid. A class
counts only in the subjects whose manifest says their labels mark it (`labelled`).
"""
import dataclasses
import math
import pathlib
from typing import Sequence

import numpy as np
from scipy import ndimage

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.experiments.lesion_probe import CSF_Z

REGIONS = ("periventricular", "brain")
COLUMNS = ("subject", "class", "z_low", "z_high", "voxels")
LESION_CLASSES = ("wmh", "stroke")


@dataclasses.dataclass(frozen=True)
class Settings:
  region: str = "periventricular"
  near_mm: tuple[float, float] = (1.0, 12.0)
  deep_mm: float = 15.0
  ventricle_deep_mm: float = 20.0
  edges: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)


def region_mask(flair: np.ndarray, mask: np.ndarray, zooms: Sequence[float],
                settings: Settings) -> np.ndarray:
  """The voxels counted: the whole brain, or the deep brain beside the ventricles."""
  if settings.region == "brain":
    return mask.copy()
  edge = ndimage.distance_transform_edt(mask, sampling=zooms)
  ventricles = mask & (flair < CSF_Z) & (edge >= settings.ventricle_deep_mm)
  if not ventricles.any():
    return np.zeros_like(mask)
  to_ventricle = ndimage.distance_transform_edt(~ventricles, sampling=zooms)
  low, high = settings.near_mm
  return mask & (edge >= settings.deep_mm) & (to_ventricle >= low) & (to_ventricle <= high)


def bins(edges: Sequence[float]) -> list[tuple[float, float]]:
  """The brightness bins, open at both ends: (-inf, e0), [e0, e1), ..., [en, inf)."""
  bounds = [-math.inf, *edges, math.inf]
  return list(zip(bounds[:-1], bounds[1:]))


def subject_rows(prepared: preprocess.Prepared, labelled: Sequence[str],
                 settings: Settings) -> list[dict]:
  """Rows (COLUMNS): the subject's labelled lesion voxels in the region, per class and bin."""
  if prepared.labels is None:
    raise InputError(f"{prepared.subject}: no expert labels")
  flair = prepared.image[..., 0]
  where = region_mask(flair, prepared.mask, prepared.geometry.grid_zooms, settings)
  rows = []
  for name in LESION_CLASSES:
    if name not in labelled:
      continue
    values = flair[where & (prepared.labels == labelling.CLASSES[name])]
    for low, high in bins(settings.edges):
      rows.append({"subject": prepared.subject, "class": name, "z_low": low, "z_high": high,
                   "voxels": int(((values >= low) & (values < high)).sum())})
  return rows


def cohort_rows(manifest: str | pathlib.Path, settings: Settings) -> list[dict]:
  """`subject_rows` over every subject of a labelled manifest, preprocessed as the model sees it."""
  records = nifti_io.read_manifest(manifest, require_labels=True)
  rows = []
  for record in records:
    volumes = nifti_io.load_subject(record, ("flair",))
    prepared = preprocess.prepare_subject(volumes)
    rows.extend(subject_rows(prepared, record.labelled, settings))
  return rows


def share_table(rows: Sequence[dict]) -> list[dict]:
  """Per bin: the voxels of each class and stroke's share of them, over the subjects whose labels
  mark both classes (None where there is no lesion voxel or no such subject)."""
  both = {s for s in {r["subject"] for r in rows}
          if {r["class"] for r in rows if r["subject"] == s} == set(LESION_CLASSES)}
  table = {}
  for r in rows:
    entry = table.setdefault((r["z_low"], r["z_high"]), {"wmh": 0, "stroke": 0, "both": [0, 0]})
    entry[r["class"]] += r["voxels"]
    if r["subject"] in both:
      entry["both"][LESION_CLASSES.index(r["class"])] += r["voxels"]
  out = []
  for (low, high), entry in sorted(table.items()):
    wmh, stroke = entry["both"]
    out.append({"z_low": low, "z_high": high, "wmh": entry["wmh"], "stroke": entry["stroke"],
                "stroke_share": stroke / (wmh + stroke) if wmh + stroke else None})
  return out


def median_bin(rows: Sequence[dict], subject: str, name: str) -> str:
  """The bin holding the median voxel of one subject's class, or a dash when it has none."""
  counts = [(r["z_low"], r["z_high"], r["voxels"]) for r in rows
            if r["subject"] == subject and r["class"] == name]
  total = sum(c for _, _, c in counts)
  if not counts:
    return "not labelled"
  if not total:
    return "–"
  seen = 0
  for low, high, count in counts:
    seen += count
    if seen * 2 >= total:
      return f"{_z(low)} to {_z(high)} ({total} voxels)"
  raise AssertionError("unreachable: the counts sum to the total")


def _z(value: float) -> str:
  return "-inf" if value == -math.inf else ("inf" if value == math.inf else f"{value:g}")


def format_tables(rows: Sequence[dict]) -> str:
  """The share table, then each subject's median bin per class, as markdown."""
  lines = ["| z | WMH voxels | stroke voxels | stroke share |", "|---|---|---|---|"]
  for r in share_table(rows):
    share = "–" if r["stroke_share"] is None else f"{r['stroke_share']:.3f}"
    lines.append(f"| {_z(r['z_low'])} to {_z(r['z_high'])} | {r['wmh']} | {r['stroke']} | "
                 f"{share} |")
  lines += ["", "| subject | WMH median in | stroke median in |", "|---|---|---|"]
  for subject in dict.fromkeys(r["subject"] for r in rows):
    lines.append(f"| {subject} | {median_bin(rows, subject, 'wmh')} | "
                 f"{median_bin(rows, subject, 'stroke')} |")
  return "\n".join(lines) + "\n"


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import cli
  cohort = flags.DEFINE_string("cohort", None, "Manifest (subjects.csv) of a labelled cohort.")
  region = flags.DEFINE_enum("region", Settings.region, REGIONS, "Where voxels are counted: "
                             "beside the ventricles in the deep brain, or the whole brain.")
  near = flags.DEFINE_list("near_mm", [f"{v:g}" for v in Settings.near_mm], "periventricular: "
                           "the distance from the ventricles, mm, as LOW,HIGH.")
  deep = flags.DEFINE_float("deep_mm", Settings.deep_mm, "periventricular: the least distance "
                            "from the brain's edge, mm.", lower_bound=0)
  edges = flags.DEFINE_list("edges", [f"{v:g}" for v in Settings.edges],
                            "Brightness bin edges, brain z units, increasing.")
  output = flags.DEFINE_string("output", None, "Also write the rows (subject, class, bin, "
                               "voxels) to this CSV file.")

  def main() -> None:
    if not cohort.value:
      raise InputError("--cohort is required")
    if output.value:
      atomic.check_output_file(pathlib.Path(output.value))
    near_mm = cli.numbers("near_mm", near.value)
    if len(near_mm) != 2 or not 0 <= near_mm[0] < near_mm[1]:
      raise InputError(f"--near_mm={','.join(near.value)}: expected LOW,HIGH with 0 <= LOW < HIGH")
    bin_edges = cli.numbers("edges", edges.value)
    if not bin_edges or any(b <= a for a, b in zip(bin_edges, bin_edges[1:])):
      raise InputError(f"--edges={','.join(edges.value)}: expected increasing numbers")
    settings = Settings(region=region.value, near_mm=near_mm, deep_mm=deep.value,
                        edges=bin_edges)
    rows = cohort_rows(cohort.value, settings)
    print(format_tables(rows), end="")
    if output.value:
      atomic.write_csv(output.value, rows, COLUMNS)

  cli.run_cli(main, logging.WARNING)

