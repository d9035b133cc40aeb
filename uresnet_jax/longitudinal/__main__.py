"""Change between visits: new, enlarging, shrinking, disappearing, merged and split lesions, and new
strokes, per lesion, between a baseline scan and its follow-ups.

Run: python -m uresnet_jax.longitudinal --baseline=FILE --followup=FILE[,FILE...] --output=DIR
         [--brain_mask=BASELINE_MASK,FOLLOWUP_MASK] [--model=...]
     python -m uresnet_jax.longitudinal --input=MANIFEST|BIDS_ROOT --output=DIR
(`uresnet-longitudinal`). Each visit is segmented on its own grid, each follow-up registered
rigidly to the baseline and the lesions matched there. DIR gets changes.csv (one row per event, new
strokes first), longitudinal.csv (per visit: volumes, counts, change), report.html and a folder per
subject with the change maps (docs/longitudinal.md). A subject that cannot be compared is reported
in one line and skipped; the exit status is then 1.
"""
import pathlib
import sys


from uresnet_jax.common.errors import InputError


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import cli
  from uresnet_jax.inference import config as predict_config, predictor
  from uresnet_jax.longitudinal import config as longitudinal_config, outputs, pipeline, visits
  baseline = flags.DEFINE_string("baseline", None, "The baseline FLAIR (NIfTI) of one subject.")
  followup = flags.DEFINE_multi_string("followup", None, "Its follow-up FLAIR(s), in visit order: "
                                       "repeat the flag or separate them with commas.")
  input_ = flags.DEFINE_string("input", None, "Instead of --baseline/--followup: a manifest CSV "
                               "(or a folder holding subjects.csv) with subject, visit and flair "
                               "columns (brain_mask, exclusion optional), one row per visit, the "
                               "baseline first; or a BIDS root with sub-*/ses-*/anat/*_FLAIR.nii.gz")
  output = flags.DEFINE_string("output", None, "Folder for the results.")
  masks = {
      "brain_mask": flags.DEFINE_string(
          "brain_mask", None, "Brain masks: with --baseline/--followup, one file per visit, "
          "baseline first, comma-separated (an empty item for a skull-stripped visit); with a "
          "BIDS root, a folder of <scan name>.nii[.gz] as predict's."),
      "exclusion": flags.DEFINE_string(
          "exclusion_mask", None, "Voxels never labelled as lesion (tumour, oedema, cavity): "
          "files per visit or a folder, as --brain_mask."),
  }
  model = flags.DEFINE_string("model", None, "A training workdir or an exported model folder. "
                              "Default: the bundled release model (uresnet_jax/release_model).")
  checkpoint = flags.DEFINE_string("checkpoint", "latest",
                                   "Checkpoint: latest, or a saved step number.")
  overwrite = flags.DEFINE_bool("overwrite", False, "Write into an output folder that already "
                                "holds files: each subject's folder and the tables are replaced.")
  config = config_flags.DEFINE_config_dict(
      "config", longitudinal_config.get_config(), "Registration and event settings, e.g. "
      "--config.events.relative_change=0.3 (uresnet_jax/longitudinal/config.py).")
  with_flags = predict_config.define_flags()

  def main() -> None:
    if not output.value:
      raise InputError("--output is required")
    subjects = visits.find_subjects(
        input_.value, baseline.value, visits.split_list(followup.value),
        {key: [item.strip() for item in holder.value.split(",")]
         for key, holder in masks.items() if holder.value is not None})
    settings = cli.get_config(config)
    outputs.check(pathlib.Path(output.value), overwrite.value)  # before the model loads
    loaded = predictor.load_model(model.value, checkpoint.value)
    options = with_flags(loaded.options)
    records, failures = pipeline.run_cohort(
        subjects, pathlib.Path(output.value), loaded.with_options(options), settings,
        str(predictor.model_path(model.value)), overwrite.value)
    print(f"{len(records)} subject(s) into {output.value}")
    if failures:
      sys.exit(f"error: {len(failures)} of {len(subjects)} subject(s) failed (listed above); the "
               f"others are in {output.value}")

  cli.run_cli(main, logging.ERROR)


if __name__ == "__main__":
  run()
