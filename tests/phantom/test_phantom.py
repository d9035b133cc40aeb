"""Tests for the phantom cohort generator: format, realism table (docs/cohorts.md), truth, CLI."""
import csv
import hashlib
import json
import pathlib
import shutil

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.phantom import config as phantom_config
from uresnet_jax.phantom.realism import realism_stats
from conftest import run_module

SEED = 0
SUBJECTS = 3

# docs/cohorts.md, calibration targets: measured on real clinical 2D FLAIR with manual WMH masks (skull-stripped, z-scored
# inside the brain mask, native grid). Checked per subject, except the two component statistics,
# checked on the cohort's median subject.
PER_SUBJECT = {
    "wmh_mean_z": (1.8, 2.1),
    "wmh_p10_z": (1.1, 1.3),
    "brain_p99_z": (1.3, 1.9),
    "load_pct": (0.9, 8.5),
    "largest_ml": (2.0, 130.0),
}
COHORT_MEDIAN = {
    "components": (10, 80),
    "median_component_mm3": (25.0, 50.0),
}


def _config():
  config = phantom_config.get_config()
  config.num_workers = 1  # in-process: no worker start-up in a short test
  config.stroke_probability = 1.0  # every subject has a stroke
  return config


def _digest(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
  root = tmp_path_factory.mktemp("phantom")
  manifest = phantom.write_cohort(root, SUBJECTS, SEED, _config())
  rows = list(csv.DictReader(manifest.open()))
  subjects = []
  for row in rows:
    images = {k: nib.load(root / row[k]) for k in phantom.IMAGE_COLUMNS}
    arrays = {k: np.asarray(v.dataobj) for k, v in images.items()}
    subjects.append(dict(row=row, images=images, arrays=arrays))
  return dict(root=root, manifest=manifest, rows=rows, subjects=subjects)


def test_manifest_format(cohort):
  assert cohort["manifest"] == cohort["root"] / "subjects.csv"
  header = next(csv.reader(cohort["manifest"].open()))
  assert header == ["subject", *phantom.IMAGE_COLUMNS, *phantom.CLINICAL_COLUMNS]
  assert [r["subject"] for r in cohort["rows"]] == ["sub-000", "sub-001", "sub-002"]
  for row in cohort["rows"]:
    for key in phantom.IMAGE_COLUMNS:
      assert row[key] == f"{row['subject']}/{key}.nii.gz"
    assert row["sex"] in ("F", "M")
    assert 0 <= int(row["fazekas_pv"]) <= 3 and 0 <= int(row["fazekas_deep"]) <= 3
    assert 0 <= int(row["mmse"]) <= 30
    assert 1000 < float(row["icv_ml"]) < 2000
  assert not list(cohort["root"].glob(".tmp-*")) and not list(cohort["root"].glob("*/.tmp-*"))


def test_volumes_share_a_realistic_geometry(cohort):
  protocols = {phantom.protocol_name(p) for p in phantom_config.get_config().protocols}
  for subject in cohort["subjects"]:
    images, arrays = subject["images"], subject["arrays"]
    zooms = images["flair"].header.get_zooms()
    assert subject["row"]["protocol"] == phantom.protocol_name(np.round(zooms, 2))
    assert subject["row"]["protocol"] in protocols
    assert zooms[2] > zooms[0] == zooms[1]  # anisotropic: thick axial slices
    assert not np.allclose(images["flair"].affine, np.eye(4))
    for key, image in images.items():
      np.testing.assert_allclose(image.affine, images["flair"].affine, atol=1e-5, err_msg=key)
      assert image.shape == images["flair"].shape, key
    assert nib.aff2axcodes(images["flair"].affine)[2] in ("S", "I")
    assert arrays["labels"].dtype == np.uint8 and set(np.unique(arrays["labels"])) <= {0, 1, 2}
    brain = arrays["brain_mask"] > 0
    flair = arrays["flair"]
    assert flair.dtype == np.int16 and flair.min() >= 0 and not flair[~brain].any()
    assert not arrays["labels"][~brain].any()
    assert 0 <= arrays["wm"].min() and arrays["wm"].max() <= 1 and not arrays["wm"][~brain].any()


def test_strokes_when_forced(cohort):
  truth = json.loads((cohort["root"] / phantom.GENERATIVE_MODEL).read_text())["subjects"]
  for subject in cohort["subjects"]:
    row = subject["row"]
    assert truth[row["subject"]]["strokes_placed"] != "none"
    has_stroke = bool((subject["arrays"]["labels"] == 2).any())
    assert has_stroke == (float(row["stroke_ml"]) > 0) == (row["stroke_type"] != "none")
  assert any(s["row"]["stroke_type"] != "none" for s in cohort["subjects"])


def test_realism_table(cohort):
  stats = [realism_stats(s["arrays"]["flair"].astype(np.float64), s["arrays"]["labels"],
                         s["arrays"]["brain_mask"], s["images"]["flair"].header.get_zooms())
           for s in cohort["subjects"]]
  for subject, stat in zip(cohort["rows"], stats):
    for key, (lo, hi) in PER_SUBJECT.items():
      assert lo <= stat[key] <= hi, (subject["subject"], subject["protocol"], key, stat[key])
  for key, (lo, hi) in COHORT_MEDIAN.items():
    median = float(np.median([s[key] for s in stats]))
    assert lo <= median <= hi, (key, median, [s[key] for s in stats])


def test_generative_model_json_is_the_truth(cohort):
  truth = json.loads((cohort["root"] / phantom.GENERATIVE_MODEL).read_text())
  config = _config()
  model = truth["wmh_model"]
  assert model["intercept"] == config.wmh_model.intercept
  assert model["coefficients"]["smoking"] == 0 and "smoking" in model["null_effects"]
  assert {"age_per_decade", "hypertension"} <= set(model["true_effects"])
  assert truth["mmse_model"]["wmh_pct"] < 0
  for row in cohort["rows"]:
    latent = truth["subjects"][row["subject"]]
    risk = dict(age=float(row["age"]), male=int(row["sex"] == "M"),
                hypertension=int(row["hypertension"]), sbp=int(row["sbp"]),
                diabetes=int(row["diabetes"]), smoking=int(row["smoking"]))
    covariates = phantom.wmh_covariates(risk)
    expected = model["intercept"] + sum(model["coefficients"][k] * v for k, v in covariates.items())
    assert latent["wmh_linear_predictor"] == pytest.approx(expected)
    target = float(np.clip(np.exp(expected + latent["wmh_residual"]), *model["clip_pct"]))
    assert latent["target_wmh_pct_icv"] == pytest.approx(target)
    generated = 100 * float(row["wmh_ml"]) / float(row["icv_ml"])
    assert latent["generated_wmh_pct_icv"] == pytest.approx(generated, rel=1e-3)
    assert 0.7 < generated / target < 1.1  # the lesion generator hits the target approximately


def test_smoking_has_no_effect_and_age_does():
  config = phantom_config.get_config()
  rng = np.random.default_rng(0)
  for _ in range(50):
    risk = phantom.sample_risk_factors(rng, config)
    smoker = dict(risk, smoking=1 - risk["smoking"])
    older = dict(risk, age=risk["age"] + 10)
    predictor = phantom.wmh_linear_predictor(risk, config.wmh_model)
    assert phantom.wmh_linear_predictor(smoker, config.wmh_model) == predictor
    assert phantom.wmh_linear_predictor(older, config.wmh_model) > predictor


def test_fazekas_increases_with_wmh_volume(cohort):
  config = phantom_config.get_config()
  for thresholds in (config.fazekas_pv_ml, config.fazekas_deep_ml):
    scores = [phantom.fazekas(v, thresholds) for v in np.linspace(0, 200, 401)]
    assert scores[0] == 0 and scores[-1] == 3 and np.all(np.diff(scores) >= 0)
  truth = json.loads((cohort["root"] / phantom.GENERATIVE_MODEL).read_text())["subjects"]
  for kind, column in (("periventricular_ml", "fazekas_pv"), ("deep_ml", "fazekas_deep")):
    pairs = sorted((truth[r["subject"]][kind], int(r[column])) for r in cohort["rows"])
    assert [s for _, s in pairs] == sorted(s for _, s in pairs)


def test_interrupted_run_resumes_deterministically(cohort, tmp_path):
  root = tmp_path / "cohort"
  shutil.copytree(cohort["root"], root)
  before = {p.relative_to(root): _digest(p) for p in root.rglob("*") if p.is_file()}
  # A run killed while writing subject 1: its folder is still temporary, no manifest yet.
  (root / "subjects.csv").unlink()
  shutil.move(root / "sub-001", root / ".tmp-sub-001")
  (root / ".tmp-sub-001" / "labels.nii.gz").write_bytes(b"truncated")
  stamp = (root / "sub-000" / "flair.nii.gz").stat().st_mtime_ns
  # Rerun as a smaller cohort: subject i depends on (seed, i) only.
  manifest = phantom.write_cohort(root, 2, SEED, _config())
  assert list(csv.DictReader(manifest.open())) == cohort["rows"][:2]
  phantom.write_cohort(root, SUBJECTS, SEED, _config())  # complete: nothing left to generate
  after = {p.relative_to(root): _digest(p) for p in root.rglob("*") if p.is_file()}
  assert after == before  # subject 1 regenerated byte for byte, same manifest, no leftovers
  assert (root / "sub-000" / "flair.nii.gz").stat().st_mtime_ns == stamp  # complete: kept


@pytest.mark.parametrize("key, value", [("noise_std", (0.05, 0.01)), ("stroke_probability", 1.5),
                                        ("orientation", "RAR"), ("num_workers", 0),
                                        ("protocol_weights", (1.0, 1.0)),
                                        ("voxel_noise", (-0.05, 0.1)),
                                        ("sulci_depth_mm", (-1.0, 5.0)),
                                        ("tissue_sharpening", (0.5, 1.5)),
                                        ("juxtaventricular_probability", 1.5),
                                        ("infratentorial_probability", -0.1)])
def test_bad_config_is_an_input_error(key, value):
  config = phantom_config.get_config()
  config[key] = value
  with pytest.raises(InputError, match=key):
    phantom.validate_config(config)


@pytest.mark.parametrize("flag", ["--subjects=0", "--subjects=-2", "--subjects=many",
                                  "--config.noise_std=(0.05,0.01)"])
def test_cli_bad_flag_is_one_line_error(flag, tmp_path):
  out = tmp_path / "cohort"
  result = run_module("phantom", f"--out={out}", flag, timeout=60, PYTHONWARNINGS="ignore")
  assert result.returncode == 1
  assert result.stderr.startswith("error: "), result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert not out.exists()


def test_artefacts_zero_is_identity_and_each_acts():
  from uresnet_jax.phantom.acquisition import artefacts
  image = np.zeros((32, 32, 2), np.float32)
  image[8:24, 8:24] = 1.0  # a bright square: edges for blur and ringing
  zooms = (1.0, 1.0, 5.0)
  assert artefacts(image, zooms, 0.0, 0.0, 0.0, 0.3) is image
  blurred = artefacts(image, zooms, 1.5, 0.0, 0.0, 0.3)
  assert 0.1 < blurred[8, 16, 0] < 0.9 and blurred.sum() == pytest.approx(image.sum(), rel=1e-4)
  ringing = artefacts(image, zooms, 0.0, 0.5, 0.0, 0.3)
  assert ringing[16, :, 0].max() > 1.05  # Gibbs overshoot along the phase axis only
  np.testing.assert_array_equal(ringing[:, 16, 0] > 0.5, image[:, 16, 0] > 0.5)
  ghost = artefacts(image, zooms, 0.0, 0.0, 0.1, 0.5)
  assert ghost[16, 0, 0] == pytest.approx(0.1)  # a copy shifted by half the field of view


def _release_phantom():
  from configs import release
  config = release.get_config()
  config.phantom.num_workers = 1
  return config


@pytest.mark.slow
def test_randomisation_ranges_are_honoured():
  """Drawn values lie in their ranges, and each knob shows in the generated volumes."""
  config = _release_phantom().phantom
  subjects = [phantom.generate_subject(i, 3, config) for i in range(2)]
  for s in subjects:
    truth, zooms = s["truth"], [float(z) for z in s["clinical"]["protocol"].split("x")]
    for key, knob in (("lesion_intensity", "lesion_intensity"), ("flair_csf", "flair_csf"),
                      ("flair_gm", "flair_gm"), ("deformation_mm", "deformation_mm"),
                      ("dr_rim", "edge_rim"), ("dr_blur", "blur_mm"), ("dr_ringing", "ringing"),
                      ("dr_ghosting", "ghosting"), ("dr_sulci", "sulcal_widening_mm")):
      lo, hi = config[knob]
      assert lo <= truth[key] <= hi, (key, truth[key])
    assert config.random_inplane_mm[0] <= zooms[0] <= config.random_inplane_mm[1]
    assert config.random_thickness_mm[0] <= zooms[2] <= config.random_thickness_mm[1]
    assert truth["dr_orientation"] in config.orientations
    codes = "".join(nib.aff2axcodes(s["affine"]))
    assert codes == truth["dr_orientation"]
  # Lesion contrast follows lesion_intensity: fixed low and high, same subject otherwise.
  means = []
  for value in ((1.2, 1.2), (2.8, 2.8)):
    config.lesion_intensity = value
    s = phantom.generate_subject(0, 3, config)
    brain, wmh = s["brain_mask"] > 0, s["labels"] == 1
    means.append(realism_stats(s["flair"], s["labels"], s["brain_mask"], (1, 1, 1))["wmh_mean_z"])
    assert wmh.any() and brain.any()
  assert means[1] > means[0] + 0.5, means
  # Poor CSF suppression makes the ventricles brighter, sulcal widening the brain darker.
  csf = []
  for value in ((0.05, 0.05), (0.6, 0.6)):
    config.flair_csf = value
    s = phantom.generate_subject(0, 3, config)
    flair = s["flair"][s["brain_mask"] > 0].astype(float)
    csf.append(np.percentile(flair, 2))
  assert csf[1] > csf[0] + 100, csf  # stored as relative intensity x 1000


def test_voxel_noise_zero_draws_nothing_and_otherwise_has_its_std():
  from uresnet_jax.phantom.acquisition import voxel_noise
  image = np.ones((64, 64, 4), np.float32)
  rng = np.random.default_rng(0)
  assert voxel_noise(rng, image, 0.0) is image
  assert rng.uniform() == np.random.default_rng(0).uniform()  # no draw: the stream is untouched
  noisy = voxel_noise(np.random.default_rng(0), image, 0.1)
  assert noisy.dtype == np.float32 and noisy.shape == image.shape
  assert noisy.std() == pytest.approx(0.1, rel=0.05)
  assert noisy.mean() == pytest.approx(1.005, abs=0.003)  # Rician: a small lift at this SNR
  lag = np.corrcoef(noisy[:-1].ravel(), noisy[1:].ravel())[0, 1]
  assert abs(lag) < 0.05  # independent at each voxel, not smoothed as noise_std's is


@pytest.mark.slow
def test_voxel_noise_changes_the_scans_alone():
  """The same subject with and without per-voxel noise: labels, mask and geometry are the same
  bits (the knob draws from a stream of its own), the FLAIR is grainier by about the knob's std."""
  config = _config()
  config.protocols, config.protocol_weights = ((1.0, 1.0, 5.0),), (1.0,)
  config.stroke_probability = 0.0
  plain = phantom.generate_subject(0, 4, config)
  config.voxel_noise = (0.1, 0.1)
  noisy = phantom.generate_subject(0, 4, config)
  for key in ("labels", "brain_mask", "wm", "affine"):
    np.testing.assert_array_equal(noisy[key], plain[key])
  assert plain["truth"]["voxel_noise"] == 0.0 and noisy["truth"]["voxel_noise"] == 0.1
  brain = plain["brain_mask"] > 0
  difference = noisy["flair"][brain].astype(float) - plain["flair"][brain].astype(float)
  assert 0.08 * 1000 < difference.std() < 0.12 * 1000  # stored as relative intensity x 1000


def test_carve_sulci_cuts_lined_csf_clefts_near_the_surface_only():
  import types
  from uresnet_jax.phantom.anatomy import FAR_MM, carve_sulci
  from uresnet_jax.phantom.fields import Grid
  grid = Grid((48, 48, 48), np.zeros(3), np.ones(3))
  centre = np.indices(grid.shape) - 23.5
  radius = np.sqrt((centre**2).sum(0))
  mask = (radius < 20).astype(np.float32)

  def canvas():
    return types.SimpleNamespace(grid=grid, mask=mask, wm=mask.copy(), gm=np.zeros_like(mask),
                                 vdist=np.full_like(mask, FAR_MM))
  plain, rng = canvas(), np.random.default_rng(0)
  carve_sulci(rng, plain, 0.0, 3.0, 8.0)
  assert np.array_equal(plain.wm, mask) and not plain.gm.any()
  assert rng.uniform() == np.random.default_rng(0).uniform()  # no draw: the stream is untouched
  cv = canvas()
  carve_sulci(np.random.default_rng(0), cv, 8.0, 3.0, 8.0)
  tissue = cv.gm + cv.wm
  assert np.all(tissue <= mask + 1e-6)
  shell, deep = (radius < 20) & (radius > 17), radius < 11  # outer 3 mm, deeper than 8 mm
  assert 0.05 < (tissue[shell] < 0.5).mean() < 0.6  # clefts cut the surface, not all of it
  np.testing.assert_array_equal(tissue[deep], mask[deep])  # nothing deeper than depth_mm
  cleft = (tissue < 0.5) & (mask > 0)
  lining = ndimage.binary_dilation(cleft, iterations=2) & ~cleft & (mask > 0)
  assert cv.gm[lining].mean() > 0.5  # grey matter lines the banks
  assert cv.gm[deep].max() == 0


def test_sharpen_tissue_makes_grey_white_boundaries_crisp_and_keeps_the_csf():
  import types
  from uresnet_jax.phantom.anatomy import sharpen_tissue
  share = np.linspace(0.0, 1.0, 101, dtype=np.float32)[:, None, None]  # a blurred boundary
  tissue = np.full((101, 1, 1), 0.9, np.float32)  # 10 % CSF everywhere

  def canvas():
    return types.SimpleNamespace(gm=share * tissue, wm=(1 - share) * tissue)
  plain = canvas()
  sharpen_tissue(plain, 0.0)
  np.testing.assert_array_equal(plain.gm, share * tissue)
  half, full = canvas(), canvas()
  sharpen_tissue(half, 0.5)
  sharpen_tissue(full, 1.0)
  for cv in (half, full):
    np.testing.assert_allclose(cv.gm + cv.wm, tissue, atol=1e-6)  # the CSF is unchanged
    assert np.all(np.diff(cv.gm[:, 0, 0]) >= 0)  # still a boundary, in the same place
  blend = ((share > 0.1) & (share < 0.9)).mean()  # voxels between 10 % and 90 % grey
  crisp = ((full.gm / tissue > 0.1) & (full.gm / tissue < 0.9)).mean()
  halfway = ((half.gm / tissue > 0.1) & (half.gm / tissue < 0.9)).mean()
  assert crisp < 0.25 * blend and crisp < halfway < blend  # 10-90 %: 0.18 of the ramp, not 0.8
  np.testing.assert_allclose(full.gm[50] / tissue[50], 0.5, atol=1e-6)  # the midpoint stays


def test_anatomy_from_the_cache_is_the_derived_one(tmp_path, monkeypatch):
  import dataclasses
  from uresnet_jax.phantom import anatomy
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  derived = anatomy.load_anatomy.__wrapped__()  # derives and writes the cache
  cached, = (tmp_path / "uresnet_jax").glob("mni152_anatomy_*.npz")
  monkeypatch.setattr(anatomy, "derive_anatomy", lambda: pytest.fail("derived again"))
  loaded = anatomy.load_anatomy.__wrapped__()
  for field in dataclasses.fields(anatomy.Anatomy):
    a, b = getattr(derived, field.name), getattr(loaded, field.name)
    assert a.dtype == b.dtype and np.array_equal(a, b), field.name
  cached.write_bytes(b"not a zip")  # a damaged cache is derived again and rewritten, not read
  calls = []
  monkeypatch.setattr(anatomy, "derive_anatomy", lambda: calls.append(1) or derived)
  assert anatomy.load_anatomy.__wrapped__() is derived and calls == [1]
  assert np.array_equal(np.load(cached)["vdist"], derived.vdist)
