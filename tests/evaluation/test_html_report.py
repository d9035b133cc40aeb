"""report.html: the pure parts (flags, warnings, lesion -> slice) and the page as headless
Chromium renders it for a small synthetic cohort: every scan there, images decoded, the overlay
switched by a click, a sortable table, lesion links, no console error."""
import pathlib

import numpy as np
import pytest
from PIL import Image

from browser import Browser, look_at_report, rect
from uresnet_jax.common import labelling
from uresnet_jax.evaluation import html_report, prediction_report
from uresnet_jax.inference import lesions

AFFINE = np.diag([1.0, 1.0, 3.0, 1.0])


def _ball(shape, centre, radius) -> np.ndarray:
  grid = np.indices(shape).astype(float)
  return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius)) <= 1


def _scan(folder: pathlib.Path, name: str, wmh: bool, stroke: bool) -> dict:
  """A record as predict writes it, for a 40x48x10 synthetic head with optional lesions."""
  shape = (40, 48, 10)
  brain = _ball(shape, (20, 24, 5), (16, 20, 6))
  image = np.where(brain, 100.0, 0.0) + np.random.default_rng(0).normal(0, 5, shape) * brain
  labels = np.zeros(shape, np.uint8)
  if wmh:
    labels[_ball(shape, (14, 24, 4), (3, 3, 1.2))] = 1
  if stroke:
    labels[_ball(shape, (27, 30, 6), (2, 2, 0.6))] = 2
  image[labels > 0] = 200.0
  probabilities = np.eye(3, dtype=np.float32)[labels]
  rows = lesions.lesion_rows(name, labels, probabilities, np.zeros(shape, np.uint8), AFFINE, 0.2)
  slices = html_report.slice_images(folder / "qc" / name, image, labels, brain, 3)
  ml = {c: float((labels == k).sum()) * labelling.voxel_volume_ml(AFFINE)
        for c, k in labelling.CLASSES.items()}
  volumes = {"subject": name, "icv_ml": 1400.0, "icv_source": "skull-stripped scan",
             "input": f"{name}.nii.gz", "excluded_ml": 0.0}
  for c in labelling.CLASSES:
    volumes.update({f"{c}_ml": ml[c], f"{c}_ml_low": ml[c] * 0.9, f"{c}_ml_high": ml[c] * 1.1,
                    f"{c}_lesions": sum(r["class"] == c for r in rows),
                    f"{c}_pct_icv": 100 * ml[c] / 1400})
  volumes.update(lesions.by_location(rows))
  return {"volumes": volumes, "lesions": rows,
          "review": {"slices": [{**s, "image": f"qc/{name}/{s['image']}",
                                 "overlay": f"qc/{name}/{s['overlay']}"} for s in slices],
                     "lesion_slices": html_report.lesion_slices(rows, AFFINE),
                     "warnings": html_report.scan_warnings(brain, AFFINE, 0.0)}}


@pytest.fixture(scope="module")
def cohort_report(tmp_path_factory) -> tuple[pathlib.Path, list[dict]]:
  folder = tmp_path_factory.mktemp("report")
  records = [_scan(folder, "sub-001", True, True), _scan(folder, "sub-002", True, False),
             _scan(folder, "sub-003", False, False)]
  prediction_report.volume_histograms(folder / "volumes.png", {
      c: np.array([r["volumes"][f"{c}_ml"] for r in records]) for c in labelling.CLASSES})
  (folder / "report.html").write_text(html_report.render(
      records, ["bad.nii.gz: not a NIfTI file"], "model", (folder / "volumes.png").read_bytes()))
  return folder / "report.html", records


def test_lesion_slices_hold_their_lesion_and_scans_without_lesions_get_a_mosaic(cohort_report):
  path, records = cohort_report
  first = records[0]
  shown = {s["z"] for s in first["review"]["slices"]}
  assert set(first["review"]["lesion_slices"].values()) <= shown
  assert {s["z"] for s in records[2]["review"]["slices"]}  # no lesion: spread slices instead
  for s in first["review"]["slices"]:
    overlay = np.asarray(Image.open(path.parent / s["overlay"]))
    assert overlay.shape[2] == 4 and overlay[..., 3].any()  # a slice with lesion shows it


def test_each_scan_shows_its_volumes_by_location(cohort_report):
  page, records = cohort_report
  text = page.read_text()
  assert text.count('<table class="locations">') == len(records)
  row = records[0]["volumes"]  # zones all zero: every lesion deep
  assert (f"<tr><td>deep</td><td>{row['wmh_ml']:.2f} ({row['wmh_lesions']})</td>"
          f"<td>{row['stroke_ml']:.2f} ({row['stroke_lesions']})</td></tr>") in text
  assert "<tr><td>periventricular</td><td>0.00 (0)</td><td>0.00 (0)</td></tr>" in text


def test_flags_stroke_outliers_and_warnings():
  def record(name, wmh, stroke=0.0, warnings=()):
    return {"volumes": {"subject": name, "wmh_ml": wmh, "stroke_ml": stroke, "icv_ml": 1400.0},
            "review": {"warnings": list(warnings)}}
  records = [record(f"s{i}", 10.0 + i) for i in range(6)] + [
      record("big", 300.0), record("stroke", 12.0, 2.5), record("cut", 11.0, 0.0, ["cut off"])]
  flags = html_report.flags(records)
  assert flags["s0"] == [] and flags["big"] == ["WMH far from the cohort"]
  assert flags["stroke"] == ["stroke 2.50 mL"] and flags["cut"] == ["cut off"]


def test_scan_warnings():
  brain = np.zeros((10, 10, 12), bool)
  brain[2:8, 2:8, 0:5] = True  # touches the first slice; 5 slices of 3 mm
  warnings = html_report.scan_warnings(brain, AFFINE, 1.5)
  assert any("cut off" in w for w in warnings) and any("15 mm" in w for w in warnings)
  assert any("1.5 mL excluded" in w for w in warnings)
  brain[:] = False
  brain[2:8, 2:8, 2:10] = True
  assert html_report.scan_warnings(brain, np.diag([1.0, 1.0, 20.0, 1.0]), 0.0) == []


def test_the_page_in_a_browser(cohort_report):
  path, records = cohort_report
  with Browser() as browser:
    seen = look_at_report(browser, path)
    assert [s["name"] for s in seen["scans"]] == [r["volumes"]["subject"] for r in records]
    for scan, record in zip(seen["scans"], records):
      assert scan["height"] > 300 and scan["images"] == 2 * len(record["review"]["slices"])
      assert scan["decoded"] == scan["images"]
      assert scan["lesions"] == len(record["lesions"])
    changed = np.abs(seen["with_overlay"].astype(int) - seen["without_overlay"]).sum(-1) > 30
    assert changed.mean() > 0.001, "switching the overlay off changed no pixel"
    np.testing.assert_array_equal(seen["overlay_again"], seen["with_overlay"])
    # sorting by WMH volume (a click on the header) orders the rows by it, then the other way
    header = rect(browser, "#volumes th:nth-child(2)")
    wmh = {r["volumes"]["subject"]: r["volumes"]["wmh_ml"] for r in records}
    for descending in (False, True):
      browser.click(header["x"] + 5, header["y"] + 5)
      order = browser.evaluate("[...document.querySelectorAll('#volumes tbody tr')]"
                               ".map(r => r.cells[0].innerText)")
      assert order == sorted(wmh, key=wmh.get, reverse=descending)
    # a click on a slice switches its overlay alone
    view = rect(browser, "section.scan figure .view")
    browser.click(view["x"] + 10, view["y"] + 10)
    assert browser.evaluate("[...document.querySelectorAll('figure')].map(f => "
                            "f.classList.contains('off')).filter(Boolean).length") == 1
    # a lesion's link brings its slice into view
    link = rect(browser, "section.scan tbody a")
    browser.click(link["x"] + 3, link["y"] + 3)
    target = browser.evaluate("(() => { const e = document.querySelector(':target');"
                              " const r = e.getBoundingClientRect();"
                              " return [e.id, r.top >= 0 && r.top < innerHeight]; })()")
    z = records[0]["review"]["lesion_slices"]["1"]
    assert target == [f"scan-sub-001-z{z}", True]
    assert seen["errors"] == [] and browser.errors() == []

