"""reproduce: the grid's cells (shared where equal), its checks, and the driver on a tiny grid."""
import dataclasses
import json
import subprocess
import sys

import pytest

from configs import reproduce as reproduce_config
from conftest import ROOT, subprocess_env, two_tiny_subjects
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.experiments import reproduce


def _config(**spec):
  config = reproduce_config.get_config("tiny")
  for key, value in spec.items():
    config.reproduce[key] = value
  return config


def test_cells_equal_to_the_base_are_trained_once():
  grid = reproduce.plan(_config())
  assert list(grid.cells) == ["uresnet", "uresnet2", "noc", "f_t1", "f_wm", "f_t1_wm",
                              "loss_weighted_cross_entropy", "loss_bootstrapped_cross_entropy",
                              "loss_pseudo_dice"]
  assert grid.architectures["uresnet"] == grid.channels["f"] == grid.losses["cross_entropy"] \
      == "uresnet"
  cells = grid.cells
  assert cells["uresnet"].folds is None and cells["noc"].folds is None
  assert cells["loss_pseudo_dice"].folds == (0,)
  assert cells["loss_pseudo_dice"].config.train.loss == "pseudo_dice"
  assert cells["noc"].config.sampling.max_shift == 0
  assert tuple(cells["f_t1_wm"].config.data.channels) == ("flair", "t1", "wm")
  # the tables' runs are scored once, at the end; Figure 3's runs (the base's fold 0 for its own
  # loss, the loss cells) also during training, by run_cell
  for cell in cells.values():
    assert cell.config.train.eval_every == cell.config.train.epochs
    assert not cell.config.train.eval_train_subjects
  assert cells["uresnet"].curves_fold == cells["loss_pseudo_dice"].curves_fold == 0
  assert cells["noc"].curves_fold is None
  assert "reproduce" not in cells["uresnet"].config
  # without the base's loss in Figure 3, the base cell is not scored during training
  assert reproduce.plan(_config(losses=("pseudo_dice",))).cells["uresnet"].curves_fold is None


@pytest.mark.parametrize("spec, message", [
    ({"architectures": ("uresnet", "nocc")}, "architectures: unknown variant 'nocc'"),
    ({"channels": ()}, "channels is empty"),
    ({"losses": ("dicee",)}, "unknown loss 'dicee'"),
    ({"loss_fold": 2}, "loss_fold=2"),
    ({"curve_every": 0}, "curve_every=0"),
])
def test_a_bad_grid_is_refused_before_anything_runs(spec, message):
  with pytest.raises(InputError, match=message):
    reproduce.plan(_config(**spec))


def test_a_workdir_of_another_grid_is_refused_naming_the_setting(tmp_path):
  config = _config()
  (tmp_path / reproduce.GRID_FILE).write_text(json.dumps(config.to_dict(), default=list))
  reproduce.check_grid(tmp_path, config)  # the same grid
  changed = _config(losses=("cross_entropy",))
  with pytest.raises(InputError, match=r"reproduce.losses=.*another grid|another grid.*losses"):
    reproduce.check_grid(tmp_path, changed)
  cache = _config()
  cache.compilation_cache_dir = "elsewhere"  # cannot change a result
  reproduce.check_grid(tmp_path, cache)


def test_every_channel_of_the_grid_must_be_in_the_cohort(tiny_run):
  records = nifti_io.read_cohort(str(tiny_run[0] / "cohort"))
  grid = reproduce.plan(_config())
  reproduce._check_channels(grid, records, "cohort")  # the phantom writes T1 and WM
  without_wm = [dataclasses.replace(r, wm=None) for r in records]
  with pytest.raises(InputError, match="cell f_wm needs channel 'wm'"):
    reproduce._check_channels(grid, without_wm, "cohort")


def test_the_tiny_grid_writes_every_table_and_a_rerun_skips_finished_cells(tiny_run, tmp_path,
                                                                           capsys):
  # two of the tiny run's subjects, one a fold (the 0.47 mm one left out): every cell trains on one
  # and is scored on the other. Batches of 24 make their 90 and 74 patches 3 steps an epoch each,
  # so both folds of a cell run one compiled training step (the schedule is part of it).
  cohort = two_tiny_subjects(tiny_run, tmp_path / "cohort", rows=(0, 2))
  batch = 24
  workdir = tmp_path / "grid"
  spec = {"architectures": ("uresnet",),  # noc, uresnet2: test_cells_equal_...
          "channels": ("f", "f_wm"), "losses": ("cross_entropy", "pseudo_dice")}
  args = [sys.executable, "-m", "uresnet_jax.reproduce", "--config=configs/reproduce.py:tiny",
          f"--workdir={workdir}", f"--config.data.cohort={cohort}",
          f"--config.data.records_dir={tmp_path / 'tfds'}", f"--config.train.batch_size={batch}",
          *(f"--config.reproduce.{key}={value}" for key, value in spec.items())]
  result = subprocess.run(args, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(p.name for p in workdir.iterdir()) == [
      "f_wm", "figure3.png", "grid.json", "loss_pseudo_dice", "report.md", "uresnet"]
  report = (workdir / "report.md").read_text()
  for title in ("Table 2", "Table A.5", "Table B.6", "Figure 3"):
    assert f"## {title}" in report
  rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
  assert {"uResNet (this run)", "z-score baseline (this run)", "uresnet", "f", "f_wm",
          "cross_entropy", "pseudo_dice"} <= set(rows)
  assert rows["f_wm"].split("|")[3].strip() != "ref."  # a Wilcoxon p-value against f
  # Figure 3's curves: training and held-out Dice after each of the tiny config's 2 epochs
  for run in (workdir / "uresnet" / "fold0", workdir / "loss_pseudo_dice" / "fold0"):
    for folder in ("eval", "eval_train"):
      epochs = sorted(json.loads(p.read_text())["epoch"] for p in (run / folder).glob("*/summary.json")
                      if p.parent.name != "latest")
      assert epochs == [1.0, 2.0], (run, folder)
  assert "–" not in rows["pseudo_dice"].split("|")[2]  # a training WMH Dice
  assert not (workdir / "loss_pseudo_dice" / "fold1").exists()  # Figure 3: one fold only
  assert not (workdir / "uresnet" / "fold1" / "eval_train").exists()  # not a Figure 3 run
  # The rerun in this process (the command line is the run above): the same grid, as the command
  # line's flags make it (else check_grid refuses the workdir)
  config = _config(**spec)
  config.data.cohort, config.data.records_dir = str(cohort), str(tmp_path / "tfds")
  config.train.batch_size = batch
  capsys.readouterr()
  assert reproduce.reproduce(config, workdir) == workdir / "report.md"
  again = capsys.readouterr().out
  assert again.count("finished earlier, skipped") == 3
  assert "training" not in again
  assert (workdir / "report.md").read_text() == report
