"""What `longitudinal` writes, each file whole or not at all: per subject a folder <subject>/ (each
visit's labels, the change maps, registration.json, the report's slice images), swapped in whole
when the subject is done; then the cohort's changes.csv, longitudinal.csv and report.html.

Change maps (uint8, voxel value 10 * class + event code, `events.EVENTS`):
  <subject>_<followup>_change.nii.gz              the follow-up's lesions on its own grid, each with
                                                  its event (and the lesions gone since baseline,
                                                  where they were, as disappearing or
                                                  unconfirmed_disappearing);
  <subject>_<followup>_space-<baseline>_change.nii.gz   both visits' lesions on the baseline's grid
                                                  (the common space, and the baseline's own grid).
"""
import json
import pathlib
from typing import Sequence

from uresnet_jax.common import atomic, labelling
from uresnet_jax.data import nifti_io
from uresnet_jax.longitudinal import events, report
from uresnet_jax.longitudinal.results import SubjectResult

VOLUME_COLUMNS = ("subject", "visit", "baseline", *(
    f"{c}_{k}" for c in labelling.CLASSES for k in ("ml", "ml_low", "ml_high", "lesions",
                                                     "change_ml", *events.EVENTS)),
    "registration_similarity", "registration_seconds", "seconds", "input")
REGISTRATION_FILE = "registration.json"


def check(output: pathlib.Path, overwrite: bool) -> None:
  """Refuses an output folder that is a file, or holds files and `overwrite` is not given."""
  atomic.check_output_folder(output, overwrite)


def _rows(result: SubjectResult) -> list[dict]:
  """longitudinal.csv's rows of one subject: per visit its volumes, and for a follow-up the change
  from the baseline and its event counts."""
  baseline = result.visits[0]
  pairs = {p.followup: p for p in result.pairs}
  rows = []
  for visit in result.visits:
    pair = pairs.get(visit.visit.name)
    row = {"subject": result.subject.name, "visit": visit.visit.name,
           "baseline": baseline.visit.name, "input": str(visit.visit.record.flair),
           **visit.volumes}
    for cls in labelling.CLASSES:
      row[f"{cls}_change_ml"] = visit.volumes[f"{cls}_ml"] - baseline.volumes[f"{cls}_ml"]
      for event in events.EVENTS:
        row[f"{cls}_{event}"] = (sum(e.cls == cls and e.event == event for e in pair.events)
                                 if pair else "")
    row["registration_similarity"] = pair.rigid.similarity if pair else ""
    row["registration_seconds"] = pair.rigid.seconds if pair else ""
    rows.append(row)
  return rows


def write_subject(output: pathlib.Path, result: SubjectResult) -> dict:
  """A subject's folder, written whole; returns its record: the rows of both tables, the
  registrations and what the report shows."""
  name = result.subject.name
  baseline = result.visits[0]
  by_name = {v.visit.name: v for v in result.visits}
  output.mkdir(parents=True, exist_ok=True)
  with atomic.replacing(output / name) as tmp:
    tmp.mkdir()
    for visit in result.visits:
      nifti_io.save_nifti(tmp / f"{name}_{visit.visit.name}_labels.nii.gz", visit.labels,
                          visit.flair.affine, like=visit.flair)
    figures, changes, registrations = {}, [], {}
    for pair in result.pairs:
      followup = by_name[pair.followup]
      nifti_io.save_nifti(tmp / f"{name}_{pair.followup}_change.nii.gz", pair.followup_map,
                          followup.flair.affine, like=followup.flair)
      nifti_io.save_nifti(
          tmp / f"{name}_{pair.followup}_space-{baseline.visit.name}_change.nii.gz",
          pair.common_map, baseline.flair.affine, like=baseline.flair)
      registrations[pair.followup] = {
          "baseline": baseline.visit.name, "followup_to_baseline": pair.rigid.matrix.tolist(),
          "similarity": pair.rigid.similarity, "seconds": pair.rigid.seconds}
      changes += [e.row(name, baseline.visit.name, pair.followup) for e in pair.events]
      figures[pair.followup] = report.event_figures(tmp / "report" / pair.followup,
                                                    f"{name}/report/{pair.followup}",
                                                    baseline, pair)
    (tmp / REGISTRATION_FILE).write_text(json.dumps(registrations, indent=2))
  return {"subject": name, "volumes": _rows(result), "changes": changes,
          "registration": registrations, "figures": figures, "seconds": result.seconds}


def new_stroke_first(rows: Sequence[dict]) -> list[dict]:
  """changes.csv's rows with every new stroke on top (in the subjects' order), then the rest."""
  return sorted(rows, key=lambda r: not (r["class"] == "stroke" and r["event"] == "new"))


def write_cohort(output: pathlib.Path, records: Sequence[dict], failures: Sequence[str],
                 model_name: str) -> None:
  """changes.csv, longitudinal.csv and report.html of every subject written."""
  atomic.write_csv(output / "changes.csv",
                   new_stroke_first([c for r in records for c in r["changes"]]),
                   events.CHANGE_COLUMNS)
  atomic.write_csv(output / "longitudinal.csv", [v for r in records for v in r["volumes"]],
                   VOLUME_COLUMNS)
  atomic.write_text(output / "report.html", report.render(records, failures, model_name))
