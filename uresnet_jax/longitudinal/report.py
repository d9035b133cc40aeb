"""report.html of a `longitudinal` run, in the page style of predict's report (evaluation/html_report):
new strokes first, then per subject the per-visit volumes and every event, each with both visits
side by side at the event's slice (the follow-up moved onto the baseline's grid) under the change
overlay. `event_figures` writes a pair's slice images; `render` is pure (records -> HTML text)."""
import html
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.data import preprocess
from uresnet_jax.evaluation import html_report
from uresnet_jax.evaluation.report import CLASS_TITLES
from uresnet_jax.longitudinal import events
from uresnet_jax.longitudinal.results import PairResult, VisitResult

# Okabe-Ito (colour-blind safe), one colour per event whatever the class; a little transparent.
# New (vermillion) has no neighbour in hue but unconfirmed new (orange: a follow-up lesion that
# nothing says appeared); split, the rarest, is black; unconfirmed disappearing (a baseline lesion
# that nothing says went) takes the palette's ninth colour, grey.
EVENT_COLOURS = {"new": "#D55E00", "unconfirmed_new": "#E69F00", "enlarging": "#F0E442",
                 "shrinking": "#56B4E9", "disappearing": "#0072B2", "stable": "#009E73",
                 "merged": "#CC79A7", "split": "#000000", "unconfirmed_disappearing": "#999999"}
EVENT_RGBA = {event: html_report.rgba(colour) for event, colour in EVENT_COLOURS.items()}
CODE_RGBA = {events.change_code(cls, event): rgba for cls in labelling.CLASSES
             for event, rgba in EVENT_RGBA.items()}


def _window(image: np.ndarray, brain: np.ndarray) -> tuple[float, float]:
  values = image[brain]
  return tuple(np.percentile(values, [0.5, 99.5])) if values.size else (0.0, 1.0)


def event_figures(folder: pathlib.Path, prefix: str, baseline: VisitResult,
                  pair: PairResult) -> list[dict]:
  """For each of the pair's events (in order), the axial slice of the baseline's grid through its
  centroid: the baseline FLAIR, the follow-up FLAIR moved there and the change overlay as PNGs in
  `folder` (one set per slice), cropped to the brain; returns [{"z", "baseline", "followup",
  "change", "width", "height"}] with paths under `prefix` (relative to report.html)."""
  folder.mkdir(parents=True, exist_ok=True)
  affine = baseline.flair.affine
  base, canonical_affine = preprocess.to_canonical(baseline.flair.data, affine)
  follow = preprocess.to_canonical(pair.followup_on_baseline, affine)[0]
  change = preprocess.to_canonical(pair.common_map, affine)[0]
  brain = preprocess.to_canonical(baseline.brain, affine)[0]
  inside = brain if brain.any() else np.ones(brain.shape, bool)
  xs, ys = np.flatnonzero(inside.any(axis=(1, 2))), np.flatnonzero(inside.any(axis=(0, 2)))
  box = (slice(max(0, xs[0] - 2), xs[-1] + 3), slice(max(0, ys[0] - 2), ys[-1] + 3))
  factor = max(1, math.ceil(max(base[box].shape[:2]) / html_report.MAX_SIDE))
  windows = {"baseline": _window(base, inside), "followup": _window(follow, inside)}
  to_voxel = np.linalg.inv(canonical_affine) @ pair.rigid.matrix  # follow-up mm -> voxel
  written, out = {}, []
  for event in pair.events:
    z = int(np.clip(np.round(to_voxel[2, :3] @ event.centroid_mm + to_voxel[2, 3]), 0,
                    base.shape[2] - 1))
    if z not in written:
      names = {k: f"z{z:03d}-{k}.png" for k in ("baseline", "followup", "change")}
      size = html_report.grey_png(folder / names["baseline"], base[box + (z,)],
                                  *windows["baseline"], factor)
      html_report.grey_png(folder / names["followup"], follow[box + (z,)], *windows["followup"],
                           factor)
      html_report.overlay_png(folder / names["change"], change[box + (z,)], factor, CODE_RGBA)
      written[z] = {"z": z, **{k: f"{prefix}/{v}" for k, v in names.items()},
                    "width": size[0], "height": size[1]}
    out.append(written[z])
  return out


def _name(cls: str) -> str:
  """A class as a sentence names it: WMH, stroke."""
  return CLASS_TITLES[cls] if cls == "wmh" else CLASS_TITLES[cls].lower()


def _title(row: Mapping) -> str:
  return f"{row['event'].replace('_', ' ').capitalize()} {_name(row['class'])}"


def _anchor(subject: str, followup: str, z: int) -> str:
  return html.escape(f"slice-{subject}-{followup}-{z}", quote=True)


def _describe(row: Mapping) -> str:
  return (f"{row['volume_ml_baseline']:.3f} → {row['volume_ml_followup']:.3f} mL "
          f"({row['change_ml']:+.3f}); centroid ({row['centroid_x_mm']:.1f}, "
          f"{row['centroid_y_mm']:.1f}, {row['centroid_z_mm']:.1f}) mm in the follow-up's "
          "scanner coordinates")


def _volume_table(rows: Sequence[Mapping]) -> str:
  headers = ["visit", *(h for c in labelling.CLASSES for h in (
      f"{CLASS_TITLES[c]} mL [interval]", f"{CLASS_TITLES[c]} lesions",
      f"{CLASS_TITLES[c]} change mL", f"new {_name(c)}"))]
  body = []
  for row in rows:
    cells = [f"<td>{html.escape(row['visit'])}</td>"]
    for c in labelling.CLASSES:
      cells += [f"<td>{row[f'{c}_ml']:.2f} [{row[f'{c}_ml_low']:.2f}, "
                f"{row[f'{c}_ml_high']:.2f}]</td>", f"<td>{row[f'{c}_lesions']}</td>",
                f"<td>{row[f'{c}_change_ml']:+.2f}</td>", f"<td>{row[f'{c}_new']}</td>"]
    body.append("<tr>" + "".join(cells) + "</tr>")
  return ('<table class="volumes"><thead><tr>' + "".join(f"<th>{h}</th>" for h in headers)
          + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")


def _subject_section(record: Mapping) -> str:
  e = html.escape
  name = record["subject"]
  parts = [f'<section class="scan" id="subject-{e(name, quote=True)}" '
           f'data-scan="{e(name, quote=True)}">', f"<h2>{e(name)}</h2>",
           _volume_table(record["volumes"])]
  for followup, registration in record["registration"].items():
    rows = [r for r in record["changes"] if r["followup"] == followup]
    baseline = registration["baseline"]
    parts.append(f"<h3>{e(baseline)} → {e(followup)}</h3><p>Rigid registration of {e(followup)} "
                 f"to {e(baseline)}: similarity {registration['similarity']:.3f}, "
                 f"{registration['seconds']:.1f} s. Left: {e(baseline)}; right: {e(followup)} "
                 f"moved onto {e(baseline)}'s grid; overlay: the change map.</p>")
    if not rows:
      parts.append("<p>No lesion at either visit.</p>")
      continue
    parts.append('<table class="lesions"><thead><tr><th>event</th><th>baseline mL</th>'
                 "<th>follow-up mL</th><th>change mL</th><th>slice</th></tr></thead><tbody>")
    figures = record["figures"][followup]
    for row, fig in zip(rows, figures):
      parts.append(f'<tr><td>{e(_title(row))}</td><td>{row["volume_ml_baseline"]:.3f}</td>'
                   f'<td>{row["volume_ml_followup"]:.3f}</td><td>{row["change_ml"]:+.3f}</td>'
                   f'<td><a href="#{_anchor(name, followup, fig["z"])}">slice {fig["z"]}</a>'
                   "</td></tr>")
    parts.append('</tbody></table><div class="slices">')
    at: dict[int, list] = {}  # the events at each slice, slices in the order of their first event
    for row, fig in zip(rows, figures):
      at.setdefault(fig["z"], [fig]).append(row)
    for z, (fig, *here) in at.items():
      listed = "; ".join(f"<b>{e(_title(r))}</b> {e(_describe(r))}" for r in here)
      parts.append(
          f'<figure id="{_anchor(name, followup, z)}">'
          + html_report.view(fig["baseline"], fig["change"], fig["width"], fig["height"],
                             f"{name} {baseline} slice {z}")
          + html_report.view(fig["followup"], fig["change"], fig["width"], fig["height"],
                             f"{name} {followup} slice {z}")
          + f"<figcaption>Slice {z}: {listed}</figcaption></figure>")
    parts.append("</div>")
  parts.append("</section>")
  return "\n".join(parts)


def render(records: Sequence[Mapping], failures: Sequence[str], model: str) -> str:
  """The whole page: new strokes, failures, then every subject's volumes and events."""
  e = html.escape
  title = f"Change between visits of {len(records)} subject(s)"
  parts = [f'<h1 id="top">{e(title)}</h1>', f"<p>Model: <code>{e(model)}</code></p>"]
  strokes = [(r["subject"], row, fig["z"]) for r in records for f in r["registration"]
             for row, fig in zip((c for c in r["changes"] if c["followup"] == f),
                                 r["figures"][f])
             if row["class"] == "stroke" and row["event"] == "new"]
  parts.append(f'<h2 class="flag">New strokes ({len(strokes)})</h2>')
  parts.append("<ul>" + "".join(
      f'<li><a href="#{_anchor(s, row["followup"], z)}">{e(s)}, {e(row["baseline"])} → '
      f'{e(row["followup"])}</a>: {e(_describe(row))}</li>' for s, row, z in strokes) + "</ul>"
      if strokes else "<p>No new stroke between visits.</p>")
  if failures:
    parts.append(f'<p class="flag">{len(failures)} subject(s) failed and have no outputs:</p><ul>'
                 + "".join(f"<li>{e(f)}</li>" for f in failures) + "</ul>")
  parts += [_subject_section(r) for r in records]
  key = html_report.colour_key({event.replace("_", " "): EVENT_RGBA[event]
                                 for event in EVENT_COLOURS})
  return html_report.page(title, key, parts)
