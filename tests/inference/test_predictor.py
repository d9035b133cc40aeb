"""The one prediction path: brain cropping, batching, TTA, native geometry, compilations, workdirs,
the one-call API and the docs/api.md page that shows it."""
import dataclasses
import re

import jax
import ml_collections
import nibabel as nib
import numpy as np
import pytest

from conftest import ROOT
from configs import tiny
from uresnet_jax import phantom
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess
from uresnet_jax.inference import config as predict_config, predictor
from uresnet_jax.model import checkpoints, sharding, uresnet
from uresnet_jax.phantom import config as phantom_config

INFO = predictor.ModelInfo(channels=("flair",), num_classes=3, inplane_mm=1.0, clip_low=-3.0,
                           config={})


def _options(**overrides) -> ml_collections.ConfigDict:
  options = predict_config.get_config()
  options.update(overrides)
  return options


def _threshold_forward(calls: list):
  """A 'model' that calls z > 0.75 WMH and z > 2 stroke, recording every batch shape it sees."""
  def forward(images: np.ndarray) -> np.ndarray:
    calls.append(images.shape)
    z = images[..., 0]
    label = (z > 0.75).astype(int) + (z > 2).astype(int)
    return np.eye(3, dtype=np.float32)[label]
  return forward


def _scan(affine: np.ndarray, shape=(48, 40, 10), seed=0) -> tuple[nifti_io.SubjectVolumes, np.ndarray]:
  """A skull-stripped scan: an ellipsoid brain with bright blobs (truth labels 1 and 2)."""
  rng = np.random.default_rng(seed)
  grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
  brain = (grid ** 2).sum(0) < 0.8
  truth = np.zeros(shape, np.uint8)
  truth[(grid[0] - 0.2) ** 2 + grid[1] ** 2 < 0.1] = 1
  truth[(grid[0] + 0.35) ** 2 + (grid[1] + 0.2) ** 2 < 0.04] = 2
  truth[~brain] = 0
  flair = np.where(brain, 100 + rng.normal(0, 2, shape) + 60 * (truth == 1) + 150 * (truth == 2), 0)
  volume = nifti_io.Volume(flair.astype(np.float32), affine)
  return nifti_io.SubjectVolumes("s", {"flair": volume}, None, None), truth


def test_brain_box_adds_margin_clips_and_rounds_up_to_the_bucket():
  mask = np.zeros((100, 90, 3), bool)
  mask[10:50, 5:20, 1] = True
  bx, by, size = predictor.brain_box(mask, margin=4, bucket=32)
  assert (bx, by) == (slice(0, 54), slice(0, 24))  # starts on the network's stride
  assert size == (64, 32)
  bx, by, size = predictor.brain_box(mask, margin=1, bucket=16)
  assert (bx, by, size) == (slice(8, 51), slice(0, 21), (48, 32))


def test_only_brain_slices_are_run_in_equal_batches_and_outside_is_background():
  calls = []
  model = predictor.Predictor(_threshold_forward(calls), INFO,
                              _options(batch_slices=4, bucket=16, crop_margin=4))
  image = np.full((40, 30, 9, 1), -3.0, np.float32)
  mask = np.zeros((40, 30, 9), bool)
  mask[5:25, 4:20, 2:7] = True  # 5 brain slices
  image[mask] = 0.0
  image[10:12, 8:10, 3] = 2.0  # WMH by the threshold
  image[30, 25, 3] = 2.0  # bright but outside the brain
  probs = model.grid_probabilities(image, mask)
  assert calls == [(4, 32, 32, 1)] * 2  # 5 slices in 2 batches of 4; 28 x 24 box -> 32 x 32
  labels = probs.argmax(-1)
  assert labels[10:12, 8:10, 3].tolist() == [[1, 1], [1, 1]]
  assert labels.sum() == 4 and labels[30, 25, 3] == 0
  np.testing.assert_allclose(probs.sum(-1), 1.0)


def test_tta_averages_the_flipped_predictions():
  def lopsided(images):  # not flip-equivariant: probability grows along the width axis
    w = images.shape[2]
    p1 = np.broadcast_to(np.linspace(0, 0.5, w, dtype=np.float32), images.shape[:3])
    return np.stack([1 - p1, p1, np.zeros_like(p1)], -1)

  image = np.zeros((16, 16, 2, 1), np.float32)
  mask = np.ones((16, 16, 2), bool)
  plain = predictor.Predictor(lopsided, INFO, _options(bucket=16, crop_margin=0))
  tta = predictor.Predictor(lopsided, INFO, _options(bucket=16, crop_margin=0, tta=True))
  p = plain.grid_probabilities(image, mask)[..., 1]
  q = tta.grid_probabilities(image, mask)[..., 1]
  np.testing.assert_allclose(q, (p + p[:, ::-1]) / 2, atol=1e-6)
  assert np.ptp(q) < 1e-6  # the left-right average of a linear ramp is flat


@pytest.mark.parametrize("axcodes", ["LPS", "SRA", "IAL"])
def test_non_canonical_anisotropic_scan_gets_labels_aligned_with_the_input(axcodes):
  zooms = (0.9, 0.9, 5.0)
  ras = np.diag([*zooms, 1.0])
  volumes, truth = _scan(ras)
  model = predictor.Predictor(_threshold_forward([]), INFO, _options(bucket=16))
  reference = model.predict(model.prepare(volumes))
  # the same scan stored in another voxel order: same world positions, permuted/flipped axes
  ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                         nib.orientations.axcodes2ornt(axcodes))
  data = nib.orientations.apply_orientation(volumes.channels["flair"].data, ornt)
  affine = ras @ nib.orientations.inv_ornt_aff(ornt, truth.shape)
  stored = nifti_io.SubjectVolumes("s", {"flair": nifti_io.Volume(data, affine)}, None, None)
  prediction = model.predict(model.prepare(stored))
  assert prediction.labels.shape == data.shape
  back, _ = preprocess.to_canonical(prediction.labels, affine)
  np.testing.assert_array_equal(back, reference.labels)
  # and the labels agree with the preprocessing round trip of the truth
  geometry = preprocess.make_geometry(truth.shape, ras)
  round_trip = preprocess.to_native(preprocess.to_grid(truth, geometry, order=0), geometry)
  predicted, expected = reference.labels > 0, round_trip > 0
  dice = 2 * (predicted & expected).sum() / (predicted.sum() + expected.sum())
  assert dice > 0.9, dice  # edge voxels differ: linear interpolation vs nearest
  # the stroke blob (bright, inside the brain) lands where it is: centroid within a tenth of a voxel
  shift = np.argwhere(reference.labels == 2).mean(0) - np.argwhere(truth == 2).mean(0)
  assert np.all(np.abs(shift) < 0.1), shift


def test_scan_smaller_than_the_stride_is_refused():
  volumes, _ = _scan(np.diag([1.0, 1.0, 3.0, 1.0]), shape=(6, 40, 4))
  model = predictor.Predictor(_threshold_forward([]), INFO, _options())
  with pytest.raises(InputError, match="stride"):
    model.prepare(volumes)


def test_unstripped_scan_without_mask_is_refused_with_how_to_fix():
  volumes, _ = _scan(np.diag([1.0, 1.0, 3.0, 1.0]))
  flair = volumes.channels["flair"]
  noisy = nifti_io.Volume(flair.data + 5.0, flair.affine)  # non-zero background: a whole head
  model = predictor.Predictor(_threshold_forward([]), INFO, _options())
  with pytest.raises(InputError, match="not skull-stripped.*--brain_mask"):
    model.prepare(nifti_io.SubjectVolumes("s", {"flair": noisy}, None, None))
  mask = nifti_io.Volume(flair.data > 0, flair.affine)
  model.prepare(nifti_io.SubjectVolumes("s", {"flair": noisy}, None, mask))  # a mask fixes it


@pytest.mark.slow
def test_one_compilation_per_shape_bucket_not_per_scan():
  config = tiny.get_config()
  model_def = uresnet.create_model(config.model)
  variables = model_def.init(jax.random.key(0), np.zeros((1, 32, 32, 1), np.float32), train=False)
  forward = predictor.flax_forward(model_def, sharding.create_mesh())
  model = predictor.Predictor(lambda x: forward(variables, x), INFO, _options(bucket=32),
                              counter=forward)
  sizes = [(40, 36, 6), (44, 40, 5), (46, 38, 7)]  # different scans, all in the 64x64 bucket
  for i, shape in enumerate(sizes):
    volumes, _ = _scan(np.diag([1.0, 1.0, 4.0, 1.0]), shape=shape, seed=i)
    labels = model.predict(model.prepare(volumes)).labels
    assert labels.shape == shape
  assert model.compilations == 1


def test_workdir_predictor_restores_parameters_not_optimiser_state(tiny_run):
  _, workdir, _, _ = tiny_run
  model, step = predictor.from_workdir(workdir)
  assert step > 0 and model.info.channels == ("flair",) and model.info.num_classes == 3
  import orbax.checkpoint as ocp
  saved = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "default")
  _, variables = checkpoints.restore_variables(workdir, predictor.read_run_config(workdir))
  assert set(variables) == {"params", "batch_stats"}
  jax.tree.map(np.testing.assert_array_equal, variables["params"], saved["params"])
  with pytest.raises(InputError, match="no config.json"):
    predictor.from_workdir(workdir / "checkpoints")
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert step == saved[-1]  # the last checkpoint: none is chosen by held-out Dice
  config = predictor.read_run_config(workdir)
  assert checkpoints.restore_variables(workdir, config, str(saved[0]))[0] == saved[0]
  with pytest.raises(InputError, match="choose latest or one of the saved steps"):
    predictor.from_workdir(workdir, "best")


def test_stroke_threshold_drops_hesitant_stroke_and_is_checked():
  def hesitant(images):  # z > 2: stroke at probability 0.6, else background
    p = np.where(images[..., 0] > 2, 0.6, 0.0).astype(np.float32)
    return np.stack([1 - p, np.zeros_like(p), p], -1)

  image = np.zeros((16, 16, 2, 1), np.float32)
  image[4:8, 4:8, 1] = 3.0
  mask = np.ones((16, 16, 2), bool)
  for threshold, strokes in ((0.0, 16), (0.5, 16), (0.7, 0)):
    model = predictor.Predictor(hesitant, INFO, _options(bucket=16, stroke_threshold=threshold))
    labels, candidates = model.confident_labels(model.grid_probabilities(image, mask))
    assert (labels == 2).sum() == strokes and candidates.sum() == 16 - strokes
  with pytest.raises(InputError, match="stroke_threshold"):
    predictor.Predictor(hesitant, INFO, _options(stroke_threshold=1.5))


def test_one_call_predicts_an_array_or_a_file_as_the_prediction_path_does(tmp_path):
  volumes, _ = _scan(np.diag([0.9, 0.9, 5.0, 1.0]))
  flair = volumes.channels["flair"]
  model = predictor.Predictor(_threshold_forward([]), INFO, _options(bucket=16))
  expected = model.predict(model.prepare(volumes)).labels
  assert (expected == 2).any() and (expected == 1).any()
  np.testing.assert_array_equal(model.predict_array(flair.data, flair.affine).labels, expected)
  nifti_io.save_nifti(tmp_path / "scan.nii.gz", flair.data, flair.affine)
  from_file = model.predict_file(tmp_path / "scan.nii.gz")
  stored = nib.load(tmp_path / "scan.nii.gz")  # its header holds the affine in float32
  assert from_file.subject == "scan" and from_file.labels.shape == expected.shape
  np.testing.assert_array_equal(
      from_file.labels, model.predict_array(stored.get_fdata(), stored.affine).labels)
  head = np.where(flair.data > 0, flair.data, 5.0)  # not skull-stripped: a brain mask is needed
  with pytest.raises(InputError, match="not skull-stripped"):
    model.predict_array(head, flair.affine)
  np.testing.assert_array_equal(
      model.predict_array(head, flair.affine, brain_mask=flair.data > 0).labels, expected)
  with pytest.raises(InputError, match="brain_mask: shape"):
    model.predict_array(flair.data, flair.affine, brain_mask=np.ones((4, 4, 4), bool))
  damaged = flair.data.copy()
  damaged[0, 0, 0] = np.nan
  with pytest.raises(InputError, match="flair: 1 NaN or Inf"):
    model.predict_array(damaged, flair.affine)
  with pytest.raises(InputError, match="unknown channel.*T1: choose from t1, wm"):
    model.predict_array(flair.data, flair.affine, T1=flair.data)
  two = predictor.Predictor(_threshold_forward([]),
                            dataclasses.replace(INFO, channels=("flair", "t1")), _options())
  with pytest.raises(InputError, match="needs the t1 channel"):
    two.predict_array(flair.data, flair.affine)
  with pytest.raises(InputError, match="file not found"):
    model.predict_file(tmp_path / "none.nii.gz")


@pytest.mark.slow
def test_the_api_page_runs_as_written(tmp_path, monkeypatch):
  """docs/api.md's code, block after block, on a small phantom scan with the bundled model: the
  page cannot go stale."""
  config = phantom_config.get_config()
  config.num_workers = 1
  config.protocols, config.protocol_weights = ((1.0, 1.0, 8.0),), (1.0,)  # few slices: quick
  phantom.write_cohort(tmp_path, 1, 11, config)
  monkeypatch.chdir(tmp_path / "sub-000")  # flair.nii.gz and brain_mask.nii.gz, as the page says
  shape = nib.load("flair.nii.gz").shape
  page = (ROOT / "docs" / "api.md").read_text()
  blocks = re.findall(r"^```python\n(.*?)^```$", page, re.S | re.M)
  namespace, predictions = {}, []
  for block in blocks:
    exec(compile(block, "docs/api.md", "exec"), namespace)
    latest = namespace.get("prediction")
    if latest is not None and all(latest is not p for p in predictions):
      predictions.append(latest)
  assert len(blocks) == 3 and len(predictions) == 2  # an array, then a file
  for prediction in predictions:
    assert prediction.labels.shape == shape and prediction.labels.dtype == np.uint8
    assert prediction.probabilities.shape == (*shape, 3)
    assert set(np.unique(prediction.labels)) <= {0, 1, 2}
  np.testing.assert_array_equal(predictions[0].labels, predictions[1].labels)
  saved = nib.load("flair_labels.nii.gz")
  np.testing.assert_array_equal(np.asarray(saved.dataobj), predictions[1].labels)
  np.testing.assert_allclose(saved.affine, nib.load("flair.nii.gz").affine)
