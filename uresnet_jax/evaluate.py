"""Score label maps, or a training run's model, against a cohort's expert labels.

`python -m uresnet_jax.evaluate` or `uresnet-evaluate`; the scoring itself is
`uresnet_jax.evaluation.labelled_cohort`."""
import pathlib

from absl import flags

from uresnet_jax.common import cli
from uresnet_jax.common.errors import InputError
from uresnet_jax.evaluation import labelled_cohort


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  output = flags.DEFINE_string("output", None, "Folder for metrics.csv, summary.json, report.md "
                               "and figures (replaced whole).")
  cohort = flags.DEFINE_string("cohort", None, "Manifest CSV or cohort folder with expert labels.")
  predictions = flags.DEFINE_string("predictions", None,
                                    "Folder of <subject>_labels.nii.gz on the label grid.")
  predictions2 = flags.DEFINE_string("predictions2", None,
                                     "A second method's predictions, for the Wilcoxon comparison.")
  workdir = flags.DEFINE_string("workdir", None, "A training run: score its model (instead of "
                                "--predictions) on --cohort, or on its own held-out fold.")
  checkpoint = flags.DEFINE_string("checkpoint", "latest",
                                 "Checkpoint: latest, or a saved step number.")
  challenge = flags.DEFINE_bool("challenge_mode", False, "Remove expert stroke voxels from the "
                                "prediction before scoring WMH (MICCAI 2017 WMH challenge).")

  def main() -> None:
    if not output.value:
      raise InputError("--output is required")
    if bool(workdir.value) == bool(predictions.value):
      raise InputError("give exactly one of --predictions (with --cohort) or --workdir")
    dirs = labelled_cohort.prediction_dirs([predictions.value, predictions2.value])
    if workdir.value:
      from uresnet_jax.training import held_out  # here: `--help` and refusals start without TFDS
      records, predicted, scored = held_out.predict_with_run(pathlib.Path(workdir.value), cohort.value,
                                                    checkpoint.value)
      summary = labelled_cohort.evaluate_cohort(scored, dirs or None, pathlib.Path(output.value), challenge.value,
                                predicted={"uresnet": predicted}, records=records)
    else:
      if not cohort.value:
        raise InputError("--predictions needs --cohort (the manifest with the expert labels)")
      summary = labelled_cohort.evaluate_cohort(cohort.value, dirs, pathlib.Path(output.value), challenge.value)
    unlabelled = {c for c, s in summary["not_labelled"].items() if len(s) == summary["n_subjects"]}
    for name, method in summary["methods"].items():
      print(f"{name}: " + ", ".join(
          f"{c} not labelled" if c in unlabelled else
          f"{c} Dice {s['metrics']['dice']['mean']:.3f} ({s['metrics']['dice']['std']:.3f})"
          for c, s in method.items()))
    print(f"wrote {output.value}")

  cli.run_cli(main)


if __name__ == "__main__":
  run()
