"""Configs: the paper's settings, and its ablations as variants that change exactly their setting."""

import jax
import numpy as np
import pytest

from configs import default, variants
from uresnet_jax.experiments import variants as variant_table
from conftest import run_module
from uresnet_jax.common.errors import InputError
from uresnet_jax.model import uresnet


def _param_count(config, channels: int) -> int:
  model = uresnet.create_model(config.model)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), np.zeros((1, 8, 8, channels)),
                                             train=False))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def _flat(config) -> dict:
  return {f"{s}.{k}": (list(v) if isinstance(v, tuple) else v)
          for s, section in config.to_dict().items() if isinstance(section, dict)
          for k, v in section.items()}


def _changed(before: dict, after: dict) -> set:
  """The settings (of _flat's) whose value differs between two configs."""
  return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def test_each_variant_changes_only_its_settings():
  base = _flat(default.get_config())
  for name, settings in variant_table.VARIANTS.items():
    config = _flat(variants.get_config(name))
    changed = _changed(base, config)
    assert changed <= set(settings), name
    for key, value in settings.items():
      assert config[key] == (list(value) if isinstance(value, tuple) else value), (name, key)


@pytest.mark.parametrize("name, channels, params", [
    ("uresnet", 1, 1_079_427),  # the paper's count
    ("f_t1", 2, 1_079_427 + 32 * 10),  # one more input channel: 3x3 + 1x1 weights into e1's 32
    ("f_t1_wm", 3, 1_079_427 + 2 * 32 * 10),
])
def test_variant_models_have_the_expected_parameters(name, channels, params):
  config = variants.get_config(name)
  assert len(config.data.channels) == channels
  assert _param_count(config, channels) == params


def test_uresnet2_noc_and_bases():
  assert _param_count(variants.get_config("uresnet2"), 1) > 1_079_427
  assert variants.get_config("noc").sampling.max_shift == 0
  demo = variants.get_config("noc,demo")
  assert demo.sampling.max_shift == 0 and demo.model.base_width == 16
  with pytest.raises(InputError, match="unknown variant"):
    variants.get_config("nocc")
  with pytest.raises(ValueError, match="unknown base"):
    variants.get_config("noc,paper")


@pytest.mark.slow
def test_unknown_variant_on_the_command_line_is_one_line(tmp_path):
  result = run_module("main", "--config=configs/variants.py:nocc", f"--workdir={tmp_path}",
                      timeout=300)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "unknown variant 'nocc'" in result.stderr.strip().splitlines()[-1]


def test_release_round2_continues_round1_with_slice_uniform_patches_and_predicts_with_flips():
  from configs import release, release_round2
  first, second = _flat(release.get_config()), _flat(release_round2.get_config())
  changed = _changed(first, second)
  assert changed == {"train.init_from", "train.epochs", "train.decay_epoch", "train.eval_every",
                     "train.learning_rate", "sampling.healthy_rate", "sampling.bright_share",
                     "sampling.slice_share", "predict.tta"}
  assert second["train.init_from"] == "runs/release" and second["sampling.slice_share"] > 0
  assert second["predict.tta"]  # its stroke threshold is calibrated on flip-averaged probabilities
  # as many bright-tissue patches per lesion patch as round 1, at round 1's last learning rate
  assert np.isclose(second["sampling.healthy_rate"] * second["sampling.bright_share"],
                    first["sampling.healthy_rate"] * first["sampling.bright_share"])
  assert np.isclose(second["train.learning_rate"],
                    first["train.learning_rate"] * first["train.decay_factor"])
  assert release_round2.get_config("tiny").data.cohort == release.get_config("tiny").data.cohort


def test_release_round4_continues_round3_on_a_phantom_with_per_voxel_noise():
  from configs import release_round3, release_round4
  third, fourth = _flat(release_round3.get_config()), _flat(release_round4.get_config())
  changed = _changed(third, fourth)
  assert changed == {"train.init_from", "data.cohort", "phantom.voxel_noise"}
  assert fourth["train.init_from"] == "runs/release_round3"
  assert third["phantom.voxel_noise"] == [0.0, 0.0] and 0 == fourth["phantom.voxel_noise"][0]
  assert fourth["phantom.voxel_noise"][1] > 0
  tiny = release_round4.get_config("tiny")
  assert tiny.data.cohort != release_round3.get_config("tiny").data.cohort  # a cohort of its own


def test_release_round5_continues_round4_on_its_cohort_with_dark_tissue_patches():
  from configs import release_round4, release_round5
  fourth, fifth = _flat(release_round4.get_config()), _flat(release_round5.get_config())
  changed = _changed(fourth, fifth)
  assert changed == {"train.init_from", "train.epochs", "train.decay_epoch", "train.eval_every",
                     "train.learning_rate", "sampling.bright_share", "sampling.slice_share",
                     "sampling.dark_share"}
  assert fifth["train.init_from"] == "runs/release_round4"
  assert fourth["sampling.dark_share"] == 0 < fifth["sampling.dark_share"]
  assert np.isclose(fifth["sampling.bright_share"] + fifth["sampling.slice_share"]
                    + fifth["sampling.dark_share"], 0.9)


def test_release_round6_continues_round5_on_a_phantom_with_sulci():
  from configs import release_round5, release_round6
  fifth, sixth = _flat(release_round5.get_config()), _flat(release_round6.get_config())
  changed = _changed(fifth, sixth)
  assert changed == {"train.init_from", "data.cohort", "phantom.sulci_depth_mm",
                     "phantom.sulci_width_mm"}
  assert sixth["train.init_from"] == "runs/release_round5"
  assert fifth["phantom.sulci_depth_mm"] == [0.0, 0.0] and sixth["phantom.sulci_depth_mm"][1] > 0
  tiny = release_round6.get_config("tiny")
  assert tiny.data.cohort != release_round5.get_config("tiny").data.cohort  # a cohort of its own


def test_release_round7_continues_round6_with_grainy_enlarged_ventricles_and_heavy_pv_wmh():
  from configs import release_round6, release_round7
  sixth, seventh = _flat(release_round6.get_config()), _flat(release_round7.get_config())
  changed = _changed(sixth, seventh)
  assert changed == {"train.init_from", "data.cohort", "phantom.ventricle_enlargement_mm",
                     "phantom.wmh_model", "phantom.pv_min_fraction",
                     "phantom.pv_decay_mm", "phantom.pv_cap_weight", "phantom.voxel_noise"}
  assert seventh["train.init_from"] == "runs/release_round6"
  assert seventh["phantom.voxel_noise"][0] > 0  # every subject grainy
  assert seventh["phantom.wmh_model"]["intercept"] > sixth["phantom.wmh_model"]["intercept"]
  held_out = release_round7.get_config().domains.held_out.large_ventricles  # stays held out
  assert seventh["phantom.ventricle_enlargement_mm"][1] < held_out["ventricle_enlargement_mm"][0]


def test_release_round8_continues_round7_with_csf_as_dark_as_a_3d_flairs():
  from configs import release_round7, release_round8
  seventh, eighth = _flat(release_round7.get_config()), _flat(release_round8.get_config())
  changed = _changed(seventh, eighth)
  assert changed == {"train.init_from", "data.cohort", "phantom.flair_csf",
                     "phantom.sulcal_csf", "phantom.csf_flow"}
  assert eighth["train.init_from"] == "runs/release_round7"
  assert eighth["phantom.flair_csf"][0] < seventh["phantom.flair_csf"][0]
  assert eighth["phantom.sulcal_csf"][0] == eighth["phantom.csf_flow"][0] == 0


def test_release_round9_continues_round8_with_csf_over_the_whole_range():
  from configs import release_round7, release_round8, release_round9
  seventh, eighth, ninth = (_flat(m.get_config())
                            for m in (release_round7, release_round8, release_round9))
  changed = _changed(eighth, ninth)
  assert changed == {"train.init_from", "data.cohort", "phantom.flair_csf", "phantom.sulcal_csf",
                     "phantom.csf_flow", "train.epochs", "train.decay_epoch", "train.eval_every"}
  assert ninth["train.init_from"] == "runs/release_round8"
  for knob in ("phantom.flair_csf", "phantom.sulcal_csf", "phantom.csf_flow"):  # both ranges
    assert ninth[knob][0] == eighth[knob][0] and ninth[knob][1] == seventh[knob][1]
  tiny = release_round9.get_config("tiny")
  assert tiny.data.cohort != release_round8.get_config("tiny").data.cohort  # a cohort of its own


def test_release_round10_averages_round8_with_the_bundle_and_trains_nothing():
  from configs import release_round9, release_round10
  ninth, tenth = _flat(release_round9.get_config()), _flat(release_round10.get_config())
  changed = _changed(ninth, tenth)
  assert changed == {"train.average_with", "train.epochs", "train.decay_epoch",
                     "train.eval_every"}
  assert tenth["train.init_from"] == "runs/release_round8"  # round 9's start, not round 9
  assert tenth["train.average_with"] == "runs/release_round3"
  assert tenth["train.epochs"] == 0 and 0 < tenth["train.average_weight"] < 1
  assert tenth["data.cohort"] == ninth["data.cohort"]  # calibrated and gated on round 9's draw


def test_release_round11_remeasures_round10s_batch_statistics_at_learning_rate_zero():
  from configs import release_round10, release_round11
  tenth, eleventh = _flat(release_round10.get_config()), _flat(release_round11.get_config())
  changed = _changed(tenth, eleventh)
  assert changed == {"train.epochs", "train.decay_epoch", "train.learning_rate"}
  assert eleventh["train.learning_rate"] == 0 and eleventh["train.epochs"] == 1


def test_release_round12_is_round9_with_cavities_as_bright_as_the_sulci():
  from configs import release_round9, release_round12
  ninth, twelfth = _flat(release_round9.get_config()), _flat(release_round12.get_config())
  assert _changed(ninth, twelfth) == {"data.cohort", "phantom.cavity_like_sulci"}
  assert twelfth["phantom.cavity_like_sulci"] is True
  assert release_round12.get_config("tiny").data.cohort != release_round9.get_config(
      "tiny").data.cohort


def test_release_round13_trains_round12_further_on_its_cohort():
  from configs import release_round12, release_round13
  twelfth, thirteenth = _flat(release_round12.get_config()), _flat(release_round13.get_config())
  assert _changed(twelfth, thirteenth) == {"train.init_from"}
  assert thirteenth["train.init_from"] == "runs/release_round12"


def test_release_round14_labels_wmh_as_seen_and_trains_round13_on_a_new_cohort():
  from configs import release_round13, release_round14
  thirteenth, fourteenth = _flat(release_round13.get_config()), _flat(release_round14.get_config())
  assert _changed(thirteenth, fourteenth) == {
      "train.init_from", "data.cohort", "phantom.label_shrink_mm", "phantom.halo_gain",
      "train.epochs", "train.decay_epoch", "train.eval_every"}
  assert fourteenth["train.init_from"] == "runs/release_round13"
  assert max(fourteenth["phantom.label_shrink_mm"]) < min(thirteenth["phantom.label_shrink_mm"])
  assert max(fourteenth["phantom.halo_gain"]) < max(thirteenth["phantom.halo_gain"])


def test_release_round15_draws_more_recent_deep_infarcts_from_round14():
  from configs import release_round14, release_round15
  fourteenth, fifteenth = _flat(release_round14.get_config()), _flat(release_round15.get_config())
  assert _changed(fourteenth, fifteenth) == {
      "train.init_from", "data.cohort", "phantom.stroke_type_weights",
      "phantom.old_infarct_probability", "train.epochs", "train.decay_epoch", "train.eval_every"}
  assert fifteenth["train.init_from"] == "runs/release_round14"
  share = lambda c: c["phantom.stroke_type_weights"][1] / sum(c["phantom.stroke_type_weights"])
  assert share(fifteenth) > share(fourteenth)
  assert fifteenth["phantom.old_infarct_probability"] < fourteenth["phantom.old_infarct_probability"]


def test_release_round16_labels_wmh_past_its_seen_border_from_round14():
  from configs import release_round14, release_round16
  fourteenth, sixteenth = _flat(release_round14.get_config()), _flat(release_round16.get_config())
  assert _changed(fourteenth, sixteenth) == {
      "train.init_from", "data.cohort", "phantom.label_shrink_mm", "train.epochs",
      "train.decay_epoch", "train.eval_every"}
  assert sixteenth["train.init_from"] == "runs/release_round14"
  assert sixteenth["phantom.label_shrink_mm"][0] < 0 <= fourteenth["phantom.label_shrink_mm"][0]


def test_release_round17_learns_round15s_phantom_from_scratch_with_uresnet2():
  from configs import release, release_round15, release_round17
  fifteenth, seventeenth = _flat(release_round15.get_config()), _flat(release_round17.get_config())
  assert _changed(fifteenth, seventeenth) == {
      "train.init_from", "data.cohort", "model.residual_convs", "train.epochs",
      "train.decay_epoch", "train.eval_every", "train.learning_rate"}
  assert seventeenth["train.init_from"] == "" and seventeenth["model.residual_convs"] == 2
  first = _flat(release.get_config())
  assert all(seventeenth[k] == first[k] for k in (
      "train.epochs", "train.decay_epoch", "train.learning_rate"))


def test_release_round18_shapes_deep_infarcts_as_real_ones_from_round15():
  from configs import release_round15, release_round18
  fifteenth, eighteenth = _flat(release_round15.get_config()), _flat(release_round18.get_config())
  assert _changed(fifteenth, eighteenth) == {
      "train.init_from", "data.cohort", "phantom.striatocapsular_centre_z_mm",
      "phantom.infarct_irregularity", "phantom.infarct_heterogeneity"}
  assert eighteenth["train.init_from"] == "runs/release_round15"
  assert eighteenth["phantom.striatocapsular_centre_z_mm"][1] > fifteenth[
      "phantom.striatocapsular_centre_z_mm"][1]
  assert min(eighteenth["phantom.infarct_irregularity"]) > 0
  assert min(eighteenth["phantom.infarct_heterogeneity"]) > 0


def test_release_round19_trains_round18_longer_on_more_stroke_patches():
  from configs import release_round18, release_round19
  eighteenth, nineteenth = _flat(release_round18.get_config()), _flat(release_round19.get_config())
  assert _changed(eighteenth, nineteenth) == {
      "train.init_from", "sampling.stroke_rate", "train.epochs", "train.decay_epoch",
      "train.eval_every"}
  assert nineteenth["train.init_from"] == "runs/release_round18"
  assert nineteenth["data.cohort"] == eighteenth["data.cohort"]
  assert nineteenth["sampling.stroke_rate"] == 2 * eighteenth["sampling.stroke_rate"]


def test_release_round20_adds_young_brains_to_round18():
  from configs import release_round18, release_round20
  eighteenth, twentieth = _flat(release_round18.get_config()), _flat(release_round20.get_config())
  assert _changed(eighteenth, twentieth) == {
      "train.init_from", "data.cohort", "phantom.age_years", "phantom.ventricle_enlargement_mm",
      "phantom.wmh_model"}
  assert twentieth["train.init_from"] == "runs/release_round18"
  assert twentieth["phantom.age_years"][0] < eighteenth["phantom.age_years"][0]
  assert twentieth["phantom.ventricle_enlargement_mm"][0] == 0
  lowest = twentieth["phantom.wmh_model"]["clip_pct"][0]
  assert 0 < lowest < eighteenth["phantom.wmh_model"]["clip_pct"][0]


def test_release_round21_weights_the_stroke_class_on_round18s_cohort():
  from configs import release_round18, release_round21
  eighteenth, twenty_first = _flat(release_round18.get_config()), _flat(release_round21.get_config())
  assert _changed(eighteenth, twenty_first) == {
      "train.init_from", "train.loss", "train.class_weights"}
  assert twenty_first["train.init_from"] == "runs/release_round18"
  assert twenty_first["train.loss"] == "weighted_cross_entropy"
  background, wmh, stroke = twenty_first["train.class_weights"]
  assert background == wmh == 1.0 and stroke > 1.0


def test_release_round22_sharpens_round18s_anatomy():
  from configs import release_round18, release_round22
  eighteenth, twenty_second = _flat(release_round18.get_config()), _flat(release_round22.get_config())
  assert _changed(eighteenth, twenty_second) == {
      "train.init_from", "data.cohort", "phantom.tissue_sharpening"}
  assert twenty_second["train.init_from"] == "runs/release_round18"
  assert eighteenth["phantom.tissue_sharpening"] == [0.0, 0.0]
  assert twenty_second["phantom.tissue_sharpening"] == [0.0, 1.0]


def test_release_round23_dims_round18s_infarcts_to_wmh_brightness():
  from configs import release_round18, release_round23
  eighteenth = _flat(release_round18.get_config())
  twenty_third = _flat(release_round23.get_config())
  assert _changed(eighteenth, twenty_third) == {
      "train.init_from", "data.cohort", "phantom.infarct_intensity"}
  assert twenty_third["train.init_from"] == "runs/release_round18"
  low, high = twenty_third["phantom.infarct_intensity"]
  assert low < 1 < high and eighteenth["phantom.infarct_intensity"][0] > low


def test_release_round24_moves_round18s_deep_infarcts_beside_the_ventricle_body():
  from configs import release_round18, release_round24
  eighteenth = _flat(release_round18.get_config())
  twenty_fourth = _flat(release_round24.get_config())
  assert _changed(eighteenth, twenty_fourth) == {
      "train.init_from", "data.cohort", "phantom.stroke_type_weights",
      "phantom.striatocapsular_centre_z_mm"}
  assert twenty_fourth["train.init_from"] == "runs/release_round18"
  striatocapsular = twenty_fourth["phantom.stroke_type_weights"][1]
  assert striatocapsular > eighteenth["phantom.stroke_type_weights"][1]
  assert twenty_fourth["phantom.striatocapsular_centre_z_mm"][0] > 0
  assert twenty_fourth["phantom.striatocapsular_centre_z_mm"][1] == 28


def test_release_round25_puts_some_of_round18s_deep_lesions_on_the_ventricle_wall():
  from configs import release_round18, release_round25
  eighteenth = _flat(release_round18.get_config())
  twenty_fifth = _flat(release_round25.get_config())
  assert _changed(eighteenth, twenty_fifth) == {
      "train.init_from", "data.cohort", "phantom.juxtaventricular_probability"}
  assert twenty_fifth["train.init_from"] == "runs/release_round18"
  assert eighteenth["phantom.juxtaventricular_probability"] == 0
  assert 0 < twenty_fifth["phantom.juxtaventricular_probability"] < 1


def test_release_round26_puts_some_of_round18s_deep_lesions_below_the_tentorium():
  from configs import release_round18, release_round26
  eighteenth = _flat(release_round18.get_config())
  twenty_sixth = _flat(release_round26.get_config())
  assert _changed(eighteenth, twenty_sixth) == {
      "train.init_from", "data.cohort", "phantom.infratentorial_probability"}
  assert twenty_sixth["train.init_from"] == "runs/release_round18"
  assert eighteenth["phantom.infratentorial_probability"] == 0
  assert 0 < twenty_sixth["phantom.infratentorial_probability"] < 1


def test_release_round27_is_a_uniform_soup_of_round18_25_and_26_trained_no_further():
  from configs import release_round26, release_round27
  twenty_sixth = _flat(release_round26.get_config())
  twenty_seventh = _flat(release_round27.get_config())
  assert _changed(twenty_sixth, twenty_seventh) == {
      "train.average_with", "train.average_weight", "train.epochs",
      "train.decay_epoch", "train.eval_every"}
  assert twenty_seventh["train.init_from"] == "runs/release_round18"
  souped = twenty_seventh["train.average_with"].split(",")
  assert souped == ["runs/release_round25/export", "runs/release_round26/export"]
  # each of the three models counts a third
  assert twenty_seventh["train.average_weight"] / len(souped) == pytest.approx(1 / 3)
  assert twenty_seventh["train.epochs"] == 0
