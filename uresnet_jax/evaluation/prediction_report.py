"""A predict run's QC image per scan, its volume histograms and its report.md (matplotlib).

`qc_slices` and `markdown` are pure; the figure functions write one PNG each to the path given.
"""
import pathlib
from typing import Mapping, Sequence

import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.common.formatting import number as _f
from uresnet_jax.evaluation.report import CLASS_TITLES, figure

QC_COLORS = {"wmh": "#0072B2", "stroke": "#E69F00"}  # Okabe-Ito blue, orange: colour-blind safe
QC_WIDTH_PX = 1640  # a QC image's width, whatever the number of slices: readable in a paper


def qc_slices(labels: np.ndarray, brain: np.ndarray, count: int) -> list[int]:
  """`count` axial slices: evenly spread over the brain's central 80 %, each moved to the slice
  with the most lesion within its share, and the slice with the most stroke when there is any."""
  slices = np.flatnonzero(brain.any(axis=(0, 1)))
  if slices.size == 0:
    slices = np.arange(labels.shape[2])
  lo, hi = slices[0] + 0.1 * (slices[-1] - slices[0]), slices[0] + 0.9 * (slices[-1] - slices[0])
  edges = np.linspace(lo, hi + 1, count + 1)
  lesion = (labels > 0).sum(axis=(0, 1))
  chosen = []
  for a, b in zip(edges[:-1], edges[1:]):
    span = np.arange(int(np.floor(a)), max(int(np.floor(a)) + 1, int(np.floor(b))))
    span = span[(span >= 0) & (span < labels.shape[2])]
    if span.size:
      best = span[np.argmax(lesion[span])] if lesion[span].any() else span[span.size // 2]
      chosen.append(int(best))
  stroke = (labels == labelling.STROKE).sum(axis=(0, 1))
  if stroke.any() and int(np.argmax(stroke)) not in chosen:  # strokes are small: always show one
    z = int(np.argmax(stroke))
    chosen[int(np.argmin([abs(c - z) for c in chosen]))] = z
  return sorted(set(chosen))


def qc_image(path: pathlib.Path, title: str, image: np.ndarray, labels: np.ndarray,
             brain: np.ndarray, count: int = 4) -> None:
  """A row of axial slices (RAS arrays: anterior up, the patient's right on the left, radiological
  view, each marked R/L/A/P) of the FLAIR with WMH contours in blue and stroke in orange."""
  chosen = qc_slices(labels, brain, count)
  dpi = 100
  width = QC_WIDTH_PX / dpi
  fig = figure(figsize=(width, 1.15 * width / max(len(chosen), 1)))
  axes = fig.subplots(1, len(chosen), squeeze=False)[0]
  xs, ys = np.nonzero(brain.any(axis=2)) if brain.any() else np.nonzero(np.ones(labels.shape[:2]))
  for ax, z in zip(axes, chosen):
    ax.imshow(image[:, :, z].T, cmap="gray", origin="lower", interpolation="nearest")
    for cls, label in (("wmh", 1), ("stroke", 2)):
      mask = labels[:, :, z] == label
      if mask.any():
        ax.contour(mask.T.astype(float), levels=[0.5], colors=QC_COLORS[cls], linewidths=1.5)
    ax.set_xlim(xs.max() + 2, xs.min() - 2)  # x grows to the patient's right: shown on the left
    ax.set_ylim(ys.min() - 2, ys.max() + 2)
    ax.set_title(f"slice {z}", fontsize=11)
    ax.axis("off")
    for text, x, y in (("R", 0.02, 0.5), ("L", 0.98, 0.5), ("A", 0.5, 0.97), ("P", 0.5, 0.03)):
      ax.text(x, y, text, transform=ax.transAxes, color="white", fontsize=12, weight="bold",
              ha="center", va="center")
  fig.suptitle(f"{title}   WMH: blue, stroke: orange (radiological view: R on the left)",
               fontsize=11)
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88, wspace=0.03)
  fig.savefig(path, dpi=dpi)


def volume_histograms(path: pathlib.Path, volumes: Mapping[str, np.ndarray]) -> None:
  """The distribution of each class's volume (mL) over the run's scans."""
  fig = figure(figsize=(4.5 * len(volumes), 3.6))
  axes = fig.subplots(1, len(volumes), squeeze=False)[0]
  for ax, (cls, values) in zip(axes, volumes.items()):
    ax.hist(values, bins=min(30, max(5, len(values))), color=QC_COLORS[cls], edgecolor="k")
    ax.set(xlabel=f"{CLASS_TITLES[cls]} volume (mL)", ylabel="scans", title=CLASS_TITLES[cls])
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def markdown(rows: Sequence[Mapping], failures: Sequence[str], model: str,
                        qc: Mapping[str, str], histogram: str | None) -> str:
  """report.md of a predict run: volume distribution per class, per-scan volumes with QC links."""
  lines = [f"# Segmentation of {len(rows)} scan(s)", "", f"Model: `{model}`", ""]
  if failures:
    lines += [f"{len(failures)} scan(s) failed and have no outputs:", ""]
    lines += [f"- {f}" for f in failures] + [""]
  if rows:
    lines += ["## Volume distribution (mL)", "",
              "| Class | n with lesion | min | 25 % | median | 75 % | max | mean |",
              "|---|---|---|---|---|---|---|---|"]
    for cls in CLASS_TITLES:
      v = np.array([r[f"{cls}_ml"] for r in rows], float)
      q = np.percentile(v, [0, 25, 50, 75, 100])
      lines.append(f"| {CLASS_TITLES[cls]} | {int((v > 0).sum())} | "
                   + " | ".join(f"{x:.2f}" for x in q) + f" | {v.mean():.2f} |")
    if histogram:
      lines += ["", f"![volume distribution]({histogram})"]
    lines += ["", "## Scans", "",
              "| Scan | WMH mL [interval] | WMH lesions | stroke mL [interval] | stroke lesions "
              "| % ICV WMH | QC |", "|---|---|---|---|---|---|---|"]
    for r in rows:
      pct = _f(r["wmh_pct_icv"], 2) if r["wmh_pct_icv"] != "" else "–"
      lines.append(
          f"| {r['subject']} | {r['wmh_ml']:.2f} [{r['wmh_ml_low']:.2f}, {r['wmh_ml_high']:.2f}] | "
          f"{r['wmh_lesions']} | {r['stroke_ml']:.2f} [{r['stroke_ml_low']:.2f}, "
          f"{r['stroke_ml_high']:.2f}] | {r['stroke_lesions']} | {pct} | "
          f"[QC]({qc[r['subject']]}) |")
  return "\n".join(lines) + "\n"
