"""Offline evaluation: label maps scored against a cohort's expert labels with the WMH challenge's
metrics and the paper's cohort statistics, written as metrics.csv, summary.json, report.md, figures.

Run: python -m uresnet_jax.evaluate --workdir=RUN [--cohort=C] --output=DIR
     python -m uresnet_jax.evaluate --cohort=C --predictions=DIR [--predictions2=DIR2] --output=OUT
"""
import csv
import json
import pathlib
import sys
from typing import Callable, Sequence

import numpy as np

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.evaluation import metrics


CALLED_COLUMNS = ("called_wmh_pct", "called_stroke_pct", "called_none_pct")
SUMMARY_METRICS = ("dice", "hd95_mm", "avd_pct", "lesion_recall", "lesion_f1") + CALLED_COLUMNS
METRICS_COLUMNS = ("subject", "class", "expert_labelled", "dice", "hd95_mm", "avd_pct",
                   "lesion_recall", "lesion_f1", "volume_ml", "expert_volume_ml", "volume_pct_icv",
                   "expert_volume_pct_icv", "false_stroke_ml", "false_stroke_components",
                   *CALLED_COLUMNS)
PREDICTION_SUFFIX = "_labels.nii.gz"
WILCOXON_METRICS = ("dice", "hd95_mm", "avd_pct", "lesion_f1")


def metric_rows(subject: str, truth: np.ndarray, prediction: np.ndarray, affine: np.ndarray,
                icv_ml: float | None, challenge_mode: bool = False,
                labelled: Sequence[str] = tuple(labelling.CLASSES)) -> list[dict]:
  """One metrics.csv row per class for a subject (columns METRICS_COLUMNS); a class its expert
  labels do not mark (not in `labelled`) has NaN for every number: never a Dice of 0."""
  rows = []
  for name, m in metrics.subject_metrics(truth, prediction, affine, challenge_mode).items():
    if name not in labelled:
      rows.append({"subject": subject, "class": name, "expert_labelled": "no",
                   **{k: float("nan") for k in METRICS_COLUMNS[3:]}})
      continue
    row = {"subject": subject, "class": name, "expert_labelled": "yes",
           **{k: m[k] for k in (*METRICS_COLUMNS[3:10], *CALLED_COLUMNS)}}
    row["volume_pct_icv"] = labelling.percent_of_icv(m["volume_ml"], icv_ml)
    row["expert_volume_pct_icv"] = labelling.percent_of_icv(m["expert_volume_ml"], icv_ml)
    nan = {"false_stroke_ml": float("nan"), "false_stroke_components": float("nan")}
    row.update(metrics.false_stroke(truth, prediction, affine) if name == "stroke" else nan)
    rows.append(row)
  return rows


def _column(rows: Sequence[dict], cls: str, key: str) -> np.ndarray:
  return np.array([r[key] for r in rows if r["class"] == cls], float)


def cohort_summary(methods: dict[str, list[dict]], clinical: dict[str, np.ndarray],
                   subjects: Sequence[str], use_icv: bool) -> dict:
  """Cohort statistics of every method's metric rows (all over the same `subjects`, in order) and
  of the expert volumes: metric mean (std), volume agreement, Bland–Altman, clinical correlations,
  WMH risk factors (log volume, adjusted for sex when known) and, for two methods, Wilcoxon tests;
  each over the subjects where it is defined; and per class the subjects whose expert leaves it
  unlabelled (`not_labelled`)."""
  from uresnet_jax.evaluation import cohort_stats  # statsmodels is only needed here
  suffix = "pct_icv" if use_icv else "ml"
  male = clinical.get("male")
  factors = {k: clinical[k] for k in cohort_stats.RISK_FACTORS if k in clinical}
  out = {"volume_unit": "% ICV" if use_icv else "mL", "n_subjects": len(subjects), "methods": {},
         "expert": {}, "sex_adjusted": male is not None}
  labelled = {(r["subject"], r["class"]): r["expert_labelled"]
              for r in next(iter(methods.values()))}  # the same expert labels for every method
  out["not_labelled"] = {cls: [s for s in subjects if labelled[(s, cls)] == "no"]
                         for cls in labelling.CLASSES}

  def volume_stats(volumes: np.ndarray, cls: str) -> dict:
    s = {"clinical": cohort_stats.clinical_correlations(volumes, clinical)}
    if cls == "wmh" and factors:
      s["risk_factors"] = cohort_stats.risk_factor_associations(volumes, factors, male, log=True)
    return s

  for name, rows in methods.items():
    by_row = {(r["subject"], r["class"]): r for r in rows}
    ordered = [by_row[(s, c)] for s in subjects for c in labelling.CLASSES]
    out["methods"][name] = {}
    for cls in labelling.CLASSES:
      auto = _column(ordered, cls, f"volume_{suffix}")
      expert = _column(ordered, cls, f"expert_volume_{suffix}")
      out["methods"][name][cls] = {
          "metrics": {k: cohort_stats.mean_std(_column(ordered, cls, k)) for k in SUMMARY_METRICS},
          "agreement": cohort_stats.volume_agreement(auto, expert),
          "bland_altman": cohort_stats.bland_altman(auto, expert),
          **volume_stats(auto, cls),
      }
      out["expert"][cls] = volume_stats(expert, cls)
    false_ml = _column(ordered, "stroke", "false_stroke_ml")
    false_ml = false_ml[np.isfinite(false_ml)]
    out["methods"][name]["stroke"]["false_stroke"] = {  # on those labelled free of stroke
        "n": int(false_ml.size),
        "median_ml": float(np.median(false_ml)) if false_ml.size else float("nan"),
        "max_ml": float(false_ml.max()) if false_ml.size else float("nan")}
  if len(methods) == 2:
    (first, a), (second, b) = methods.items()
    key = lambda rows: sorted((r for r in rows if r["subject"] in set(subjects)),
                              key=lambda r: (r["subject"], r["class"]))
    a, b = key(a), key(b)
    out["comparison"] = {"methods": [first, second], "tests": {
        cls: {k: cohort_stats.wilcoxon_paired(_column(a, cls, k), _column(b, cls, k))
              for k in WILCOXON_METRICS} for cls in labelling.CLASSES}}
  return out


def _icv_ml(record: nifti_io.SubjectRecord, messages: list[str]) -> float | None:
  """ICV from the manifest's icv_ml column, else the brain-mask volume, else None (with a message)."""
  raw = record.clinical.get("icv_ml", "").strip()
  if raw:
    value = labelling.manifest_icv_ml(raw)
    if value is not None:
      return value
    messages.append(f"{record.subject}: icv_ml {raw!r} is not a positive number; ignored")
  if record.brain_mask is not None:
    try:
      mask = nifti_io.load_nifti(record.brain_mask, kind="mask", subject=record.subject)
      return float(mask.data.sum()) * labelling.voxel_volume_ml(mask.affine)
    except InputError as e:
      messages.append(str(e))
  return None


def _check_labelled(record: nifti_io.SubjectRecord, truth: np.ndarray) -> None:
  """Refuses expert labels that mark a class the manifest says they leave unlabelled: an ISLES
  stroke mask kept as 0/1 would be scored as WMH, and its stroke as missing."""
  for name, code in labelling.CLASSES.items():
    if name not in record.labelled and (truth == code).any():
      raise InputError(f"{record.subject}: {record.labels}: the labels hold {name} (label {code}) "
                       f"but its manifest row says labelled={'+'.join(record.labelled)} "
                       f"(labels: 1 WMH, 2 stroke)")


def _load_prediction(path: pathlib.Path, truth: nifti_io.Volume, subject: str) -> np.ndarray:
  volume = nifti_io.load_nifti(path, kind="labels", subject=subject)
  nifti_io.check_same_grid(truth, volume, subject)
  return volume.data


def _write_outputs(output: pathlib.Path, methods: dict[str, list[dict]], summary: dict,
                   scatter: dict, examples: list,
                   review: Callable[[pathlib.Path], list[dict]]) -> None:
  """Everything into a temporary folder beside `output`, then swapped in whole."""
  from uresnet_jax.evaluation import report
  output.parent.mkdir(parents=True, exist_ok=True)
  atomic.check_output_folder(output)
  with atomic.replacing(output) as tmp:
    tmp.mkdir()
    first = next(iter(methods))
    for name, rows in methods.items():
      file = "metrics.csv" if name == first else f"metrics_{name}.csv"
      with open(tmp / file, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    figures = []
    unit = summary["volume_unit"]
    for name, volumes in scatter.items():
      stats = summary["methods"][name]
      tag = "" if name == first else f"_{name}"
      report.volume_scatter(tmp / f"volumes{tag}.png", volumes,
                            {c: s["agreement"] for c, s in stats.items()}, unit, name)
      report.bland_altman_plot(tmp / f"bland_altman{tag}.png", volumes,
                               {c: s["bland_altman"] for c, s in stats.items()}, unit, name)
      figures += [f"volumes{tag}.png", f"bland_altman{tag}.png"]
    if examples:
      report.overlays(tmp / "overlays.png", examples)
      figures.append("overlays.png")
    summary = {**summary, "figures": figures}
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    (tmp / "report.md").write_text(report.markdown(summary))
    from uresnet_jax.evaluation import html_report
    (tmp / "report.html").write_text(html_report.render(
        review(tmp), [m for m in summary["messages"] if m.endswith("skipped")],
        f"{first} (model, first overlay) beside the expert labels (second)",
        (tmp / "volumes.png").read_bytes()))


def prediction_dirs(flag_values: Sequence[str | None]) -> dict[str, pathlib.Path]:
  dirs = {}
  for value in flag_values:
    if value is None:
      continue
    path = pathlib.Path(value)
    if not path.is_dir():
      raise InputError(f"{path}: predictions folder not found")
    name = path.resolve().name or "predictions"
    while name in dirs:
      name += "_2"
    dirs[name] = path
  return dirs


def evaluate_cohort(cohort: str, prediction_dirs: dict[str, pathlib.Path] | None,
                    output: pathlib.Path, challenge_mode: bool = False,
                    predicted: dict[str, dict[str, np.ndarray]] | None = None,
                    records: Sequence[nifti_io.SubjectRecord] | None = None,
                    num_overlays: int = 3) -> dict:
  """Scores each method's predictions (files `<subject>_labels.nii.gz` in each folder of
  `prediction_dirs`, or arrays in `predicted`: method -> subject -> labels) against the cohort's
  expert labels and writes metrics.csv, summary.json, report.md and the figures to `output`.
  Unusable subjects are skipped with a one-line message; returns the summary."""
  records = list(records) if records is not None else nifti_io.read_cohort(cohort)
  messages: list[str] = []
  sources: dict[str, Callable[[nifti_io.SubjectRecord, nifti_io.Volume], np.ndarray]] = {}
  for name, folder in (prediction_dirs or {}).items():
    known = {r.subject for r in records}
    for extra in sorted(folder.glob(f"*{PREDICTION_SUFFIX}")):
      if extra.name[:-len(PREDICTION_SUFFIX)] not in known:
        messages.append(f"{extra}: matches no subject of the cohort; ignored")
    sources[name] = lambda r, t, folder=folder: _load_prediction(
        folder / f"{r.subject}{PREDICTION_SUFFIX}", t, r.subject)
  for name, arrays in (predicted or {}).items():
    sources[name] = lambda r, t, arrays=arrays: arrays[r.subject]
  methods = {name: [] for name in sources}
  scored, icvs, kept, affines = [], {}, {}, {}
  for record in records:
    if record.labels is None:
      messages.append(f"{record.subject}: no expert labels in the cohort; skipped")
      continue
    try:
      truth = nifti_io.load_nifti(record.labels, kind="labels", subject=record.subject)
      _check_labelled(record, truth.data)
      predictions = {name: load(record, truth) for name, load in sources.items()}
    except (InputError, KeyError) as e:
      text = str(e) if isinstance(e, InputError) else f"{record.subject}: no prediction"
      messages.append(f"{text}; subject skipped")
      continue
    icv = _icv_ml(record, messages)
    icvs[record.subject] = icv
    for name, prediction in predictions.items():
      methods[name] += metric_rows(record.subject, truth.data, prediction, truth.affine, icv,
                                   challenge_mode, record.labelled)
    scored.append(record)
    kept[record.subject] = (truth.data, next(iter(predictions.values())))
    affines[record.subject] = truth.affine
  if not scored:
    for m in messages:
      print(f"warning: {m}", file=sys.stderr)
    raise InputError(f"{cohort}: no subject could be scored ({len(messages)} problem(s) above)")
  use_icv = all(v is not None for v in icvs.values())
  if not use_icv:
    missing = sorted(s for s, v in icvs.items() if v is None)
    messages.append(f"no ICV (icv_ml column or brain_mask) for {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}: volumes compared in mL, not % ICV")
  from uresnet_jax.evaluation import cohort_stats
  clinical = cohort_stats.clinical_table([r.clinical for r in scored])
  absent = [c for c in ("fazekas_deep", "fazekas_pv", "mmse", *cohort_stats.RISK_FACTORS)
            if c not in clinical]
  if absent:
    messages.append(f"clinical column(s) {', '.join(absent)} absent or empty: those analyses skipped")
  if "male" not in clinical and any(c in clinical for c in cohort_stats.RISK_FACTORS):
    messages.append("no sex column: risk factors not adjusted for sex")
  summary = cohort_summary(methods, clinical, [r.subject for r in scored], use_icv)
  summary.update(challenge_mode=challenge_mode, messages=messages,
                 subjects=[r.subject for r in scored])
  suffix = "pct_icv" if use_icv else "ml"
  scatter = {name: {c: (_column(rows, c, f"volume_{suffix}"), _column(rows, c, f"expert_volume_{suffix}"))
                    for c in labelling.CLASSES} for name, rows in methods.items()}
  examples = _overlay_examples(scored, kept, num_overlays)
  first = next(iter(methods.values()))
  _write_outputs(pathlib.Path(output), methods, summary, scatter, examples,
                 lambda folder: _review_records(folder, scored, kept, affines, first, icvs))
  for m in messages:
    print(f"warning: {m}", file=sys.stderr)
  return summary


def _review_records(folder: pathlib.Path, records: Sequence[nifti_io.SubjectRecord], kept: dict,
                    affines: dict, rows: Sequence[dict], icvs: dict) -> list[dict]:
  """report.html's scan records: the first method's labels beside the expert's on the FLAIR (blank
  when unreadable), slice images written to folder/qc/<subject>/, volumes and Dice per class (the
  model's volume even where the expert leaves the class unlabelled)."""
  from scipy import ndimage
  from uresnet_jax.data import preprocess
  from uresnet_jax.evaluation import html_report
  connectivity = np.ones((3, 3, 3), bool)  # 26-connected, as inference.lesions counts lesions
  out = []
  for record in records:
    truth, prediction = kept[record.subject]
    affine = affines[record.subject]
    try:
      image = nifti_io.load_nifti(record.flair, kind="image", subject=record.subject).data
    except InputError:
      image = None
    if image is None or image.shape != truth.shape:
      image = np.zeros(truth.shape, np.float32)
    canonical_affine = preprocess.to_canonical(truth, affine)[1]
    image, truth, prediction, brain = (preprocess.to_canonical(a, affine)[0] for a in (
        image, truth, prediction, image > 0 if image.any() else np.ones(truth.shape, bool)))
    slices = html_report.slice_images(folder / "qc" / record.subject, image, prediction, brain, 4,
                                      expert=truth)
    volumes = {"subject": record.subject, "icv_ml": icvs.get(record.subject),
               "icv_source": "manifest or brain mask", "input": str(record.flair)}
    for row in rows:
      if row["subject"] == record.subject:
        c = row["class"]
        ml = labelling.volume_ml(prediction, labelling.CLASSES[c], canonical_affine)
        volumes.update({f"{c}_ml": ml, f"expert_{c}_ml": row["expert_volume_ml"],
                        f"{c}_dice": row["dice"],
                        f"{c}_pct_icv": labelling.percent_of_icv(ml, icvs.get(record.subject)),
                        f"{c}_lesions": ndimage.label(prediction == labelling.CLASSES[c],
                                                      connectivity)[1]})
    out.append({"volumes": volumes, "lesions": [], "review": {
        "slices": [{**s, **{k: f"qc/{record.subject}/{s[k]}"
                            for k in ("image", "overlay", "expert")}} for s in slices],
        "lesion_slices": {}, "warnings": html_report.scan_warnings(brain, canonical_affine, 0.0)}})
  return out


def _overlay_examples(records: Sequence[nifti_io.SubjectRecord], kept: dict, count: int) -> list:
  """Up to `count` subjects with the most expert stroke (then WMH), with their FLAIR if readable."""
  order = sorted(records, key=lambda r: (-int((kept[r.subject][0] == labelling.STROKE).sum()),
                                         -int((kept[r.subject][0] == labelling.WMH).sum())))
  examples = []
  for record in order[:count]:
    try:
      image = nifti_io.load_nifti(record.flair, kind="image", subject=record.subject).data
      if image.shape != kept[record.subject][0].shape:
        image = None
    except InputError:
      image = None
    examples.append((record.subject, image, *kept[record.subject]))
  return examples
