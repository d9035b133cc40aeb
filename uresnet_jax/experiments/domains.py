"""Validation without real data: phantom domains held out of training, scored by the trained model.

Each held-out domain is the training phantom with some knobs moved outside their training ranges
(config.domains.held_out; `check_held_out` refuses a domain that overlaps training). Every domain
cohort, and an in-domain cohort drawn with the training ranges, holds the same subjects (same seed,
config.domains.seed, unlike training's), so a drop in Dice from in-domain to a held-out domain is
the domain's doing. domains.json holds Dice per domain and class and the realism statistics of
each cohort.
"""
import pathlib
from typing import Sequence

import ml_collections
import nibabel as nib
import numpy as np

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.inference import predictor
from uresnet_jax.model import run_folder
from uresnet_jax.phantom import knobs
from uresnet_jax.phantom.realism import realism_stats
from uresnet_jax.training import scoring

IN_DOMAIN = "in_domain"
_PROTOCOL_KEYS = ("protocols", "protocol_weights", "random_protocol_probability",
                  "random_thickness_mm")


def domain_phantom(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """config.phantom with the held-out domain's changes (none for the in-domain cohort)."""
  cohort = ml_collections.ConfigDict(config.phantom.to_dict())
  if name == IN_DOMAIN:
    return cohort
  for key, value in config.domains.held_out[name].items():
    if key not in cohort:
      raise InputError(f"config.domains.held_out.{name}.{key}: not a phantom knob "
                       "(uresnet_jax/phantom/config.py lists them)")
    cohort[key] = type(cohort[key])(value) if isinstance(cohort[key], tuple) else value
  knobs.validate_config(cohort)
  return cohort


def _thickness_ranges(cohort: ml_collections.ConfigDict) -> list[tuple[float, float]]:
  """The slice thicknesses a phantom config can draw."""
  ranges = []
  if cohort.random_protocol_probability > 0:
    ranges.append(tuple(cohort.random_thickness_mm))
  if cohort.random_protocol_probability < 1:
    ranges += [(p[2], p[2]) for p, w in zip(cohort.protocols, cohort.protocol_weights) if w > 0]
  return ranges


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> bool:
  return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)


def check_held_out(config: ml_collections.ConfigDict) -> None:
  """Refuses, in one line, a held-out domain that training could draw from: every changed range
  knob must lie outside the training range, and changed protocols outside its slice thicknesses."""
  if config.domains.held_out and config.domains.seed == config.seed:
    raise InputError(f"config.domains.seed={config.domains.seed}: must differ from config.seed, "
                     "or the domain cohorts would hold the training subjects")
  if IN_DOMAIN in config.domains.held_out:
    raise InputError(f"config.domains.held_out.{IN_DOMAIN}: the name is reserved for the "
                     "in-domain cohort")
  train = config.phantom
  for name in config.domains.held_out:
    cohort = domain_phantom(config, name)
    for key in config.domains.held_out[name]:
      where = f"config.domains.held_out.{name}.{key}"
      if key in _PROTOCOL_KEYS:
        if _overlap(_thickness_ranges(cohort), _thickness_ranges(train)):
          raise InputError(f"{where}: its slice thicknesses {_thickness_ranges(cohort)} overlap "
                           f"training's {_thickness_ranges(train)}")
      elif key in knobs.RANGE_KEYS:
        if _overlap([tuple(cohort[key])], [tuple(train[key])]):
          raise InputError(f"{where}={tuple(cohort[key])} overlaps the training range "
                           f"config.phantom.{key}={tuple(train[key])}")
      else:
        raise InputError(f"{where}: only range knobs and protocols can define a held-out domain")


def cohort_dir(config: ml_collections.ConfigDict, name: str,
               cohort: ml_collections.ConfigDict) -> pathlib.Path:
  """Where a domain cohort lives, named by the phantom fingerprint of its subjects (so it is
  reused; a subject depends on (seed, index) only, so a cohort of another size shares them)."""
  return (pathlib.Path(config.domains.root)
          / f"{name}-{phantom.fingerprint(config.domains.seed, cohort)[:12]}")


def _realism(records: Sequence[nifti_io.SubjectRecord]) -> dict[str, float]:
  """The realism statistics, as the median over a cohort's subjects."""
  stats = []
  for r in records:
    flair = nib.load(r.flair)
    stats.append(realism_stats(np.asarray(flair.dataobj), np.asarray(nib.load(r.labels).dataobj),
                               np.asarray(nib.load(r.brain_mask).dataobj),
                               flair.header.get_zooms()[:3]))
  return {key: float(np.nanmedian([s[key] for s in stats])) for key in stats[0]}


def evaluate_domains(config: ml_collections.ConfigDict, model: predictor.Predictor,
                     folder: pathlib.Path) -> dict:
  """Generates (or reuses) every domain cohort, scores the model on it, writes folder's
  domains.json (a run's, or the release gate's for one model)."""
  result = {}
  for name in (IN_DOMAIN, *config.domains.held_out):
    cohort = domain_phantom(config, name)
    where = cohort_dir(config, name, cohort)
    manifest = phantom.write_cohort(where, config.domains.subjects, config.domains.seed, cohort)
    records = nifti_io.read_cohort(manifest)
    rows = scoring.evaluate_subjects(model, scoring.load_eval_subjects(records, model.info))
    changes = {} if name == IN_DOMAIN else config.domains.held_out[name].to_dict()
    result[name] = {"changes": changes, "cohort": str(where), "dice": scoring.summarize(rows),
                    "subjects": rows, "realism": _realism(records)}
  run_folder.write_domains(folder, result)
  return result


def score_run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict | None:
  """The one entry that scores a finished run's model on the held-out domains, as read back from
  its folder (domains.json there, for its model card); None when the config holds out none."""
  if not config.domains.held_out:
    return None
  print("Scoring the held-out phantom domains ...")
  return evaluate_domains(config, predictor.load_model(workdir), pathlib.Path(workdir))


def format_table(result: dict) -> str:
  """Dice per domain (mean over the subjects that have the class) and false stroke (mL on the
  stroke-free subjects) as a Markdown table."""
  lines = ["| domain | changes | WMH Dice | stroke Dice | false stroke mL, median (max) |",
           "|---|---|---|---|---|"]
  for name, r in result.items():
    changes = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "training ranges"
    cells = [f"{r['dice'][c]['dice_mean']:.3f} (n={r['dice'][c]['n_subjects']})"
             for c in ("wmh", "stroke")]
    f = r["dice"].get("false_stroke", {})
    cells.append(f"{f['median_ml']:.2f} ({f['max_ml']:.2f}) (n={f['n_subjects']})"
                 if f.get("n_subjects") else "–")
    lines.append(f"| {name} | {changes} | {' | '.join(cells)} |")
  return "\n".join(lines)
