"""The model card: what a run trained on, how it started, its threshold and scores."""
import json

from uresnet_jax.experiments import model_card
from uresnet_jax.model import run_folder

from configs import release, release_round2

REALISM = dict(wmh_mean_z=2.0, wmh_p10_z=0.77, brain_p99_z=2.43, load_pct=4.3, components=42.0,
               edge_median_z=-0.49, edge_p90_z=1.81, edge_bright_pct=11.3, deep_p99_z=2.24,
               wmh_median_healthy_z=2.35, wmh_p10_healthy_z=0.96)


def _summary(wmh: float, stroke: float, false_ml: float) -> dict:
  return {"wmh": {"dice_mean": wmh, "dice_std": 0.1, "n_subjects": 8},
          "stroke": {"dice_mean": stroke, "dice_std": 0.3, "n_subjects": 4,
                     "dice_mean_expert": 0.512, "n_expert": 3},
          "false_stroke": {"median_ml": false_ml, "max_ml": 0.16, "n_subjects": 5}}


def _config(module) -> dict:
  return json.loads(json.dumps(module.get_config().to_dict(), default=list))


def test_card_of_a_second_round_names_both_rounds_and_the_thresholded_fold():
  config = _config(release_round2)
  config["predict"]["stroke_threshold"] = 0.8
  manifest = {"training_config": config, "jax_version": "0.x", "platforms": ["cpu"],
              "source": {"step": 4268}}
  domains = {"loose_skull_strip": {"changes": {"mask_margin_mm": [3.0, 4.5]},
                                   "dice": _summary(0.653, 0.17, 0.22), "realism": REALISM}}
  calibration = {"subjects": 12, "seed": 2, "chosen": 0.8, "held_out_fold": _summary(0.7, 0.384, 0.0),
                 "table": [{"threshold": 0.0, "stroke_dice": 0.238, "false_stroke_median_ml": 0.39},
                           {"threshold": 0.8, "stroke_dice": 0.328, "false_stroke_median_ml": 0.0}]}
  before = _config(release)
  before["phantom"]["num_workers"] = 16  # made elsewhere: the same subjects
  pretrained = {"model": "runs/release_gpu_export", "weights_sha256": "ab" * 32,
                "training_config": before}
  card = model_card.render(manifest, 1.2, _summary(0.7, 0.213, 0.02), 8, domains, 12.0,
                           calibration, pretrained)
  assert "0.4 of them on healthy tissue brighter than z = 1, 0.4 of them on a slice drawn" in card
  assert "2 epochs of Adam (learning rate 0.0001" in card
  assert ("started from the weights of `runs/release_gpu_export` (SHA-256 abababababab…), not "
          "from random ones, themselves trained 10 epochs from random weights on the same phantom "
          "cohort") in card
  assert "0.5 healthy-tissue patches per lesion patch, 0.6 of them on bright tissue" in card
  assert "Stroke threshold 0.8" in card and "stroke Dice 0.238 without it, 0.328 with it" in card
  assert "averaged over the 4 in-plane flips of each slice (`tta`" in card  # round 2 predicts so
  assert ("The held-out fold at this threshold: WMH Dice 0.700 (0.100), n=8; stroke Dice "
          "0.384 (0.300), n=4") in card
  assert "0.512 on the 3 subjects with a stroke" in card
  assert "| loose_skull_strip | mask_margin_mm=[3.0, 4.5] | 0.653 (n=8) |" in card


def test_card_of_a_run_from_random_weights_says_nothing_of_rounds(tmp_path):
  config = _config(release)
  manifest = {"training_config": config, "jax_version": "0.x", "platforms": ["cpu"],
              "source": {"step": 18290}}
  domains = {"in_domain": {"changes": {}, "dice": _summary(0.65, 0.14, 0.2), "realism": REALISM}}
  card = model_card.render(manifest, 1.2, _summary(0.69, 0.19, 0.59), 8, domains, 6.0)
  assert "started from the weights" not in card and "Stroke threshold: none" in card
  assert "in-plane flips" not in card
  assert "0.5 healthy-tissue patches per lesion patch (0.6 of them on healthy tissue" in card
  assert model_card._pretrained(tmp_path) is None
  (tmp_path / run_folder.PRETRAINED).write_text(json.dumps(
      {"model": str(tmp_path / "gone"), "weights_sha256": "0" * 64}))
  assert model_card._pretrained(tmp_path) == {"model": str(tmp_path / "gone"),
                                              "weights_sha256": "0" * 64}


def _gate_rows(subject, wmh_dice, stroke, labelled_wmh="yes"):
  nan = float("nan")
  wmh = {"subject": subject, "class": "wmh", "expert_labelled": labelled_wmh, "dice": wmh_dice,
         "expert_volume_ml": 5.0, "false_stroke_ml": nan}
  return [wmh, {"subject": subject, "class": "stroke", "expert_labelled": "yes", **stroke}]


def test_card_with_a_release_gate_reports_every_real_scan_and_what_fails():
  from uresnet_jax.experiments import release_gate
  nan = float("nan")
  rows = (_gate_rows("ms1", 0.52, dict(dice=nan, expert_volume_ml=0.0, false_stroke_ml=0.3))
          + _gate_rows("isles1", nan, dict(dice=0.45, expert_volume_ml=4.2, false_stroke_ml=nan,
                                           called_stroke_pct=38.0, called_wmh_pct=12.0,
                                           called_none_pct=50.0), labelled_wmh="no"))
  gate_config = release.get_config().release_gate
  checks = release_gate.real_checks(rows, gate_config)
  candidate = {"model": "new", "rows": rows,
               "checks": [dict(vars(c), passed=c.passed) for c in checks]}
  gate = {"config": "configs/release_round3.py", "sources": "Datasets: A (CC-BY).",
          "candidate": candidate, "current": candidate}
  config = _config(release)
  manifest = {"training_config": config, "jax_version": "0.x", "platforms": ["cpu"],
              "source": {"step": 1}}
  domains = {"in_domain": {"changes": {}, "dice": _summary(0.65, 0.14, 0.2), "realism": REALISM}}
  card = model_card.render(manifest, 1.2, _summary(0.69, 0.19, 0.59), 8, domains, 6.0, gate=gate)
  assert "## Results on real scans" in card and "Datasets: A (CC-BY)." in card
  assert "--config=configs/release_round3.py" in card
  assert "| ms1 | 0.520 | – | – | 0.30 |" in card
  assert "| isles1 | not labelled | 0.450 | 38 / 12 / 50 | – |" in card
  assert "infarct called stroke, % on isles1 38.00 (needs ≥ 50)" in card
  assert "2 real scans checked it" in card and "No real scan was used for training or" not in card
  without = model_card.render(manifest, 1.2, _summary(0.69, 0.19, 0.59), 8, domains, 6.0)
  assert "Results on real scans" not in without and "No real scan was used for training or" in without
