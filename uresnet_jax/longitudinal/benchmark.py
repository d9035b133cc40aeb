"""Scores change between visits like MSSEG-2 (MICCAI 2021), on the longitudinal phantom.

Run: python -m uresnet_jax.longitudinal.benchmark --pairs=10 --output=scores.json
(`uresnet-longitudinal-benchmark`). Writes phantom pairs (phantom/longitudinal.py: new WMH, stable,
new stroke, growth, shrinkage in turn), runs the change command's pipeline on them with the bundled
model (or --model) and scores, against the planted truth:
  - pairs with new lesions: lesion-wise detection F1 of new lesions of at least --min_mm3 (a
    planted lesion is found when a new lesion of its class overlaps it; a called new lesion is right
    when it overlaps a planted one of its class), and the Dice of the new-lesion voxels;
  - planted new strokes found;
  - stable pairs: the number and volume of false new lesions (and on every pair without new ones);
  - growth and shrinkage pairs: the event called where the changed lesion is;
  - registration error (mm) against the planted transform, mean and max over the baseline's brain;
  - seconds per pair: the registration, the whole pair.
The scores go to --output as JSON.
"""
import json
import os
import pathlib
import platform
import sys
import tempfile
from typing import Any, Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage

from uresnet_jax.common.errors import InputError
from uresnet_jax.inference.lesions import CONNECTIVITY
from uresnet_jax.longitudinal import events

_NEW = events.EVENTS["new"]


def new_lesions(change_map: np.ndarray, voxel_mm3: float, min_mm3: float) -> dict[int, np.ndarray]:
  """Per class (1 WMH, 2 stroke), the 26-connected new lesions (code 10 * class + 2) of a change
  map of at least min_mm3, as an id array (0 outside)."""
  out = {}
  for cls in (1, 2):
    ids, count = ndimage.label(np.asarray(change_map) == 10 * cls + _NEW, CONNECTIVITY)
    sizes = np.bincount(ids.ravel(), minlength=count + 1)
    small = np.flatnonzero(sizes * voxel_mm3 < min_mm3)
    ids[np.isin(ids, small)] = 0
    out[cls] = ids
  return out


def score_new(truth_map: np.ndarray, called_map: np.ndarray, voxel_mm3: float,
              min_mm3: float) -> dict[str, Any]:
  """Lesion-wise counts and voxel overlap of new lesions on one follow-up grid (both maps in the
  change-map codes: 10 * class + event)."""
  truth, called = (new_lesions(m, voxel_mm3, min_mm3) for m in (truth_map, called_map))
  out: dict[str, Any] = {}
  for cls, name in ((1, "wmh"), (2, "stroke")):
    t, c = truth[cls], called[cls]
    t_ids, c_ids = set(np.unique(t)) - {0}, set(np.unique(c)) - {0}
    found = set(np.unique(t[c > 0])) - {0}
    right = set(np.unique(c[t > 0])) - {0}
    out[name] = dict(planted=len(t_ids), found=len(found), called=len(c_ids), right=len(right),
                     called_ml=float((c > 0).sum() * voxel_mm3 / 1000))
  t_any = sum((truth[c] > 0) for c in (1, 2))
  c_any = sum((called[c] > 0) for c in (1, 2))
  both = int((t_any & c_any).sum())
  total = int(t_any.sum() + c_any.sum())
  out["dice"] = 2 * both / total if total else None
  return out


def f1(found: int, planted: int, right: int, called: int) -> float | None:
  """Lesion-wise F1 from recall (found / planted) and precision (right / called); 0 when either
  is 0, None (no number) without planted lesions."""
  if planted == 0:
    return None
  recall, precision = found / planted, (right / called if called else 0.0)
  return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def registration_error_mm(recovered: np.ndarray, planted: np.ndarray,
                          baseline_points_mm: np.ndarray) -> tuple[float, float]:
  """Mean and max distance between where the recovered and the planted follow-up -> baseline
  transform take the follow-up's points under the baseline's brain voxels."""
  follow = nib.affines.apply_affine(np.linalg.inv(planted), baseline_points_mm)
  d = np.linalg.norm(nib.affines.apply_affine(recovered, follow) - baseline_points_mm, axis=1)
  return float(d.mean()), float(d.max())


def event_at(change_map: np.ndarray, affine: np.ndarray, event: dict[str, Any]) -> str:
  """The event the change map calls most at a truth event's centroid (within two voxels)."""
  point = [event["centroid_x_mm"], event["centroid_y_mm"], event["centroid_z_mm"]]
  voxel = np.round(nib.affines.apply_affine(np.linalg.inv(affine), point)).astype(int)
  box = tuple(slice(max(v - 2, 0), v + 3) for v in voxel)
  codes = np.asarray(change_map)[box]
  codes = codes[codes // 10 == 1]  # WMH events
  if codes.size == 0:
    return "none"
  names = {code: name for name, code in events.EVENTS.items()}
  return names[int(np.bincount(codes % 10).argmax())]


def score_pair(cohort: pathlib.Path, changes: pathlib.Path, subject: str, record: dict[str, Any],
               min_mm3: float) -> dict[str, Any]:
  """One pair's scores from the phantom's truth and the change command's outputs."""
  truth = json.loads((cohort / "truth" / f"{subject}.json").read_text())
  baseline, followup = truth["visits"]
  truth_new = nib.load(cohort / "truth" / f"{subject}_new.nii.gz")
  called = nib.load(changes / subject / f"{subject}_{followup}_change.nii.gz")
  voxel_mm3 = float(abs(np.linalg.det(truth_new.affine[:3, :3])))
  new = score_new(np.asarray(truth_new.dataobj), np.asarray(called.dataobj), voxel_mm3, min_mm3)
  mask = nib.load(cohort / subject / baseline / "brain_mask.nii.gz")
  points = nib.affines.apply_affine(mask.affine, np.argwhere(np.asarray(mask.dataobj) > 0))
  registered = record["registration"][followup]
  mean, worst = registration_error_mm(np.array(registered["followup_to_baseline"]),
                                      np.array(truth["followup_to_baseline"]), points)
  out = dict(subject=subject, kind=truth["kind"], new=new, registration_error_mm_mean=mean,
             registration_error_mm_max=worst, registration_seconds=registered["seconds"],
             registration_similarity=registered["similarity"], pair_seconds=record["seconds"])
  if truth["kind"] in ("growth", "shrinkage"):
    out["changed_lesion_called"] = event_at(np.asarray(called.dataobj), called.affine,
                                             truth["events"][0])
  return out


def summarise(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """The cohort's numbers: F1 and Dice on pairs with new lesions (counts pooled), false new
  lesions per stable pair and per pair without new lesions, strokes found, registration, time."""
  with_new = [s for s in scores if s["new"]["wmh"]["planted"] + s["new"]["stroke"]["planted"]]
  without = [s for s in scores if s not in with_new]
  stable = [s for s in scores if s["kind"] == "stable"]

  def pooled(group, cls):
    return {k: sum(s["new"][cls][k] for s in group) for k in ("planted", "found", "called",
                                                               "right")}

  def false_new(group):
    if not group:
      return dict(pairs=0, lesions_per_pair=None, ml_per_pair=None)
    count = [s["new"]["wmh"]["called"] + s["new"]["stroke"]["called"] for s in group]
    ml = [s["new"]["wmh"]["called_ml"] + s["new"]["stroke"]["called_ml"] for s in group]
    return dict(pairs=len(group), lesions_per_pair=float(np.mean(count)),
                ml_per_pair=float(np.mean(ml)))

  wmh, stroke = pooled(with_new, "wmh"), pooled(with_new, "stroke")
  both = {k: wmh[k] + stroke[k] for k in wmh}
  changed = [s for s in scores if "changed_lesion_called" in s]
  return dict(
      pairs=len(scores), pairs_with_new_lesions=len(with_new),
      new_lesion_f1=f1(**both), new_wmh_f1=f1(**wmh), new_lesions=both, new_wmh=wmh,
      new_lesion_dice=float(np.mean([s["new"]["dice"] for s in with_new])) if with_new else None,
      new_strokes_planted=stroke["planted"], new_strokes_found=stroke["found"],
      false_new_stable=false_new(stable), false_new_without_new_lesions=false_new(without),
      growth_called_enlarging=sum(s["changed_lesion_called"] == "enlarging" for s in changed
                                  if s["kind"] == "growth"),
      shrinkage_called_shrinking=sum(s["changed_lesion_called"] == "shrinking" for s in changed
                                     if s["kind"] == "shrinkage"),
      growth_pairs=sum(s["kind"] == "growth" for s in scores),
      shrinkage_pairs=sum(s["kind"] == "shrinkage" for s in scores),
      registration_error_mm_mean=float(np.mean([s["registration_error_mm_mean"] for s in scores])),
      registration_error_mm_max=float(np.max([s["registration_error_mm_max"] for s in scores])),
      registration_seconds_mean=float(np.mean([s["registration_seconds"] for s in scores])),
      registration_seconds_max=float(np.max([s["registration_seconds"] for s in scores])),
      pair_seconds_mean=float(np.mean([s["pair_seconds"] for s in scores])),
      pair_seconds_max=float(np.max([s["pair_seconds"] for s in scores])))


def run_benchmark(num_pairs: int, seed: int, workdir: pathlib.Path,
                  model: str | None, min_mm3: float) -> dict[str, Any]:
  """Writes the pairs into workdir/cohort, runs the pipeline into workdir/changes, scores them."""
  from uresnet_jax.inference import predictor
  from uresnet_jax.longitudinal import pipeline, visits
  from uresnet_jax.phantom import config as phantom_config, longitudinal as pairs_phantom

  manifest = pairs_phantom.write_pairs(workdir / "cohort", num_pairs, seed,
                                       phantom_config.get_config(), pairs_phantom.get_config())
  subjects = visits.find_subjects(str(manifest))
  loaded = predictor.load_model(model)
  records, failures = pipeline.run_cohort(subjects, workdir / "changes", loaded, overwrite=True,
                                          model_name=str(predictor.model_path(model)))
  scores = [score_pair(workdir / "cohort", workdir / "changes", r["subject"], r, min_mm3)
            for r in records]
  return dict(command=" ".join(sys.argv), pairs=num_pairs, seed=seed, min_mm3=min_mm3,
              machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
              failures=failures, summary=summarise(scores), per_pair=scores)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import atomic, cli
  pairs = flags.DEFINE_integer("pairs", 10, "Phantom pairs (kinds in turn: new WMH, stable, new "
                               "stroke, growth, shrinkage).")
  output = flags.DEFINE_string("output", "scores.json", "The scores, as JSON.")
  seed = flags.DEFINE_integer("seed", 0, "Phantom seed.")
  workdir = flags.DEFINE_string("workdir", None, "Keep the pairs and the change command's outputs "
                                "here (default: a temporary folder, removed).")
  model = flags.DEFINE_string("model", None, "A training workdir or an exported model folder. "
                              "Default: the bundled release model.")
  min_mm3 = flags.DEFINE_float("min_mm3", 10.0, "New lesions smaller than this are not counted "
                               "(MSSEG-2-style scoring's floor), planted or called.")

  def main() -> None:
    if pairs.value < 1:
      raise InputError(f"--pairs={pairs.value}: must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
      work = pathlib.Path(workdir.value or tmp)
      result = run_benchmark(pairs.value, seed.value, work,
                             model.value, min_mm3.value)
    atomic.write_text(output.value, json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))

  cli.run_cli(main, logging.ERROR)


if __name__ == "__main__":
  run()
