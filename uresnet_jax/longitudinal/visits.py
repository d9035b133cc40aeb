"""The visits of each subject a `longitudinal` run compares: two or more files of one subject
(--baseline, --followup), a BIDS dataset with several sessions per subject, or a manifest with
`subject` and `visit` columns (one row per visit, baseline first), each visit with its brain mask
where given.

A subject whose visits cannot be compared (one visit only, two scans of one session) is still
returned, with its `problem`: the run reports it in one line and goes on with the others.
"""
import dataclasses
import pathlib
import re
from typing import Mapping, Sequence

from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, scan_inputs


@dataclasses.dataclass(frozen=True)
class Visit:
  name: str  # safe as a file name, unique within its subject
  record: nifti_io.SubjectRecord


@dataclasses.dataclass(frozen=True)
class Subject:
  name: str  # safe as a file name, unique in the run
  visits: tuple[Visit, ...]  # the baseline first
  problem: str = ""  # why its visits cannot be compared; "" when they can


def split_list(values: Sequence[str] | None) -> list[str]:
  """A repeatable flag's values, each possibly comma-separated, as one list."""
  return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def _natural(text: str) -> list:
  """Sorts ses-2 before ses-10."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _checked(name: str, visits: list[Visit]) -> Subject:
  if len(visits) < 2:
    where = visits[0].record.flair if visits else name
    return Subject(name, tuple(visits), f"{name}: {where}: a single visit; nothing to compare it with")
  names = [v.name for v in visits]
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    return Subject(name, tuple(visits), f"{name}: visit {twice[0]} is given twice "
                   f"({', '.join(str(v.record.flair) for v in visits if v.name == twice[0])})")
  return Subject(name, tuple(visits))


def _names(stems: list[str]) -> tuple[str, list[str]]:
  """(subject, visit names) of one subject's files: the `_`-separated words the file names share
  at their start name the subject and the rest each visit (patient7_baseline, patient7_month12:
  patient7; baseline, month12); with none shared the baseline's name is the subject's. Files of
  one name (FLAIR.nii.gz in two folders) are named for their order."""
  words = [stem.split("_") for stem in stems]
  shared = 0
  while all(len(w) > shared + 1 and w[shared] == words[0][shared] for w in words):
    shared += 1
  visits = ["_".join(w[shared:]) for w in words]
  if len(set(visits)) < len(visits):
    visits = ["baseline", *(f"followup{i}" if len(stems) > 2 else "followup"
                            for i in range(1, len(stems)))]
  return ("_".join(words[0][:shared]) if shared else stems[0]), visits


FLAGS = {"brain_mask": "brain_mask", "exclusion": "exclusion_mask"}  # per-visit file -> its flag


def from_files(baseline: str, followups: Sequence[str],
               masks: Mapping[str, Sequence[str]] | None = None) -> list[Subject]:
  """One subject from its baseline file and follow-up files; `masks`: per FLAGS key (brain_mask,
  exclusion), none or one file per visit in the same order (an empty item: none for that visit:
  for a brain mask, a skull-stripped visit)."""
  files = [pathlib.Path(f) for f in [baseline, *followups]]
  for file in files:
    if not file.is_file() or scan_inputs.nifti_stem(file) is None:
      raise InputError(f"{file}: not a NIfTI file (--baseline and --followup take *.nii[.gz])")
  given = {key: list(items) for key, items in (masks or {}).items() if items}
  for key, items in given.items():
    if len(items) != len(files):
      raise InputError(f"--{FLAGS[key]} names {len(items)} file(s) for {len(files)} visit(s): "
                       "give one per visit, baseline first, comma-separated (leave one empty "
                       "for a visit without)")
    for item in items:
      if item and not pathlib.Path(item).is_file():
        raise InputError(f"{item}: --{FLAGS[key]} not found")
  subject, stems = _names([scan_inputs.safe_name(scan_inputs.nifti_stem(f)) for f in files])
  visits = [Visit(stem, nifti_io.SubjectRecord(
      subject=subject, flair=file, labels=None,
      **{key: pathlib.Path(items[i]) if items[i] else None for key, items in given.items()}))
      for i, (stem, file) in enumerate(zip(stems, files))]
  return [_checked(subject, visits)]


def from_manifest(path: pathlib.Path) -> list[Subject]:
  """Subjects from a manifest with subject, visit and flair columns (brain_mask, exclusion, t1,
  wm optional; labels, when present, are not used), visits in the order the manifest lists them."""
  records = nifti_io.read_manifest(path, require_labels=False, key=("subject", "visit"))
  subjects: dict[str, list[Visit]] = {}
  for record in records:
    visit = record.clinical.get("visit", "")
    if not visit:
      raise InputError(f"{path}: subject {record.subject} has a row with an empty visit")
    subjects.setdefault(record.subject, []).append(Visit(scan_inputs.safe_name(visit), record))
  return [_checked(scan_inputs.safe_name(name), visits) for name, visits in subjects.items()]


def from_bids(root: pathlib.Path, folders: Mapping[str, str | None] | None = None
              ) -> list[Subject]:
  """Subjects from a BIDS dataset's sub-*/ses-*/anat/*_FLAIR.nii[.gz], sessions in natural order
  (ses-2 before ses-10); `folders`: per FLAGS key, a folder of <scan name>.nii[.gz], as predict's."""
  scans = scan_inputs.find_scans(root, **(folders or {}))
  subjects: dict[str, list[Visit]] = {}
  for scan in scans:
    parts = scan.bids_path or ()
    session = parts[1] if len(parts) > 2 and parts[1].startswith("ses-") else ""
    subjects.setdefault(parts[0] if parts else scan.name, []).append(
        Visit(session or scan.name, scan.record))
  out = []
  for name, visits in sorted(subjects.items()):
    if any(not v.name.startswith("ses-") for v in visits):
      out.append(Subject(name, tuple(visits), f"{name}: {root}: a scan outside any ses-* folder; "
                         "visits are BIDS sessions"))
      continue
    out.append(_checked(name, sorted(visits, key=lambda v: _natural(v.name))))
  return out


def find_subjects(input_path: str | None = None, baseline: str | None = None,
                  followups: Sequence[str] = (),
                  masks: Mapping[str, Sequence[str]] | None = None) -> list[Subject]:
  """The subjects a command line names: --baseline with --followup (one subject), or --input: a
  manifest (a CSV file or a folder holding subjects.csv) or a BIDS dataset with sessions.
  `masks`: the --brain_mask and --exclusion_mask items (FLAGS keys), one per visit for
  --baseline/--followup, one folder for a BIDS dataset."""
  masks = {key: list(items) for key, items in (masks or {}).items() if items}
  if input_path and (baseline or followups):
    raise InputError("give --input, or --baseline with --followup, not both")
  if baseline or followups:
    if not baseline or not followups:
      raise InputError(f"--{'followup' if baseline else 'baseline'} is required with "
                       f"--{'baseline' if baseline else 'followup'}: there is nothing to compare "
                       "a single visit with")
    return from_files(baseline, followups, masks)
  if not input_path:
    raise InputError("--input (a BIDS dataset with sessions or a manifest with subject and visit "
                     "columns), or --baseline and --followup, is required")
  path = pathlib.Path(input_path)
  manifest = path / nifti_io.MANIFEST_NAME if path.is_dir() else path
  if manifest.is_file():
    if masks:
      raise InputError(f"{path}: with a manifest, give masks as its brain_mask and exclusion "
                       f"columns, not --{FLAGS[next(iter(masks))]}")
    return from_manifest(manifest)
  if scan_inputs.is_bids(path):
    for key, items in masks.items():
      if len(items) > 1:
        raise InputError(f"--{FLAGS[key]} with a BIDS dataset is one folder of "
                         "<scan name>.nii[.gz]")
    return from_bids(path, {key: items[0] for key, items in masks.items()})
  raise InputError(f"{path}: neither a manifest (subject, visit, flair columns) nor a BIDS "
                   "dataset with sub-*/ses-*/anat/*_FLAIR.nii[.gz]")
