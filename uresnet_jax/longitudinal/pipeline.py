"""Change between visits, subject by subject: each visit segmented on its own grid by the project's
Predictor (never on a resampled image), each follow-up registered rigidly to the baseline, the
follow-up's lesions moved onto the baseline's grid (nearest voxel) and matched there, events and
change maps; `run_cohort` does every subject and writes the outputs (`outputs.py`).

Every visit is read and checked (skull-stripped or masked) and every follow-up registered before
the model runs, so bad input is told in seconds. A subject that fails is reported in one line and
gets no outputs; the others go on.

From Python (as the command and the benchmark do):
    subjects = visits.find_subjects("cohort/subjects.csv")
    results, failures = pipeline.run_cohort(subjects, pathlib.Path("out"))
"""
import dataclasses
import pathlib
import sys
import time
from typing import Sequence

import ml_collections
import nibabel as nib
import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.inference import lesions, predictor
from uresnet_jax.longitudinal import config as longitudinal_config
from uresnet_jax.longitudinal import events, outputs, registration, visits
from uresnet_jax.longitudinal.results import PairResult, SubjectResult, VisitResult


@dataclasses.dataclass(frozen=True)
class _Loaded:
  visit: visits.Visit
  volumes: nifti_io.SubjectVolumes
  prepared: preprocess.Prepared
  exclusion: np.ndarray | None


def _load(model: predictor.Predictor, subject: str, visit: visits.Visit) -> _Loaded:
  """A visit read and preprocessed as predict does; a scan that is not skull-stripped and has no
  brain mask is refused here, before any model call."""
  record = dataclasses.replace(visit.record, subject=f"{subject}, visit {visit.name}",
                               labels=None)  # a manifest's expert labels are not used here
  volumes = nifti_io.load_subject(record, model.info.channels)
  reference = volumes.channels["flair"]
  exclusion = None
  if record.exclusion is not None:
    excluded = nifti_io.load_nifti(record.exclusion, kind="image", subject=record.subject)
    nifti_io.check_same_grid(reference, excluded, record.subject)
    exclusion = excluded.data > 0
  return _Loaded(visit, volumes, model.prepare(volumes, require_stripped=True), exclusion)


def _brain(volumes: nifti_io.SubjectVolumes) -> np.ndarray:
  given = volumes.brain_mask
  return given.data if given is not None else volumes.channels["flair"].data > 0


def _segment(model: predictor.Predictor, loaded: _Loaded,
             settings: ml_collections.ConfigDict) -> VisitResult:
  """The visit's labels (predict's post-processing), lesions and volumes with their intervals
  (`settings`: the config's events section)."""
  start = time.perf_counter()
  options = model.options
  flair = loaded.volumes.channels["flair"]
  prediction = model.predict(loaded.prepared)
  voxel_ml = labelling.voxel_volume_ml(flair.affine)
  min_voxels = options.min_lesion_mm3 / 1000.0 / voxel_ml
  labels = lesions.postprocess(prediction.labels, loaded.exclusion, min_voxels)
  found = events.visit_lesions(labels, prediction.probabilities, flair.affine,
                               options.interval_low_p, options.interval_high_p,
                               settings.neighbourhood_mm)
  volumes = {}
  for name, label in labelling.CLASSES.items():
    low, high = lesions.volume_interval(prediction.probabilities, labels, label, loaded.exclusion,
                                        min_voxels, options.interval_low_p, options.interval_high_p)
    volumes.update({f"{name}_ml": float((labels == label).sum() * voxel_ml),
                    f"{name}_ml_low": low * voxel_ml, f"{name}_ml_high": high * voxel_ml,
                    f"{name}_lesions": found.classes[name].count})
  volumes["seconds"] = time.perf_counter() - start
  return VisitResult(loaded.visit, flair, _brain(loaded.volumes), labels, found, volumes)


def _register(baseline: _Loaded, followup: _Loaded,
              settings: ml_collections.ConfigDict) -> registration.Rigid:
  def image(loaded: _Loaded) -> nib.Nifti1Image:
    flair = loaded.volumes.channels["flair"]
    return nib.Nifti1Image(flair.data, flair.affine)

  def mask(loaded: _Loaded) -> np.ndarray | None:
    given = loaded.volumes.brain_mask
    return given.data if given is not None else None

  try:
    return registration.register_rigid(image(baseline), image(followup),
                                       baseline_mask=mask(baseline), followup_mask=mask(followup),
                                       settings=settings)
  except registration.RegistrationFailed as e:  # its line names neither visit: say which
    raise registration.RegistrationFailed(
        f"{followup.volumes.subject}: {followup.volumes.channels['flair'].path} against "
        f"{baseline.visit.name} ({baseline.volumes.channels['flair'].path}): {e}") from None


def _ids_on_baseline(lesions_: events.ClassLesions, followup_affine: np.ndarray,
                     matrix: np.ndarray, baseline_affine: np.ndarray,
                     shape: tuple[int, int, int]) -> np.ndarray:
  """A class's follow-up lesion ids on the baseline's grid (nearest voxel); a lesion that no
  baseline voxel centre falls in (smaller than a voxel there) keeps the voxel at its centroid."""
  moved = registration.resample(lesions_.ids, followup_affine, matrix, baseline_affine, shape, 0)
  moved = np.asarray(moved, np.int32)
  lost = np.setdiff1d(np.arange(1, lesions_.count + 1), np.unique(moved))
  to_voxel = np.linalg.inv(baseline_affine) @ matrix @ followup_affine
  for i in lost:
    voxel = np.round(to_voxel[:3, :3] @ lesions_.centroids[i] + to_voxel[:3, 3]).astype(int)
    if np.all(voxel >= 0) and np.all(voxel < shape) and not moved[tuple(voxel)]:
      moved[tuple(voxel)] = i
  return moved


def compare(baseline: VisitResult, followup: VisitResult, rigid: registration.Rigid,
            settings: ml_collections.ConfigDict) -> PairResult:
  """The events and change maps of one follow-up against the baseline (`settings`: the config's
  events section). A cavity neither visit segmented (`events.cavities`) joins the follow-up's
  strokes here, in the events and change maps only (the labels stay the model's)."""
  shape = baseline.labels.shape
  b_affine, f_affine = baseline.flair.affine, followup.flair.affine

  def on_baseline(classes: dict[str, events.ClassLesions]) -> tuple[dict, dict]:
    return ({c: _ids_on_baseline(v, f_affine, rigid.matrix, b_affine, shape)
             for c, v in classes.items()},
            {c: registration.resample(v.wide_mask.astype(np.uint8), f_affine, rigid.matrix,
                                      b_affine, shape, 0) > 0 for c, v in classes.items()})

  moved, wide = on_baseline(followup.lesions.classes)
  image = registration.resample(followup.flair.data, f_affine, rigid.matrix, b_affine, shape, 1)
  followup_brain = registration.resample(followup.brain.astype(np.uint8), f_affine, rigid.matrix,
                                         b_affine, shape, 0) > 0
  lesion = np.any([v.ids > 0 for v in baseline.lesions.classes.values()]
                  + [ids > 0 for ids in moved.values()], axis=0)
  followup_z = events.robust_z(image, followup_brain)
  baseline_z = events.robust_z(baseline.flair.data, baseline.brain)
  voxel_mm = nib.affines.voxel_sizes(b_affine)
  brain = baseline.brain & followup_brain
  brightening = events.against_surroundings(followup_z - baseline_z, lesion, brain, voxel_mm,
                                            settings.surroundings_mm)
  followup_lesions = followup.lesions
  cavity = events.cavities(brightening, baseline_z, followup_z, brain, lesion, voxel_mm, settings)
  if cavity.any():  # onto the follow-up's grid, as strokes of its own
    there = registration.resample(cavity.astype(np.uint8), b_affine, np.linalg.inv(rigid.matrix),
                                  f_affine, followup.labels.shape, 0) > 0
    classes = dict(followup.lesions.classes)
    classes["stroke"] = events.add_lesions(classes["stroke"], there & (followup.labels == 0))
    followup_lesions = dataclasses.replace(followup.lesions, classes=classes)
    stroke_moved, stroke_wide = on_baseline({"stroke": classes["stroke"]})  # WMH as they were
    moved, wide = {**moved, **stroke_moved}, {**wide, **stroke_wide}
  found = events.find_events(baseline.lesions, followup_lesions, moved, wide, rigid.matrix,
                             settings, brightening)
  baseline_map = events.change_map(baseline.lesions, found, "baseline")
  common = events.common_map(baseline_map, events.change_map(moved, found, "followup"))
  followup_map = events.change_map(followup_lesions, found, "followup")
  # the lesions gone at follow-up (confirmed or not), where they were, on the follow-up's grid too
  back = registration.resample(baseline_map, b_affine, np.linalg.inv(rigid.matrix), f_affine,
                               followup.labels.shape, 0)
  gone = (followup_map == 0) & np.isin(np.asarray(back) % 10, [
      events.EVENTS["disappearing"], events.EVENTS["unconfirmed_disappearing"]])
  followup_map = np.where(gone, back, followup_map).astype(np.uint8)
  return PairResult(followup.visit.name, rigid, found, followup_map, common.astype(np.uint8),
                    np.asarray(image, np.float32))


def run_subject(model: predictor.Predictor, subject: visits.Subject,
                config: ml_collections.ConfigDict) -> SubjectResult:
  """One subject's visits segmented, registered and compared; bad input is one InputError."""
  start = time.perf_counter()
  if subject.problem:
    raise InputError(subject.problem)
  loaded = [_load(model, subject.name, v) for v in subject.visits]
  rigids = [_register(loaded[0], f, config.registration) for f in loaded[1:]]
  segmented = [_segment(model, v, config.events) for v in loaded]
  pairs = [compare(segmented[0], f, rigid, config.events)
           for f, rigid in zip(segmented[1:], rigids)]
  return SubjectResult(subject, segmented, pairs, time.perf_counter() - start)


def run_cohort(subjects: Sequence[visits.Subject], output: pathlib.Path,
               model: predictor.Predictor | None = None,
               config: ml_collections.ConfigDict | None = None, model_name: str = "",
               overwrite: bool = False) -> tuple[list[dict], list[str]]:
  """Every subject compared and written into `output` (<subject>/ folders, changes.csv,
  longitudinal.csv, report.html); returns (each written subject's record, failure lines). A
  subject that fails is told on stderr and skipped; when none succeeds, an InputError and no
  output. `model`: a Predictor (None: the bundled model); `config`: longitudinal.config's."""
  output = pathlib.Path(output)
  outputs.check(output, overwrite)
  model = model if model is not None else predictor.load_model(None)
  config = config if config is not None else longitudinal_config.get_config()
  records, failures = [], []
  for subject in subjects:
    try:
      result = run_subject(model, subject, config)
    except InputError as e:
      failures.append(str(e))
      print(f"error: {e}; subject skipped", file=sys.stderr, flush=True)
      continue
    records.append(outputs.write_subject(output, result))
    new = [e for p in result.pairs for e in p.events if e.event == "new"]
    print(f"{subject.name}: {len(result.visits)} visits, "
          f"{sum(e.cls == 'stroke' for e in new)} new stroke(s), "
          f"{sum(e.cls == 'wmh' for e in new)} new WMH ({result.seconds:.1f} s)", flush=True)
  if not records:
    raise InputError(f"no subject could be compared ({len(failures)} failed, listed above)")
  outputs.write_cohort(output, records, failures, model_name)
  return records, failures
