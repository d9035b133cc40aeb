"""The paper's experiments from one command: Table 2, Table A.5, Table B.6 and Figure 3.

Run: python -m uresnet_jax.reproduce --config=configs/reproduce.py:cpu --workdir=runs/reproduce_cpu
The grid (configs/reproduce.py) is a base config and named changes to it (`variants.py`, losses).
Each cell is a folder of <workdir>: a cross-validation (`crossval.py`: fold<k>/ runs, pooled/ results
beside the classical baseline) or, for Figure 3's losses, the one run holding out `loss_fold`. A cell
is finished when its done.json exists; a rerun skips finished cells and resumes the others. The
workdir's grid.json is the grid it was made with: a rerun with any other grid is refused. Writes
<workdir>/report.md and figure3.png; the volume figures are those of uresnet/pooled/.
"""
import csv
import dataclasses
import json
import pathlib
import time
from typing import Sequence

import ml_collections

from uresnet_jax.common import atomic, formatting
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io
from uresnet_jax.evaluation import report
from uresnet_jax.experiments import crossval, variants
from uresnet_jax.model import checkpoints, losses, run_folder, uresnet
from uresnet_jax.training import loop, prepare_data

GRID_FILE = "grid.json"
DONE_FILE = "done.json"
BASE_CELL = "uresnet"
_NOT_COMPARED = ("compilation_cache_dir",)  # settings that cannot change a result

# The paper's numbers (Guerrero et al. 2018; docs/design.md): Dice in %, mean (std).
PAPER = {
    "table2": {"uResNet": {"wmh": "69.5 (16.1)", "stroke": "40.0 (25.2)", "wmh_r2": "0.951"},
               "DeepMedic": {"wmh": "66.6", "stroke": "31.3"},
               "LPA": {"wmh": "64.7", "stroke": "–"}},
    "a5": {"uresnet": ("69.5 (16.1)", "40.0 (25.2)"), "uresnet2": ("69.6", "40.2"),
           "noc": ("66.9", "28.9")},
}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One experiment of the grid: a config trained on `folds` (None: every fold, pooled); the run
  holding out `curves_fold` is also scored during training, for Figure 3."""
  name: str
  config: ml_collections.ConfigDict
  folds: tuple[int, ...] | None
  curves_fold: int | None = None


@dataclasses.dataclass(frozen=True)
class Grid:
  cells: dict[str, Cell]  # by folder name, in run order
  architectures: dict[str, str]  # Table A.5 row -> cell name
  channels: dict[str, str]  # Table B.6 row -> cell name
  losses: dict[str, str]  # Figure 3 panel -> cell name
  loss_fold: int
  curve_every: int  # epochs between Figure 3's scorings


def _experiment_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The grid's base: the config without its `reproduce` section, scored once, at the end of
  training (Figure 3's runs are scored during training by `run_cell`)."""
  base = ml_collections.ConfigDict(
      {k: v for k, v in config.to_dict().items() if k != "reproduce"})
  base.train.eval_every = base.train.epochs
  base.train.eval_train_subjects = False
  return base


def _with_curves(config: ml_collections.ConfigDict, every: int) -> ml_collections.ConfigDict:
  """`config` scored every `every` epochs on its training and held-out subjects."""
  config = config.copy_and_resolve_references()
  config.train.eval_every = every
  config.train.eval_train_subjects = True
  return config


def _key(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), sort_keys=True, default=list)


def plan(config: ml_collections.ConfigDict) -> Grid:
  """The grid's cells; a change that leaves the base as it is (uresnet, f, the base's own loss)
  is the base cell, trained once."""
  base = _experiment_config(config)
  spec = config.reproduce
  if not 0 <= spec.loss_fold < base.data.num_folds:
    raise InputError(f"config.reproduce.loss_fold={spec.loss_fold} must be in "
                     f"[0, {base.data.num_folds})")
  if spec.curve_every < 1:
    raise InputError(f"config.reproduce.curve_every={spec.curve_every} must be at least 1")
  for field in ("architectures", "channels", "losses"):
    if not spec[field]:
      raise InputError(f"config.reproduce.{field} is empty")
  cells: dict[str, Cell] = {}
  by_key: dict[str, str] = {}

  def add(name: str, cell_config: ml_collections.ConfigDict, folds: tuple[int, ...] | None,
          curves_fold: int | None = None) -> str:
    uresnet.create_model(cell_config.model)  # an unknown dtype: one line, before anything runs
    key = _key(cell_config)
    if key not in by_key:
      by_key[key] = name
      cells[name] = Cell(name, cell_config, folds, curves_fold)
    elif curves_fold is not None:  # Figure 3's run of an existing cell: that cell scores it
      cells[by_key[key]] = dataclasses.replace(cells[by_key[key]], curves_fold=curves_fold)
    return by_key[key]

  add(BASE_CELL, base, None)
  tables = {}
  for field in ("architectures", "channels"):
    for name in spec[field]:
      try:
        cell_config = variants.apply(base, name)
      except InputError as e:
        raise InputError(f"config.reproduce.{field}: {e}") from None
      tables.setdefault(field, {})[name] = add(name, cell_config, None)
  for loss in spec.losses:
    cell_config = base.copy_and_resolve_references()
    cell_config.train.loss = loss
    losses.from_config(cell_config.train, cell_config.model.num_classes)  # a bad name: one line
    tables.setdefault("losses", {})[loss] = add(f"loss_{loss}", cell_config, (spec.loss_fold,),
                                                curves_fold=spec.loss_fold)
  return Grid(cells, tables["architectures"], tables["channels"], tables["losses"],
              spec.loss_fold, spec.curve_every)


def _check_channels(grid: Grid, records: Sequence[nifti_io.SubjectRecord], cohort: str) -> None:
  """Every channel a cell needs is given for every subject, checked before anything is trained."""
  for cell in grid.cells.values():
    for channel in cell.config.data.channels:
      if channel not in nifti_io.CHANNELS:
        raise InputError(f"cell {cell.name}: unknown channel {channel!r} (choose from "
                         f"{', '.join(nifti_io.CHANNELS)})")
      missing = [r.subject for r in records if getattr(r, channel) is None]
      if missing:
        raise InputError(f"cell {cell.name} needs channel {channel!r}, but {cohort} gives no "
                         f"{channel} file for {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''}")


def check_grid(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Refuses a workdir made with another grid, naming the first setting that differs."""
  path = workdir / GRID_FILE
  if not path.exists():
    return
  saved = checkpoints.flat_fields(json.loads(path.read_text()))
  current = checkpoints.flat_fields(json.loads(json.dumps(config.to_dict(), default=list)))
  for key in [*sorted(set(saved) & set(current)), *sorted(set(saved) ^ set(current))]:
    if key in _NOT_COMPARED:
      continue
    if saved.get(key, "<absent>") != current.get(key, "<absent>"):
      raise InputError(f"{workdir} was made with another grid: {key}="
                       f"{saved.get(key, '<absent>')!r} there, {current.get(key, '<absent>')!r} "
                       "now; use a new --workdir")


def run_cell(cell: Cell, workdir: pathlib.Path, curve_every: int) -> dict:
  """Trains (or resumes) a cell and marks it finished; a finished cell is only read. The run for
  Figure 3 goes first, scored every `curve_every` epochs; a cross-validation then resumes it."""
  folder = workdir / cell.name
  done = folder / DONE_FILE
  if done.exists():
    print(f"{cell.name}: finished earlier, skipped")
    return json.loads(done.read_text())
  print(f"{cell.name}: training {'every fold' if cell.folds is None else f'fold(s) {cell.folds}'}")
  start = time.perf_counter()
  if cell.curves_fold is not None:
    loop.train_and_evaluate(crossval.fold_config(_with_curves(cell.config, curve_every),
                                                  cell.curves_fold),
                             str(folder / f"fold{cell.curves_fold}"))
  if cell.folds is None:
    crossval.cross_validate(cell.config, folder)
  else:
    for fold in cell.folds:
      if fold != cell.curves_fold:
        loop.train_and_evaluate(crossval.fold_config(cell.config, fold),
                                 str(folder / f"fold{fold}"))
  result = {"seconds": round(time.perf_counter() - start, 1), "folds": cell.folds}
  atomic.write_text(done, json.dumps(result, indent=1))
  return result


def _pooled_rows(workdir: pathlib.Path, cell: str, file: str = "metrics.csv") -> dict:
  """(subject, class) -> Dice of a cross-validation cell's pooled results."""
  with open(workdir / cell / "pooled" / file, newline="") as f:
    return {(r["subject"], r["class"]): float(r["dice"]) for r in csv.DictReader(f)}


def _curves(run: pathlib.Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
  """"training"/"held-out" -> class -> [(epoch, mean Dice)] from a run's eval files."""
  curves = {}
  for subset, train in (("training", True), ("held-out", False)):
    points: dict[str, list[tuple[float, float]]] = {}
    for summary in run_folder.eval_history(run, train):
      for cls in ("wmh", "stroke"):
        if summary.get("epoch") is not None and summary[cls]["n_subjects"]:
          points.setdefault(cls, []).append((summary["epoch"], summary[cls]["dice_mean"]))
    curves[subset] = {c: sorted(p) for c, p in points.items()}
  return curves


def _ablation_table(workdir: pathlib.Path, rows: dict[str, str], reference: str,
                    paper: dict[str, tuple[str, str]] | None) -> list[str]:
  """Dice (std) per class of each row's pooled results, and paired Wilcoxon p against `reference`."""
  from uresnet_jax.evaluation import cohort_stats
  ref = _pooled_rows(workdir, rows[reference])
  header = "| Variant | WMH Dice % | p vs " + reference + " | Stroke Dice % | p vs " + reference + " |"
  lines = [header + (" Paper WMH | Paper stroke |" if paper else ""),
           "|" + "---|" * (5 + (2 if paper else 0))]
  for row, cell in rows.items():
    dice = _pooled_rows(workdir, cell)
    line = f"| {row} |"
    for cls in ("wmh", "stroke"):
      keys = sorted(k for k in ref if k[1] == cls and k in dice)
      ours = [dice[k] for k in keys]
      test = cohort_stats.wilcoxon_paired(ours, [ref[k] for k in keys])
      p = "ref." if row == reference else formatting.number(test["p"], 4)
      line += f" {formatting.mean_std(cohort_stats.mean_std(ours), 100)} | {p} |"
    if paper:
      line += " {} | {} |".format(*paper.get(row, ("–", "–")))
    lines.append(line)
  return lines


def _table2(workdir: pathlib.Path) -> list[str]:
  summary = json.loads((workdir / BASE_CELL / "pooled" / "summary.json").read_text())
  lines = ["| Method | WMH Dice % | Stroke Dice % | WMH vol. R² | WMH trend | Stroke vol. R² | "
           "ρ Fazekas deep | ρ Fazekas PV | ρ Fazekas total | ρ MMSE |", "|" + "---|" * 10]

  def rho(clinical: dict, key: str) -> str:
    return formatting.number(clinical.get(key, {}).get("spearman_rho"), 2)

  names = {"uresnet": "uResNet (this run)", "baseline": "z-score baseline (this run)"}
  for method, stats in summary["methods"].items():
    wmh, stroke = stats["wmh"], stats["stroke"]
    trend = wmh["agreement"]
    lines.append(
        f"| {names.get(method, method)} | {formatting.mean_std(wmh['metrics']['dice'], 100)} | "
        f"{formatting.mean_std(stroke['metrics']['dice'], 100)} | "
        f"{formatting.number(trend['r2'])} | "
        f"{formatting.number(trend['slope'], 2)}x + {formatting.number(trend['intercept'], 2)} | "
        f"{formatting.number(stroke['agreement']['r2'])} | "
        + " | ".join(rho(wmh["clinical"], k) for k in
                     ("fazekas_deep", "fazekas_pv", "fazekas_total", "mmse")) + " |")
  expert = summary["expert"]["wmh"]["clinical"]
  lines.append("| Expert labels | | | | | | " + " | ".join(
      rho(expert, k) for k in ("fazekas_deep", "fazekas_pv", "fazekas_total", "mmse")) + " |")
  for method, paper in PAPER["table2"].items():
    lines.append(f"| {method} (paper) | {paper['wmh']} | {paper['stroke']} | "
                 f"{paper.get('wmh_r2', '–')} | | | | | | |")
  lines += ["", f"Volumes in {summary['volume_unit']}; n = {summary['n_subjects']} subjects, each "
            "scored by the fold model that did not train on it. ρ: Spearman correlation of the "
            "WMH volume with the score. The baseline cannot tell stroke from WMH: everything it "
            "finds is WMH."]
  return lines


def write_report(workdir: pathlib.Path, grid: Grid, seconds: dict[str, float]) -> pathlib.Path:
  """report.md and figure3.png from the finished cells."""
  curves = {loss: _curves(workdir / cell / f"fold{grid.loss_fold}")
            for loss, cell in grid.losses.items()}
  with atomic.replacing(workdir / "figure3.png") as tmp:
    report.loss_curves(tmp, curves)
  base = grid.cells[BASE_CELL].config
  lines = [
      "# Reproduction of Guerrero et al. 2018 (uResNet)", "",
      f"Cohort `{base.data.cohort}`, {base.data.num_folds}-fold cross-validation, "
      f"{base.train.epochs} epochs, base width {base.model.base_width}, batch "
      f"{base.train.batch_size}, loss {base.train.loss}. Every number below is pooled over the folds: "
      "each subject is scored by the model that did not train on it; no choice looked at held-out "
      "data (the last checkpoint is the model).", "",
      "## Table 2: uResNet against a classical baseline", "", *_table2(workdir), "",
      "![volumes](uresnet/pooled/volumes.png) ![Bland-Altman](uresnet/pooled/bland_altman.png)", "",
      "## Table A.5: architecture and sampling", "",
      *_ablation_table(workdir, grid.architectures, next(iter(grid.architectures)), PAPER["a5"]),
      "", "p: paired Wilcoxon signed-rank test of per-subject Dice against the first row.", "",
      "## Table B.6: input channels", "",
      *_ablation_table(workdir, grid.channels, next(iter(grid.channels)), None), "",
      f"## Figure 3: Dice per epoch by loss (held-out fold {grid.loss_fold})", "",
      "![Figure 3](figure3.png)", "",
      "| Loss | WMH training | WMH held-out | Stroke training | Stroke held-out |", "|---|---|---|---|---|",
  ]
  for loss, sets in curves.items():
    last = [sets.get(s, {}).get(c, [(None, float("nan"))])[-1][1]
            for c in ("wmh", "stroke") for s in ("training", "held-out")]
    lines.append(f"| {loss} | " + " | ".join(formatting.number(v) for v in last) + " |")
  lines += ["", "Dice after the last epoch (mean over subjects).", "", "## Cells", "",
            "| Cell | Folds | Seconds |", "|---|---|---|"]
  for name, cell in grid.cells.items():
    folds = "all, pooled" if cell.folds is None else ", ".join(map(str, cell.folds))
    lines.append(f"| {name} | {folds} | {formatting.number(seconds.get(name), 0)} |")
  lines += ["", f"Total {sum(seconds.values()) / 60:.1f} min of cell time (as first run; a "
            "skipped cell counts its first run)."]
  atomic.write_text(workdir / "report.md", "\n".join(lines) + "\n")
  return workdir / "report.md"


def reproduce(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> pathlib.Path:
  """Checks the whole grid, runs (or skips) every cell, then writes the report."""
  workdir = pathlib.Path(workdir)
  grid = plan(config)
  check_grid(workdir, config)
  base = grid.cells[BASE_CELL].config
  prepare_data.ensure_records(base)  # the phantom if missing, and the fold check, before anything runs
  _check_channels(grid, nifti_io.read_cohort(base.data.cohort), base.data.cohort)
  workdir.mkdir(parents=True, exist_ok=True)
  if not (workdir / GRID_FILE).exists():
    atomic.write_text(workdir / GRID_FILE, json.dumps(config.to_dict(), indent=1, default=list))
  seconds = {name: run_cell(cell, workdir, grid.curve_every)["seconds"]
             for name, cell in grid.cells.items()}
  return write_report(workdir, grid, seconds)


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import cli
  workdir = flags.DEFINE_string("workdir", None, "Folder for the grid's cells and report.md.")
  config_flag = config_flags.DEFINE_config_file(
      "config", None, "Grid configuration file (configs/reproduce.py:full|cpu|tiny).",
      lock_config=True)
  flags.mark_flags_as_required(["config", "workdir"])

  def main() -> None:
    config = cli.get_config(config_flag)
    if "reproduce" not in config:
      raise InputError("--config has no `reproduce` section; use configs/reproduce.py")
    loop.use_compilation_cache(config)
    print(f"report: {reproduce(config, workdir.value)}")

  cli.run_cli(main, logging.WARNING)

