"""The model card of an exported model, written from its run: training data and its ranges, the
held-out fold's and the held-out domains' Dice, intended use and known limits.

Run: python -m uresnet_jax.model_card --workdir=runs/release --artifact=uresnet_jax/release_model
"""
import json
import pathlib

from uresnet_jax.common import atomic
from uresnet_jax.common.errors import InputError
from uresnet_jax.experiments import domains
from uresnet_jax.inference import artifact
from uresnet_jax.model import checkpoints, run_folder
from uresnet_jax.phantom import config as phantom_config

CARD = "MODEL_CARD.md"

_SYNTHETIC = """\
- **Trained on synthetic scans only.** Every training subject is the MNI152 template, deformed and
  re-rendered; the lesions, their labels and the artefacts come from the generator's models. {checked}
  Score a few of your own labelled scans (`python -m uresnet_jax.evaluate`) before trusting
  volumes, and adapt the model to them with `python -m uresnet_jax.finetune`.
"""
_UNCHECKED = "No real scan was used for training or checking, so Dice on real scans is unknown."
_CHECKED = ("No real scan was used for training; {n} real scans checked it (above): a handful, "
            "not a cohort.")

_LIMITS = """\
- **FLAIR only, skull-stripped.** Without a brain mask the brain is taken as `flair > 0`; pass
  `--brain_mask` for scans that are not skull-stripped. Tumours, oedema and other hyperintense
  pathologies were never seen: mask them out with `--exclusion_mask`.
- **2D axial slices.** The network segments each axial slice of the scan as acquired (resampled to
  1 mm in-plane); sagittal or coronal acquisitions are out of its domain.
- **Stroke is the weaker class**: far fewer training patches than WMH and harder to tell from
  WMH. Without a diffusion image the model tells them apart mostly by brightness and place: a
  recent deep infarct beside the ventricles, no brighter than WMH, is called WMH
  (docs/sim_to_real.md). Read its Dice and false stroke above before using stroke volumes. Only
  stroke lesions above the stroke threshold count in `volumes.csv`; the others are listed in
  `lesions.csv` as candidates, and `ambiguous` flags lesions the model hesitates to call WMH or
  stroke.
- **Held-out domains** above show how it behaves outside its training ranges: read a large drop
  as a domain it does not cover.
- **Not a medical device.** For research on cohorts, not for diagnosing a patient.
"""


def _ranges(training: dict) -> list[str]:
  """The phantom knobs this model's training changed from the paper's cohort, as table rows."""
  default = phantom_config.get_config().to_dict()
  default = checkpoints.flat_fields(json.loads(json.dumps(default, default=list)))
  rows = []
  for key, value in checkpoints.flat_fields(training["phantom"]).items():
    if key != "num_workers" and value != default.get(key):
      rows.append(f"| `{key}` | {_show(value)} | {_show(default.get(key))} |")
  return rows


def _show(value) -> str:
  if isinstance(value, (list, tuple)):
    return "(" + ", ".join(_show(v) for v in value) + ")"
  return f"{value:g}" if isinstance(value, float) else str(value)


def _dice(summary: dict, cls: str) -> str:
  s = summary[cls]
  return f"{s['dice_mean']:.3f} ({s['dice_std']:.3f}), n={s['n_subjects']}"


def _false_stroke(summary: dict) -> str:
  f = summary.get("false_stroke")
  if not f or not f["n_subjects"]:
    return "no stroke-free subject"
  return (f"false stroke on the {f['n_subjects']} stroke-free subjects {f['median_ml']:.2f} mL "
          f"median, {f['max_ml']:.2f} mL max")


# Measured outside the project on real skull-stripped FLAIR (docs/sim_to_real.md): min, max.
REAL_EDGE = {"edge_median_z": (-0.92, -0.21), "edge_p90_z": (0.81, 1.30),
             "edge_bright_pct": (2.0, 18.0), "deep_p99_z": (1.30, 1.76),
             "wmh_median_healthy_z": (1.43, 2.43), "wmh_p10_healthy_z": (0.65, 1.52)}


def _edge_rows(domain_result: dict) -> list[str]:
  """Edge-shell statistics per domain (median over subjects), then the real scans' range."""
  keys = list(REAL_EDGE)
  rows = [f"| {name} | " + " | ".join(f"{r['realism'].get(k, float('nan')):.2f}" for k in keys)
          + " |" for name, r in domain_result.items()]
  rows.append("| real scans (8) | " + " | ".join(f"{lo:g} to {hi:g}" for lo, hi in
                                                  REAL_EDGE.values()) + " |")
  return rows


def _threshold(config: dict, calibration: dict | None) -> str:
  threshold = config.get("predict", {}).get("stroke_threshold", 0.0)
  flips = ""
  if config.get("predict", {}).get("tta"):
    calibrated = ", and the threshold was chosen on them: with `--tta=false` it is not calibrated."
    flips = (" The probabilities are averaged over the 4 in-plane flips of each slice (`tta`: 4 "
             "network passes per slice)" + (calibrated if threshold else "."))
  if not threshold:
    return "Stroke threshold: none (every argmax stroke lesion counts)." + flips
  text = (f"Stroke threshold {threshold:g}: a stroke lesion counts as stroke only when its mean "
          "stroke probability reaches it; the others are stroke candidates in `lesions.csv`.")
  text += flips
  if calibration:
    rows = {r["threshold"]: r for r in calibration["table"]}
    chosen, none = rows[calibration["chosen"]], rows[0.0]
    text += (f" Chosen on {calibration['subjects']} calibration subjects (training ranges, seed "
             f"{calibration['seed']}; neither training nor the domains below): stroke Dice "
             f"{none['stroke_dice']:.3f} without it, {chosen['stroke_dice']:.3f} with it; false "
             f"stroke median {none['false_stroke_median_ml']:.2f} → "
             f"{chosen['false_stroke_median_ml']:.2f} mL.")
    fold = calibration.get("held_out_fold")
    if fold:
      text += (f" The held-out fold at this threshold: WMH Dice {_dice(fold, 'wmh')}; stroke Dice "
               f"{_dice(fold, 'stroke')} (a stroke-free subject with no stroke left has none), "
               f"{fold['stroke']['dice_mean_expert']:.3f} on the {fold['stroke']['n_expert']} "
               f"subjects with a stroke; {_false_stroke(fold)}.")
  return text


def _phantom_cohort(config: dict) -> tuple:
  """What decides a phantom cohort's subjects (the worker count does not)."""
  return config["seed"], config["data"]["phantom_subjects"], {
      k: v for k, v in config["phantom"].items() if k != "num_workers"}


def _rounds(pretrained: dict | None, config: dict) -> str:
  """What the run started from, when it did not start from random weights."""
  if not pretrained:
    return ""
  text = (f" This run started from the weights of `{pretrained['model']}` (SHA-256 "
          f"{pretrained['weights_sha256'][:12]}…), not from random ones")
  before = pretrained.get("training_config")
  if before:
    train, sampling = before["train"], before["sampling"]
    same = _phantom_cohort(before) == _phantom_cohort(config)
    start = (f"the weights of `{train['init_from']}`" if train.get("init_from")
             else "random weights")
    text += (f", themselves trained {train['epochs']} epochs from {start} on "
             f"{'the same phantom cohort' if same else 'another cohort'} (learning rate "
             f"{train['learning_rate']:g}, x{train['decay_factor']:g} from "
             f"epoch {train['decay_epoch']}; {sampling['healthy_rate']:g} healthy-tissue patches "
             f"per lesion patch, {sampling.get('bright_share', 0):g} of them on bright tissue)")
  return text + "."


def _healthy_shares(sampling: dict) -> str:
  parts = [f"{sampling[key]:g} of them {what}" for key, what in (
      ("bright_share", f"on healthy tissue brighter than z = {sampling.get('bright_z', 1):g}"),
      ("slice_share", "on a slice drawn uniformly"),
      ("dark_share", f"on healthy tissue darker than z = {sampling.get('dark_z', -1):g}"))
      if sampling.get(key)]
  return f" ({', '.join(parts)})" if parts else ""


def render(manifest: dict, size_mb: float, eval_summary: dict, eval_subjects: int,
           domain_result: dict, train_minutes: float | None, calibration: dict | None = None,
           pretrained: dict | None = None, gate: dict | None = None) -> str:
  """The card's Markdown; `gate`, release_gate's result, adds the real scans' scores."""
  config = manifest["training_config"]
  train, model, data = config["train"], config["model"], config["data"]
  lines = [
      "# uResNet release model: WMH and stroke on FLAIR, trained on a domain-randomised phantom",
      "",
      "## Intended use",
      "Segmenting white-matter hyperintensities (label 1) and stroke lesions (label 2) on "
      "skull-stripped FLAIR brain MRI, and telling them apart, to get WMH and stroke volumes in "
      "research cohorts when you have no labelled scans of your own: "
      "`python -m uresnet_jax.predict --input=SCANS --output=OUT` uses this model by default. "
      "With a handful of labelled scans, `python -m uresnet_jax.finetune --cohort=MANIFEST "
      "--workdir=DIR` adapts it to them.",
      "",
      "## Model",
      f"uResNet (Guerrero et al. 2018): base width {model['base_width']}, "
      f"{'uResNet2' if model['residual_convs'] == 2 else 'one convolution per residual block'}, "
      f"{model['norm']} normalisation; input {', '.join(data['channels'])} resampled to "
      f"{config['preprocess']['inplane_mm']:g} mm in-plane, z-scored in the brain. "
      f"Exported with jax {manifest['jax_version']} for {', '.join(manifest['platforms'])}; "
      f"{size_mb:.1f} MB. Step {manifest['source']['step']} of the run.",
      "",
      "## Training data",
      f"{data['phantom_subjects']} synthetic subjects of the built-in phantom (seed "
      f"{config['seed']}), {data['num_folds']} folds: fold {data['eval_fold']} held out, the "
      f"others trained on. Lesion-centred patches ({config['sampling']['patch_size']}², WMH rate "
      f"{config['sampling']['wmh_rate']:g}, stroke rate {config['sampling']['stroke_rate']:g}, "
      f"shifted by up to {config['sampling']['max_shift']} voxels) plus "
      f"{config['sampling']['healthy_rate']:g} healthy-tissue patches per lesion patch"
      f"{_healthy_shares(config['sampling'])}. "
      f"{train['epochs']} epochs of Adam (learning rate {train['learning_rate']:g}, x"
      f"{train['decay_factor']:g} from epoch {train['decay_epoch']}), batch {train['batch_size']}, "
      f"{train['loss']} loss; "
      + (f"{train_minutes:.0f} min of training on the machine it ran on." if train_minutes
         is not None else "its training time was not recorded.")
      + _rounds(pretrained, config),
      "",
      "The phantom's ranges that differ from the paper's cohort (configs/default.py), each drawn "
      "uniformly per subject:",
      "",
      "| knob | this model | paper's cohort |",
      "|---|---|---|",
      *_ranges(config),
      "",
      "## Results on synthetic scans",
      f"Held-out fold ({eval_subjects} subjects from the "
      f"training ranges): WMH Dice {_dice(eval_summary, 'wmh')}; stroke Dice "
      f"{_dice(eval_summary, 'stroke')} (a stroke-free subject with any stroke counts 0); "
      f"{_false_stroke(eval_summary)}. Scored before the stroke threshold was chosen.",
      "",
      _threshold(config, calibration),
      "",
      f"Held-out domains: {config['domains']['subjects']} new subjects (seed "
      f"{config['domains']['seed']}) per domain, the same subjects in each, every listed knob "
      "outside its training range; `in_domain` is them drawn from the training ranges. Dice mean "
      "(n subjects with the class); false stroke on the stroke-free subjects:",
      "",
      domains.format_table(domain_result),
      "",
      "Realism statistics of each domain cohort (median over subjects; FLAIR z-scored in the "
      "brain; docs/cohorts.md gives real clinical scans as WMH mean z 1.8-2.1, WMH 10th "
      "percentile 1.1-1.3, unlabelled brain 99th percentile 1.3-1.9):",
      "",
      "| domain | WMH mean z | WMH p10 z | brain p99 z | WMH load % | components |",
      "|---|---|---|---|---|---|",
      *(f"| {name} | {r['realism']['wmh_mean_z']:.2f} | {r['realism']['wmh_p10_z']:.2f} | "
        f"{r['realism']['brain_p99_z']:.2f} | {r['realism']['load_pct']:.2f} | "
        f"{r['realism']['components']:.0f} |" for name, r in domain_result.items()),
      "",
      "Edge-shell statistics (docs/sim_to_real.md; median over subjects; z-scored on the brain "
      "without lesions), beside the range over 8 real skull-stripped scans:",
      "",
      "| domain | edge median z | edge p90 z | edge % brighter than WMH p10 | deep p99 z | "
      "WMH median z | WMH p10 z |",
      "|---|---|---|---|---|---|---|",
      *_edge_rows(domain_result),
      "",
      *(_real_section(gate) if gate else []),
      "## Known limits",
      _SYNTHETIC.format(checked=_CHECKED.format(n=len(_real_subjects(gate))) if gate
                        else _UNCHECKED),
      _LIMITS,
  ]
  return "\n".join(lines)


def _real_subjects(gate: dict) -> list[str]:
  return list(dict.fromkeys(r["subject"] for r in gate["candidate"]["rows"]))


def _cell(row: dict | None, key: str, digits: int = 3) -> str:
  if row is None or row["expert_labelled"] != "yes":
    return "not labelled"
  value = row[key]
  return "–" if value != value else f"{value:.{digits}f}"  # NaN: not defined on this scan


def _real_section(gate: dict) -> list[str]:
  """Per real scan: WMH and stroke Dice, where the expert's stroke went, false stroke; then every
  release-gate check, beside the model this one replaced."""
  from uresnet_jax.experiments import release_gate
  rows = {(r["subject"], r["class"]): r for r in gate["candidate"]["rows"]}
  lines = ["## Results on real scans",
           f"{len(_real_subjects(gate))} public real scans, labelled by experts, used to check this "
           "model and never to train it or choose its threshold; scored as a user scores a model "
           "(`predict`, then `evaluate`) by `python -m uresnet_jax.release_gate "
           f"--config={gate.get('config', 'CONFIG')} --real=MANIFESTS --against=PREVIOUS_MODEL`. "
           + gate.get("sources", ""),
           "",
           "| scan | WMH Dice | stroke Dice | expert stroke called stroke / WMH / nothing, % | "
           "false stroke mL |",
           "|---|---|---|---|---|"]
  for subject in _real_subjects(gate):
    wmh, stroke = rows.get((subject, "wmh")), rows.get((subject, "stroke"))
    called = ("–" if stroke is None or stroke["expert_labelled"] != "yes"
              or stroke["expert_volume_ml"] == 0 else
              " / ".join(f"{stroke[k]:.0f}" for k in ("called_stroke_pct", "called_wmh_pct",
                                                      "called_none_pct")))
    lines.append(f"| {subject} | {_cell(wmh, 'dice')} | "
                 f"{_cell(stroke, 'dice') if called != '–' else '–'} | {called} | "
                 f"{_cell(stroke, 'false_stroke_ml', 2)} |")
  lines += ["", "The release gate (`config.release_gate`), this model beside the one it replaced:",
            "", release_gate.format_report(gate["candidate"], gate.get("current"))]
  failed = [c for c in release_gate.checks_of(gate["candidate"]) if not c.passed]
  if failed:
    lines += ["What it still fails: " + "; ".join(
        f"{c.name} on {c.where} {c.value:.2f} (needs {'≥' if c.at_least else '≤'} {c.limit:g})"
        for c in failed) + ".", ""]
  return lines


def write_card(workdir: str | pathlib.Path, artifact_dir: str | pathlib.Path,
               gate: str | pathlib.Path | None = None) -> pathlib.Path:
  """Writes MODEL_CARD.md into the artifact folder, from the run in workdir (and release_gate's
  gate.json, when given)."""
  workdir, artifact_dir = pathlib.Path(workdir), pathlib.Path(artifact_dir)
  manifest_file = artifact_dir / artifact.MANIFEST
  if not manifest_file.is_file():
    raise InputError(f"{manifest_file}: missing (a finished run with held-out domains, exported)")
  summary, domain_result = run_folder.read_eval(workdir), run_folder.read_domains(workdir)
  for name, content in (("an evaluation", summary), (run_folder.DOMAINS, domain_result),
                        (run_folder.CONFIG, run_folder.read_config(workdir))):
    if content is None:
      raise InputError(f"{workdir}: no {name} (a finished run with held-out domains, exported)")
  size_mb = sum(f.stat().st_size for f in artifact_dir.iterdir() if f.name != CARD) / 1e6
  held_out = len(run_folder.eval_subjects(workdir))
  if gate is not None and not pathlib.Path(gate).is_file():
    raise InputError(f"{gate}: missing (release_gate's gate.json)")
  card = render(json.loads(manifest_file.read_text()), size_mb, summary, held_out, domain_result,
                run_folder.training_minutes(workdir), run_folder.read_calibration(workdir),
                _pretrained(workdir), json.loads(pathlib.Path(gate).read_text()) if gate else None)
  atomic.write_text(artifact_dir / CARD, card)
  return artifact_dir / CARD


def _pretrained(workdir: pathlib.Path) -> dict | None:
  """The model a run started from (warm_start's record), with its training config when it is
  still where the run found it."""
  pretrained = run_folder.read_pretrained(workdir)
  if pretrained is None:
    return None
  source = pathlib.Path(pretrained["model"])
  if (source / artifact.MANIFEST).is_file():
    pretrained["training_config"] = json.loads(
        (source / artifact.MANIFEST).read_text())["training_config"]
  elif run_folder.is_run(source):
    pretrained["training_config"] = run_folder.read_config(source)
  return pretrained


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags
  from uresnet_jax.common import cli
  workdir = flags.DEFINE_string("workdir", None, "The training run (with domains.json).")
  artifact_dir = flags.DEFINE_string("artifact", None, "Its exported model folder.")
  gate = flags.DEFINE_string("gate", None, "release_gate's gate.json: the real scans' scores.")

  def main() -> None:
    if not workdir.value or not artifact_dir.value:
      raise InputError("--workdir and --artifact are required")
    print(f"wrote {write_card(workdir.value, artifact_dir.value, gate.value)}")

  cli.run_cli(main)

