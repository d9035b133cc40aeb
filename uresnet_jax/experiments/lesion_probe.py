"""What a model's call on an expert lesion rests on: its brightness, its texture, or what lies
around it.

For each of a subject's largest expert lesions of one class (26-connected), the preprocessed
image is edited in one way at a time and the model run again on the lesion's slices; the lesion's
mean class probabilities and the share of it called each class (the argmax, before any stroke
threshold) are reported per edit. An edit that moves the call names a cue the model uses; one that
leaves it names a cue it ignores. The edits:

- `original`: no edit, the baseline of every other row;
- `brighter_<z>`: the lesion lifted by z (brain z-score units);
- `even_texture`: every lesion voxel darker than the lesion's median raised to it (no faint parts);
- `csf_near_to_tissue`: dark voxels (z < -1, CSF) within `near_mm` of the lesion set to the median
  of lesion-free brain, as if no ventricle or sulcus were beside it;
- `far_to_tissue`: every brain voxel farther than `far_mm` from the lesion set to that median, as
  if the model saw the lesion and its neighbourhood only.

Distances are in mm on the preprocessed grid, so thick slices count as thick.
"""
import dataclasses
import pathlib
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import ndimage

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.evaluation import metrics
from uresnet_jax.inference import lesions

if TYPE_CHECKING:
  from uresnet_jax.inference.predictor import Predictor

CSF_Z = -1.0  # preprocessed voxels darker than this are taken for CSF
COLUMNS = ("subject", "lesion", "voxels", "slices", "edit", "p_wmh", "p_stroke",
           "called_wmh_pct", "called_stroke_pct", "called_none_pct")


@dataclasses.dataclass(frozen=True)
class Settings:
  lift_z: tuple[float, ...] = (1.0, 2.0)
  near_mm: float = 12.0
  far_mm: float = 20.0


def largest_lesions(labels: np.ndarray, label: int, count: int) -> list[np.ndarray]:
  """The `count` largest 26-connected lesions of `label`, largest first, as boolean masks."""
  components, n = ndimage.label(labels == label, structure=lesions.CONNECTIVITY)
  sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
  return [components == i + 1 for i in np.argsort(-sizes, kind="stable")[:count]]


def edited_images(image: np.ndarray, mask: np.ndarray, labels: np.ndarray, lesion: np.ndarray,
                  zooms: Sequence[float], settings: Settings) -> dict[str, np.ndarray]:
  """Each edit's image (X, Y, Z, C; channel 0 is FLAIR), `original` first."""
  flair = image[..., 0]
  tissue = np.median(flair[mask & (labels == labelling.BACKGROUND)])
  distance = ndimage.distance_transform_edt(~lesion, sampling=zooms)

  def with_flair(where: np.ndarray, values) -> np.ndarray:
    out = image.copy()
    out[..., 0][where] = values if np.isscalar(values) else values[where]
    return out

  out = {"original": image}
  for z in settings.lift_z:
    out[f"brighter_{z:g}"] = with_flair(lesion, flair + z)
  out["even_texture"] = with_flair(lesion, np.maximum(flair, np.median(flair[lesion])))
  near_csf = mask & ~lesion & (distance <= settings.near_mm) & (flair < CSF_Z)
  out["csf_near_to_tissue"] = with_flair(near_csf, tissue)
  out["far_to_tissue"] = with_flair(mask & (distance > settings.far_mm), tissue)
  return out


def called(probabilities: np.ndarray, lesion: np.ndarray, label: int) -> dict[str, float]:
  """The lesion's mean class probabilities, and the share of its voxels called each (argmax)."""
  inside = probabilities[lesion]
  return {"p_wmh": float(inside[:, labelling.WMH].mean()),
          "p_stroke": float(inside[:, labelling.STROKE].mean()),
          **metrics.called_pct(lesion * np.uint8(label), probabilities.argmax(-1), label)}


def probe_subject(model: "Predictor", prepared: preprocess.Prepared, label: int, count: int,
                  settings: Settings) -> list[dict]:
  """Rows (COLUMNS) for the `count` largest lesions of `label` in one prepared subject. The model
  runs on each lesion's slices only (it reads one slice at a time)."""
  if prepared.labels is None:
    raise InputError(f"{prepared.subject}: no expert labels to probe")
  rows = []
  for rank, lesion in enumerate(largest_lesions(prepared.labels, label, count)):
    slices = np.flatnonzero(lesion.any(axis=(0, 1)))
    for edit, image in edited_images(prepared.image, prepared.mask, prepared.labels, lesion,
                                     prepared.geometry.grid_zooms, settings).items():
      probabilities = model.grid_probabilities(image[:, :, slices], prepared.mask[:, :, slices])
      rows.append({"subject": prepared.subject, "lesion": rank + 1, "voxels": int(lesion.sum()),
                   "slices": f"{slices[0]}-{slices[-1]}", "edit": edit,
                   **called(probabilities, lesion[:, :, slices], label)})
  return rows


def probe_cohort(model: "Predictor", manifest: str | pathlib.Path, label: int, count: int,
                 settings: Settings, subjects: Sequence[str] = ()) -> list[dict]:
  """`probe_subject` over a manifest's subjects (all, or those named) whose labels hold `label`."""
  records = nifti_io.read_manifest(manifest, require_labels=True)
  unknown = sorted(set(subjects) - {r.subject for r in records})
  if unknown:
    raise InputError(f"{manifest}: no subject {', '.join(unknown)}")
  rows = []
  for record in records:
    if subjects and record.subject not in subjects:
      continue
    prepared = model.load(record)
    if (prepared.labels == label).any():
      rows.extend(probe_subject(model, prepared, label, count, settings))
  if not rows:
    raise InputError(f"{manifest}: no {labelling.CLASS_NAMES[label]} lesion to probe")
  return rows


def format_table(rows: Sequence[dict]) -> str:
  """A markdown table of the rows, one decimal for percentages, three for probabilities."""
  def cell(key: str, value) -> str:
    return f"{value:.3f}" if key.startswith("p_") else (
        f"{value:.1f}" if key.endswith("_pct") else str(value))
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  lines += ["| " + " | ".join(cell(k, row[k]) for k in COLUMNS) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import cli
  from uresnet_jax.inference import predictor
  cohort = flags.DEFINE_string("cohort", None, "Manifest (subjects.csv) of a labelled cohort.")
  subject = flags.DEFINE_list("subject", [], "Probe only these subjects (default: every subject "
                              "with a lesion of the class).")
  lesion_class = flags.DEFINE_enum("class", "stroke", sorted(labelling.CLASSES),
                                   "The expert class whose lesions are probed.")
  count = flags.DEFINE_integer("lesions", 3, "How many of each subject's largest lesions.",
                               lower_bound=1)
  model = flags.DEFINE_string("model", None, "A training workdir or an exported model "
                              "(default: the bundled model).")
  lift = flags.DEFINE_list("lift_z", ["1", "2"], "The brighter_<z> edits' lifts, brain z units.")
  near = flags.DEFINE_float("near_mm", Settings.near_mm, "csf_near_to_tissue's reach, mm.",
                            lower_bound=0)
  far = flags.DEFINE_float("far_mm", Settings.far_mm, "far_to_tissue keeps the brain within "
                           "this many mm of the lesion.", lower_bound=0)
  output = flags.DEFINE_string("output", None, "Also write the rows to this CSV file.")

  def main() -> None:
    if not cohort.value:
      raise InputError("--cohort is required")
    if output.value:
      atomic.check_output_file(pathlib.Path(output.value))
    settings = Settings(lift_z=cli.numbers("lift_z", lift.value), near_mm=near.value,
                        far_mm=far.value)
    loaded = predictor.load_model(model.value)
    rows = probe_cohort(loaded, cohort.value, labelling.CLASSES[lesion_class.value], count.value,
                        settings, subject.value)
    print(format_table(rows), end="")
    if output.value:
      atomic.write_csv(output.value, rows, COLUMNS)

  cli.run_cli(main, logging.WARNING)
