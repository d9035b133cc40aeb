"""report.html of a predict run: the page a reviewer checks the segmentations on, scan by scan.

One HTML file with its styles, script and the volume plot inside; each scan's slices are PNGs in
qc/<scan>/ beside it (a FLAIR slice and a transparent overlay of the labels on top), loaded as they
scroll into view, so 1,000 scans open as fast as 10. Nothing is fetched from the network: the
output folder works offline and from a shared drive. `slice_images`, `lesion_slices` and
`scan_warnings` run per scan inside predict; `render` is pure (scan records -> HTML text).
"""
import base64
import html
import io
import math
import pathlib
import urllib.parse
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from uresnet_jax.common import labelling
from uresnet_jax.evaluation import prediction_report, report

_LESION_TITLES = {**report.CLASS_TITLES,
                  labelling.STROKE_CANDIDATE: "Stroke candidate (below the stroke threshold)"}


def rgba(colour: str, alpha: int = 210) -> tuple[int, int, int, int]:
  """A "#RRGGBB" colour as (R, G, B, alpha), each 0-255 (210: a little transparent); read without
  matplotlib, whose import a command that draws nothing (`--help`, a refusal) should not pay for."""
  return (*bytes.fromhex(colour.removeprefix("#")), alpha)


# prediction_report.QC_COLORS (colour-blind safe) as the overlay's RGBA
OVERLAY_RGBA = {c: rgba(colour) for c, colour in prediction_report.QC_COLORS.items()}
MAX_SIDE = 320  # px: a slice image is block-averaged down to this (the page shows it at 440 px)
FAR_Z = 3.5  # a volume this many robust SDs (1.4826 MAD) from the cohort's median is flagged
MIN_SCANS_FOR_OUTLIERS = 5
MIN_BRAIN_EXTENT_MM = 100.0  # less brain than this from bottom to top: low coverage


def _display(plane: np.ndarray) -> np.ndarray:
  """A RAS (x, y) plane as rows and columns of a radiological view: anterior up, right on left."""
  return np.swapaxes(plane, 0, 1)[::-1, ::-1]


def _shrink(plane: np.ndarray, factor: int, reduce) -> np.ndarray:
  h, w = (-(-n // factor) * factor for n in plane.shape)
  padded = np.pad(plane, ((0, h - plane.shape[0]), (0, w - plane.shape[1])))
  return reduce(padded.reshape(h // factor, factor, w // factor, factor), axis=(1, 3))


def _overlay(labels: np.ndarray, colours: Mapping[int, tuple[int, ...]] | None = None
             ) -> np.ndarray:
  colours = colours or {label: OVERLAY_RGBA[name] for name, label in labelling.CLASSES.items()}
  rgba = np.zeros(labels.shape + (4,), np.uint8)
  for value, colour in colours.items():
    rgba[labels == value] = colour
  return _display(rgba)


def grey_png(path: pathlib.Path, plane: np.ndarray, low: float, high: float,
             factor: int) -> tuple[int, int]:
  """A RAS axial plane as a grey PNG in the radiological view, block-averaged by `factor` and
  windowed to [low, high]; returns its (width, height)."""
  grey = _shrink(plane.astype(np.float32), factor, np.mean)
  grey = np.clip((grey - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
  Image.fromarray(_display(grey)).save(path)
  return int(grey.shape[0]), int(grey.shape[1])


def overlay_png(path: pathlib.Path, plane: np.ndarray, factor: int,
                colours: Mapping[int, tuple[int, ...]] | None = None) -> None:
  """A RAS axial plane of codes as a transparent PNG over `grey_png`'s: each code in its RGBA of
  `colours` (default: the lesion classes' OVERLAY_RGBA), transparent elsewhere."""
  Image.fromarray(_overlay(_shrink(plane, factor, np.max), colours)).save(path)


def slice_images(folder: pathlib.Path, image: np.ndarray, labels: np.ndarray, brain: np.ndarray,
                 count: int, expert: np.ndarray | None = None) -> list[dict]:
  """Every axial slice with a lesion (else `count` spread over the brain), cropped to the brain,
  as z<NNN>.png (FLAIR, grey) and z<NNN>-overlay.png (labels, transparent elsewhere) in `folder`,
  and z<NNN>-expert.png (expert labels) when given; returns [{"z", "image", "overlay"[, "expert"],
  "width", "height"}] with file names relative to `folder`."""
  folder.mkdir(parents=True, exist_ok=True)
  lesion = labels > 0 if expert is None else (labels > 0) | (expert > 0)
  chosen = np.flatnonzero(lesion.any(axis=(0, 1)))
  if chosen.size == 0:
    chosen = prediction_report.qc_slices(labels, brain, count)
  inside = brain if brain.any() else np.ones(labels.shape, bool)
  xs, ys = np.flatnonzero(inside.any(axis=(1, 2))), np.flatnonzero(inside.any(axis=(0, 2)))
  box = (slice(max(0, xs[0] - 2), xs[-1] + 3), slice(max(0, ys[0] - 2), ys[-1] + 3))
  values = image[inside]
  low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
  factor = max(1, math.ceil(max(image[box].shape[:2]) / MAX_SIDE))
  out = []
  for z in (int(z) for z in chosen):
    names = {"image": f"z{z:03d}.png", "overlay": f"z{z:03d}-overlay.png"}
    width, height = grey_png(folder / names["image"], image[box + (z,)], low, high, factor)
    overlay_png(folder / names["overlay"], labels[box + (z,)], factor)
    if expert is not None:
      names["expert"] = f"z{z:03d}-expert.png"
      overlay_png(folder / names["expert"], expert[box + (z,)], factor)
    out.append({"z": z, **names, "width": width, "height": height})
  return out


def lesion_slices(lesion_rows: Sequence[Mapping], canonical_affine: np.ndarray) -> dict[str, int]:
  """lesion_id -> the axial slice (canonical grid) through its centroid, which holds some of it."""
  inverse = np.linalg.inv(np.asarray(canonical_affine, float))
  out = {}
  for row in lesion_rows:
    mm = [row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"], 1.0]
    out[str(row["lesion_id"])] = int(round(float((inverse @ mm)[2])))
  return out


def scan_warnings(brain: np.ndarray, canonical_affine: np.ndarray, excluded_ml: float) -> list[str]:
  """What a reviewer should know before trusting a scan's volumes: brain cut off at the first or
  last slice, little brain from bottom to top, voxels excluded from labelling."""
  warnings = []
  slices = np.flatnonzero(brain.any(axis=(0, 1)))
  if slices.size:
    if slices[0] == 0 or slices[-1] == brain.shape[2] - 1:
      warnings.append("brain reaches the first or last slice: slices may be cut off")
    thickness = float(np.linalg.norm(np.asarray(canonical_affine)[:3, 2]))
    extent = (slices[-1] - slices[0] + 1) * thickness
    if extent < MIN_BRAIN_EXTENT_MM:
      warnings.append(f"low brain coverage: {extent:.0f} mm from bottom to top")
  if excluded_ml > 0:
    warnings.append(f"{excluded_ml:.1f} mL excluded from labelling")
  return warnings


def far_from_cohort(values: Sequence[float]) -> list[bool]:
  """Whether each value lies more than FAR_Z robust SDs from the median (log(1 + mL) scale)."""
  v = np.log1p(np.maximum(np.asarray(values, float), 0.0))
  if v.size < MIN_SCANS_FOR_OUTLIERS:
    return [False] * v.size
  median = np.median(v)
  spread = max(1.4826 * np.median(np.abs(v - median)), 0.05)  # most scans alike: not 0
  return [bool(abs(x - median) / spread > FAR_Z) for x in v]


def flags(records: Sequence[Mapping]) -> dict[str, list[str]]:
  """scan -> why a reviewer should look at it first (empty list: nothing stands out)."""
  rows = [r["volumes"] for r in records]
  far = {key: far_from_cohort([np.nan if row.get(key) is None else row[key] for row in rows])
         for key in ("wmh_ml", "icv_ml")}
  out = {}
  for i, record in enumerate(records):
    row = record["volumes"]
    reasons = [f"stroke {row['stroke_ml']:.2f} mL"] if row["stroke_ml"] > 0 else []
    reasons += [f"{'WMH' if key == 'wmh_ml' else 'ICV'} far from the cohort"
                for key in far if far[key][i]]
    out[row["subject"]] = reasons + list(record["review"]["warnings"])
  return out


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 3em;color:#222}
.bar{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:2}
.key{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .2em 0 .8em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;
text-align:right}td:first-child,th:first-child{text-align:left}
th.sort{cursor:pointer;background:#f3f3f3}th.sort:hover{background:#e3e3e3}
.flag{color:#a33}.scan{border-top:2px solid #888;margin-top:2em;content-visibility:auto;
contain-intrinsic-size:auto 1500px}
.slices{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;display:flex;flex-wrap:wrap;gap:4px}
figcaption{width:100%}
.view{position:relative;width:440px;background:#000;line-height:0}
.view img{width:100%;height:auto}.view img.overlay{position:absolute;left:0;top:0;
image-rendering:pixelated}
body.no-overlay img.overlay,figure.off img.overlay{visibility:hidden}
body.flicker img.overlay{animation:flick 1s steps(1) infinite}
@keyframes flick{50%{visibility:hidden}}
.o{position:absolute;color:#ff0;font:bold 13px sans-serif;line-height:1}
.o.r{left:4px;top:48%}.o.l{right:4px;top:48%}.o.a{top:4px;left:48%}.o.p{bottom:4px;left:48%}
figure:target .view{outline:4px solid #d55e00}
"""

_SCRIPT = """
const body = document.body;
document.getElementById('overlay').addEventListener('change',
  e => body.classList.toggle('no-overlay', !e.target.checked));
document.getElementById('flicker').addEventListener('change',
  e => body.classList.toggle('flicker', e.target.checked));
document.addEventListener('click', e => {  // one listener for every slice, however many
  const view = e.target.closest('.view');
  if (view) view.parentElement.classList.toggle('off');
});
document.querySelectorAll('th.sort').forEach(th => th.addEventListener('click', () => {
  const table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  const up = th.dataset.dir !== 'up';
  table.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = up ? 'up' : 'down';
  const key = r => { const c = r.cells[col]; const v = c.dataset.v;
    return v === undefined ? c.textContent : parseFloat(v); };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""


def _num(value, digits: int = 2) -> str:
  """A table cell that sorts by its number; blank values sort first."""
  try:
    number = float(value)
  except (TypeError, ValueError):
    return '<td data-v="-1">–</td>'
  return f'<td data-v="{number:.6g}">{number:.{digits}f}</td>'


def _interval(row: Mapping, cls: str) -> str:
  """Volume [interval] (predict), or volume (expert volume) where the expert's is known (evaluate:
  NaN where the expert leaves the class unlabelled)."""
  ml = row[f"{cls}_ml"]
  expert = row.get(f"expert_{cls}_ml")
  extra = (f"[{row[f'{cls}_ml_low']:.2f}, {row[f'{cls}_ml_high']:.2f}]" if f"{cls}_ml_low" in row
           else f"(expert {expert:.2f})" if math.isfinite(expert) else "(expert: not labelled)")
  return f'<td data-v="{ml:.6g}">{ml:.2f} {extra}</td>'


def _anchor(name: str, z: int | None = None) -> str:
  return html.escape(f"scan-{name}" if z is None else f"scan-{name}-z{z}", quote=True)


def _src(path: str) -> str:
  return html.escape(urllib.parse.quote(path), quote=True)


def _plain(cell: str) -> str:
  return cell[cell.index(">") + 1:cell.rindex("<")]


def view(image: str, overlay: str, width: int, height: int, alt: str = "",
         compass: str = "RLAP") -> str:
  """A slice with its overlay on top (click: overlay on/off), marked with the `compass` letters
  of R, L, A, P; `image` and `overlay` are paths relative to the page."""
  marks = "".join(f'<span class="o {c.lower()}">{c}</span>' for c in compass)
  return (f'<div class="view" title="click: overlay on/off"><img class="base" loading="lazy" '
          f'src="{_src(image)}" width="{width}" height="{height}" '
          f'alt="{html.escape(alt, quote=True)}"><img class="overlay" loading="lazy" '
          f'src="{_src(overlay)}" width="{width}" height="{height}" alt="">{marks}</div>')


def _expert_view(s: Mapping) -> str:
  """The same slice with the expert's labels, beside the model's (evaluate)."""
  if "expert" not in s:
    return ""
  return view(s["image"], s["expert"], s["width"], s["height"], compass="RL")


def _location_table(row: Mapping) -> str:
  """Each class's volume and lesion count per location, from the row's `<class>_ml_<location>`
  and `<class>_lesions_<location>` (predict's); nothing for a row without them (evaluate's)."""
  prefix = "wmh_lesions_"
  locations = [k[len(prefix):] for k in row if k.startswith(prefix)]
  if not locations:
    return ""
  cells = "".join(f"<th>{report.CLASS_TITLES[c]} mL (lesions)</th>" for c in labelling.CLASSES)
  body = "".join(
      f"<tr><td>{html.escape(where)}</td>" + "".join(
          f"<td>{row[f'{c}_ml_{where}']:.2f} ({row[f'{c}_lesions_{where}']})</td>"
          for c in labelling.CLASSES) + "</tr>" for where in locations)
  return (f'<table class="locations"><thead><tr><th>location</th>{cells}</tr></thead>'
          f"<tbody>{body}</tbody></table>")


def _scan_section(record: Mapping, reasons: Sequence[str]) -> str:
  row, review = record["volumes"], record["review"]
  name = row["subject"]
  e = html.escape
  volumes = "; ".join(
      f"{report.CLASS_TITLES[c]} {_plain(_interval(row, c))} mL in {row[f'{c}_lesions']} lesion(s)"
      + (f", Dice {row[f'{c}_dice']:.3f}" if math.isfinite(row.get(f"{c}_dice", math.nan)) else "")
      for c in labelling.CLASSES)
  icv = f"{row['icv_ml']:.0f} mL ({row['icv_source']})" if row.get("icv_ml") else "unknown"
  parts = [f'<section class="scan" id="{_anchor(name)}" data-scan="{e(name, quote=True)}">',
           f"<h2>{e(name)}</h2>",
           f"<p>{e(volumes)}; ICV {e(icv)}. Input: <code>{e(str(row['input']))}</code></p>"]
  if reasons:
    parts.append('<ul class="flag">' + "".join(f"<li>{e(r)}</li>" for r in reasons) + "</ul>")
  parts.append(_location_table(row))
  lesion_slices = review["lesion_slices"]
  parts.append('<div class="slices">')
  for s in review["slices"]:
    parts.append(
        f'<figure id="{_anchor(name, s["z"])}">'
        f'{view(s["image"], s["overlay"], s["width"], s["height"], name + " slice " + str(s["z"]))}'
        f'{_expert_view(s)}<figcaption>slice {s["z"]}'
        f'{": model, expert" if "expert" in s else ""}</figcaption></figure>')
  parts.append("</div>")
  if record["lesions"]:
    parts.append('<table class="lesions"><thead><tr><th>lesion</th><th>class</th>'
                 "<th>volume (mL)</th><th>location</th><th>confidence (mean p)</th><th>slice</th>"
                 "</tr></thead><tbody>")
    for lesion in record["lesions"]:
      z = lesion_slices[str(lesion["lesion_id"])]
      ambiguous = " (ambiguous WMH/stroke)" if lesion["ambiguous"] else ""
      parts.append(
          f"<tr><td>{lesion['lesion_id']}</td><td>{_LESION_TITLES[lesion['class']]}</td>"
          f"<td>{lesion['volume_ml']:.3f}</td><td>{e(lesion['location'])}</td>"
          f"<td>{lesion['mean_probability']:.2f}{ambiguous}</td>"
          f'<td><a href="#{_anchor(name, z)}">slice {z}</a></td></tr>')
    parts.append("</tbody></table>")
  parts.append("</section>")
  return "\n".join(parts)


def colour_key(colours: Mapping[str, tuple[int, ...]]) -> str:
  """The bar's key: a swatch per title, in its RGBA's colour."""
  return "".join(f'<span class="key" style="background:rgba{tuple(rgba[:3]) + (1,)}"></span>'
                 f"{html.escape(title)}" for title, rgba in colours.items())


def page(title: str, key: str, body: Sequence[str]) -> str:
  """A whole report page in the style every report shares: the sticky bar (overlay and flicker
  switches, the colour `key`), then `body`'s parts, then the page's script."""
  return "\n".join([
      "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
      f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
      '<div class="bar"><label><input type="checkbox" id="overlay" checked> overlay</label> '
      '<label><input type="checkbox" id="flicker"> flicker</label> '
      f'{key} <span style="margin-left:1em">click a slice to toggle its overlay; radiological '
      'view (R on the left)</span> <a href="#top" style="margin-left:1em">summary</a></div>',
      *body, f"<script>{_SCRIPT}</script></body></html>"]) + "\n"


def render(records: Sequence[Mapping], failures: Sequence[str], model: str,
           histogram_png: bytes) -> str:
  """The whole page: summary (flags, sortable volumes table, volume plot), then every scan."""
  e = html.escape
  reasons = flags(records)
  flagged = [n for n, r in reasons.items() if r]
  key = colour_key({report.CLASS_TITLES[c]: OVERLAY_RGBA[c] for c in OVERLAY_RGBA})
  parts = [
      f'<h1 id="top">Segmentation of {len(records)} scan(s)</h1>',
      f"<p>Model: <code>{e(model)}</code></p>",
  ]
  if failures:
    parts.append(f'<p class="flag">{len(failures)} scan(s) failed and have no outputs:</p><ul>'
                 + "".join(f"<li>{e(f)}</li>" for f in failures) + "</ul>")
  parts.append(f"<h2>Look at first ({len(flagged)})</h2>")
  parts.append("<ul>" + "".join(
      f'<li><a href="#{_anchor(n)}">{e(n)}</a>: {e("; ".join(reasons[n]))}</li>' for n in flagged)
      + "</ul>" if flagged else "<p>Nothing stands out: no stroke, no volume far from the cohort, "
      "no warning.</p>")
  extra = "[interval]" if records and "wmh_ml_low" in records[0]["volumes"] else "(expert)"
  headers = ["scan", f"WMH mL {extra}", "WMH lesions", "WMH % ICV", f"stroke mL {extra}",
             "stroke lesions", "stroke % ICV", "ICV mL", "flags"]
  parts.append('<h2>Volumes</h2><table id="volumes"><thead><tr>'
               + "".join(f'<th class="sort">{h}</th>' for h in headers) + "</tr></thead><tbody>")
  for record in records:
    row = record["volumes"]
    name = row["subject"]
    parts.append(
        f'<tr><td><a href="#{_anchor(name)}">{e(name)}</a></td>{_interval(row, "wmh")}'
        f'{_num(row["wmh_lesions"], 0)}{_num(row["wmh_pct_icv"], 3)}{_interval(row, "stroke")}'
        f'{_num(row["stroke_lesions"], 0)}{_num(row["stroke_pct_icv"], 3)}'
        f'{_num(row["icv_ml"], 0)}{_num(len(reasons[name]), 0)}</tr>')
  parts.append("</tbody></table>")
  encoded = base64.b64encode(histogram_png).decode()
  parts.append(f'<h2>Volume distribution</h2><img src="data:image/png;base64,{encoded}" '
               'alt="volume distribution">')
  parts += [_scan_section(r, reasons[r["volumes"]["subject"]]) for r in records]
  return page(f"Segmentation of {len(records)} scan(s)", key, parts)
