"""report.md and the figures of a labelled cohort's evaluation and of `reproduce` (matplotlib).

`markdown` is pure (summary -> text); the figure functions write one PNG each to the path given.
A predict run's QC images and report.md are `prediction_report`'s.
"""
import math
import pathlib
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from uresnet_jax.common.formatting import mean_std as _ms, number as _f, p_value as _p

CLASS_TITLES = {"wmh": "WMH", "stroke": "Stroke"}
_METRIC_TITLES = {"dice": "Dice", "hd95_mm": "HD95 (mm)", "avd_pct": "AVD (%)",
                  "lesion_recall": "Lesion recall", "lesion_f1": "Lesion F1"}
_CALLED_TITLES = {"called_wmh_pct": "WMH", "called_stroke_pct": "Stroke",
                  "called_none_pct": "nothing"}
NOT_LABELLED = "not labelled"

if TYPE_CHECKING:
  from matplotlib.figure import Figure


def figure(**kwargs: Any) -> "Figure":
  """A matplotlib Figure without pyplot: no backend is chosen or changed. matplotlib is imported by
  the first figure, not with this module: a command that draws nothing (`--help`, a refusal) does
  not pay for it."""
  from matplotlib.figure import Figure
  return Figure(**kwargs)


def markdown(summary: Mapping) -> str:
  """The report: the paper-style table per method, then every metric, what the expert's lesion
  voxels were called, agreement, clinical correlations, risk factors, the Wilcoxon comparison and
  the notes on what was skipped; a class the expert labels on no subject reads "not labelled"."""
  unit = summary["volume_unit"]
  methods = summary["methods"]
  lines = [f"# Evaluation of {summary['n_subjects']} subject(s)", ""]
  if summary.get("challenge_mode"):
    lines += ["Challenge mode: expert stroke voxels removed from the prediction before scoring WMH.",
              ""]
  for cls, subjects in summary["not_labelled"].items():
    if subjects:
      lines += [f"{CLASS_TITLES[cls]} {NOT_LABELLED} on {len(subjects)} subject(s) "
                f"({', '.join(subjects[:10])}{' ...' if len(subjects) > 10 else ''}): its "
                "metrics there are NaN in metrics.csv (expert_labelled no) and left out of every "
                "mean below.", ""]
  unlabelled = {c for c, s in summary["not_labelled"].items() if len(s) == summary["n_subjects"]}

  def stat(cls: str, s: Mapping, scale: float = 1.0, digits: int = 1) -> str:
    return NOT_LABELLED if cls in unlabelled else f"{_ms(s, scale, digits)} n={s['n']}"

  lines += [
      f"## Summary (Dice ×100, mean (std); volumes in {unit}; CC = Pearson r of the volume)", "",
      "| Method | WMH Dice | Stroke Dice | WMH R² | WMH trend | CC Fazekas deep | CC Fazekas PV "
      "| CC Fazekas total | CC MMSE |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  rows = [(name, m) for name, m in methods.items()] + [("expert", summary["expert"])]
  for name, m in rows:
    wmh, stroke = m["wmh"], m["stroke"]
    dice = tuple(NOT_LABELLED if c in unlabelled else _ms(m[c]["metrics"]["dice"], 100)
                 for c in ("wmh", "stroke")) if "metrics" in wmh else ("–", "–")
    fit = wmh.get("agreement")
    trend = f"{_f(fit['slope'])}x + {_f(fit['intercept'])}" if fit else "–"
    cc = [_f(wmh.get("clinical", {}).get(c, {}).get("pearson_r"))
          for c in ("fazekas_deep", "fazekas_pv", "fazekas_total", "mmse")]
    lines.append(f"| {name} | {dice[0]} | {dice[1]} | {_f(fit['r2']) if fit else '–'} | {trend} | "
                 + " | ".join(cc) + " |")
  for name, method in methods.items():
    lines += ["", f"## {name}: metrics per class (mean (std), n)", "",
              "| Class | " + " | ".join(_METRIC_TITLES.values()) + " |",
              "|---|" + "---|" * len(_METRIC_TITLES)]
    for cls, s in method.items():
      cells = [stat(cls, s["metrics"][k], 1, 3) for k in _METRIC_TITLES]
      lines.append(f"| {CLASS_TITLES[cls]} | " + " | ".join(cells) + " |")
    false = method.get("stroke", {}).get("false_stroke")
    if false and false["n"]:
      lines += ["", f"False stroke on the {false['n']} subjects labelled free of stroke: "
                f"{_f(false['median_ml'])} mL median, {_f(false['max_ml'])} mL max."]
    lines += ["", f"### {name}: what the expert's lesion voxels were called (% of the class's "
              "expert voxels, mean (std), n subjects with that class)", "",
              "| Expert class | " + " | ".join(f"called {t}" for t in _CALLED_TITLES.values())
              + " |", "|---|" + "---|" * len(_CALLED_TITLES)]
    for cls, s in method.items():
      lines.append(f"| {CLASS_TITLES[cls]} | "
                   + " | ".join(stat(cls, s["metrics"][k]) for k in _CALLED_TITLES) + " |")
    lines += ["", f"### {name}: automatic vs expert volume ({unit})", "",
              "| Class | n | R² | slope | intercept | bias | bias p | RPC | CV (%) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for cls, s in method.items():
      a, b = s["agreement"], s["bland_altman"]
      lines.append(f"| {CLASS_TITLES[cls]} | {a['n']} | {_f(a['r2'])} | {_f(a['slope'])} | "
                   f"{_f(a['intercept'])} | {_f(b['bias'])} | {_p(b['bias_p'])} | {_f(b['rpc'])} | "
                   f"{_f(b['cv_pct'], 1)} |")
  for name, m in rows:
    clinical = {cls: s.get("clinical", {}) for cls, s in m.items()}
    if any(clinical.values()):
      lines += ["", f"## {name}: correlation of volumes with clinical scores", "",
                "| Class | Score | n | Pearson r | p | Spearman ρ | p |", "|---|---|---|---|---|---|---|"]
      for cls, scores in clinical.items():
        for score, c in scores.items():
          lines.append(f"| {CLASS_TITLES[cls]} | {score} | {c['n']} | {_f(c['pearson_r'])} | "
                       f"{_p(c['pearson_p'])} | {_f(c['spearman_rho'])} | {_p(c['spearman_p'])} |")
    risk = m["wmh"].get("risk_factors")
    if risk:
      lines += ["", f"## {name}: WMH risk factors (OLS of log WMH {unit} on each factor, "
                f"{'adjusted for sex' if summary.get('sex_adjusted') else 'sex unknown: unadjusted'})",
                "", "| Factor | n | coefficient | SE | p |", "|---|---|---|---|---|"]
      for factor, r in risk.items():
        lines.append(f"| {factor} | {r['n']} | {_f(r['coef'], 4)} | {_f(r['se'], 4)} | {_p(r['p'])} |")
  comparison = summary.get("comparison")
  if comparison:
    first, second = comparison["methods"]
    lines += ["", f"## Paired Wilcoxon signed-rank: {first} vs {second}", "",
              "| Class | Metric | n | z | p | effect size z/√(n1+n2) |", "|---|---|---|---|---|---|"]
    for cls, by_metric in comparison["tests"].items():
      for metric, w in by_metric.items():
        lines.append(f"| {CLASS_TITLES[cls]} | {metric} | {w['n']} | {_f(w['z'], 2)} | "
                     f"{_p(w['p'])} | {_f(w['effect_size'])} |")
  figures = summary.get("figures", [])
  if figures:
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
  if summary.get("messages"):
    lines += ["", "## Notes", ""] + [f"- {m}" for m in summary["messages"]]
  return "\n".join(lines) + "\n"


def volume_scatter(path: pathlib.Path, volumes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   fits: Mapping[str, Mapping[str, float]], unit: str, method: str) -> None:
  """Automatic vs expert volume per class, with the fitted and the identity line (paper Fig. 5)."""
  fig = figure(figsize=(5 * len(volumes), 4.6))
  axes = fig.subplots(1, len(volumes), squeeze=False)
  for ax, (cls, (auto, expert)) in zip(axes[0], volumes.items()):
    keep = np.isfinite(auto) & np.isfinite(expert)
    auto, expert = auto[keep], expert[keep]
    ax.scatter(expert, auto, s=22, alpha=0.8, label="subjects")
    top = max(float(np.max(auto, initial=0)), float(np.max(expert, initial=0)), 1e-6) * 1.05
    line = np.array([0.0, top])
    ax.plot(line, line, "k--", lw=1, label="identity")
    fit = fits[cls]
    if math.isfinite(fit["slope"]):
      ax.plot(line, fit["slope"] * line + fit["intercept"], "r-", lw=1.5,
              label=f"fit {fit['slope']:.2f}x + {fit['intercept']:.2f} (R² {fit['r2']:.3f})")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"expert volume ({unit})",
           ylabel=f"automatic volume ({unit})", title=f"{CLASS_TITLES[cls]} ({method})")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def bland_altman_plot(path: pathlib.Path, volumes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      stats: Mapping[str, Mapping[str, float]], unit: str, method: str) -> None:
  """Difference vs mean of automatic and expert volumes, bias and bias ± RPC (paper Fig. 6)."""
  fig = figure(figsize=(5 * len(volumes), 4.2))
  axes = fig.subplots(1, len(volumes), squeeze=False)
  for ax, (cls, (auto, expert)) in zip(axes[0], volumes.items()):
    keep = np.isfinite(auto) & np.isfinite(expert)
    mean, diff = (auto[keep] + expert[keep]) / 2, auto[keep] - expert[keep]
    ax.scatter(mean, diff, s=22, alpha=0.8)
    s = stats[cls]
    if math.isfinite(s["bias"]):
      ax.axhline(s["bias"], color="r", lw=1.5, label=f"bias {s['bias']:.3f}")
      for sign in (-1, 1):
        ax.axhline(s["bias"] + sign * s["rpc"], color="r", ls="--", lw=1,
                   label=f"bias ± RPC ({s['rpc']:.3f})" if sign > 0 else None)
      ax.legend(fontsize=8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel=f"mean of automatic and expert ({unit})",
           ylabel=f"automatic − expert ({unit})", title=f"{CLASS_TITLES[cls]} ({method})")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def overlays(path: pathlib.Path, examples: Sequence[tuple[str, np.ndarray | None, np.ndarray,
                                                          np.ndarray]]) -> None:
  """For each (subject, image, truth, prediction): the axial slice with the most expert WMH and the
  one with the most expert stroke, expert contours green, predicted contours magenta (Fig. 8)."""
  fig = figure(figsize=(8, 4 * len(examples)))
  axes = fig.subplots(len(examples), 2, squeeze=False)
  for row, (subject, image, truth, pred) in zip(axes, examples):
    for ax, (cls, label) in zip(row, (("wmh", 1), ("stroke", 2))):
      counts = (truth == label).sum(axis=(0, 1))
      if not counts.any():
        counts = (pred == label).sum(axis=(0, 1))
      z = int(np.argmax(counts))
      background = image[:, :, z] if image is not None else np.zeros(truth.shape[:2])
      ax.imshow(background.T, cmap="gray", origin="lower", interpolation="nearest")
      for mask, color, width in ((truth == label, "lime", 1.8), (pred == label, "magenta", 0.8)):
        if mask[:, :, z].any():
          ax.contour(mask[:, :, z].T.astype(float), levels=[0.5], colors=color, linewidths=width)
      if image is not None and (background > background.min()).any():
        xs, ys = np.nonzero(background > background.min())  # crop to the head
        ax.set_xlim(xs.min() - 2, xs.max() + 2)
        ax.set_ylim(ys.min() - 2, ys.max() + 2)
      ax.set_title(f"{subject} {CLASS_TITLES[cls]}, slice {z}: expert green, predicted magenta",
                   fontsize=8)
      ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def loss_curves(path: pathlib.Path,
                curves: Mapping[str, Mapping[str, Mapping[str, Sequence[tuple[float, float]]]]]
                ) -> None:
  """Mean Dice per class against epoch on training and held-out subjects, one panel per loss
  (paper Fig. 3); `curves` is loss -> "training"/"held-out" -> class -> [(epoch, Dice)]."""
  fig = figure(figsize=(4.2 * len(curves), 3.8))
  axes = fig.subplots(1, len(curves), squeeze=False, sharey=True)
  colours = {"wmh": "tab:orange", "stroke": "tab:red"}
  for ax, (loss, sets) in zip(axes[0], curves.items()):
    for subset, style in (("training", "--"), ("held-out", "-")):
      for cls, points in sets.get(subset, {}).items():
        if points:
          epochs, dice = zip(*points)
          ax.plot(epochs, dice, style, marker="o", ms=3, color=colours.get(cls),
                  label=f"{CLASS_TITLES.get(cls, cls)} {subset}")
    ax.set(title=loss.replace("_", " "), xlabel="epoch", ylim=(0, 1))
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("mean Dice")
  axes[0][0].legend(fontsize=8, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
