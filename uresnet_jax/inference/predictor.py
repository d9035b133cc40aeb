"""The one prediction path: preprocessing -> whole-slice inference -> the scan's native grid.

A `Predictor` wraps a forward function (a batch of whole slices -> class probabilities) made from a
training workdir (`from_workdir`), a live training state (`flax_forward`, used by the training
loop) or an exported artifact (`from_artifact`). The training loop's evaluation, `evaluate
--workdir` and `predict` all call it, so there is one set-up and one result.

Inference runs only on slices that hold brain, cropped to the brain's in-plane bounding box plus a
margin and padded up to multiples of `bucket`: the model sees few distinct shapes (one compilation
per bucket, not per scan) and a fraction of the field of view.
"""
import dataclasses
import os
import pathlib
from typing import Any, Callable, Mapping

import ml_collections
import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import nifti_io, preprocess, scan_inputs
from uresnet_jax.inference import config as predict_config
from uresnet_jax.inference import lesions
from uresnet_jax.model import run_folder

NETWORK_STRIDE = 8  # three 2x2 poolings
# The bundled release model (configs/release.py; its model card is MODEL_CARD.md beside it): what
# `predict` and `finetune` use when no --model is given.
BUNDLED_MODEL = pathlib.Path(__file__).resolve().parents[1] / "release_model"
Forward = Callable[[np.ndarray], np.ndarray]  # (B, H, W, C) float32 -> (B, H, W, K) probabilities


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What a caller must know of a model, wherever it comes from."""
  channels: tuple[str, ...]
  num_classes: int
  inplane_mm: float
  clip_low: float
  config: Mapping[str, Any]  # the training config, as JSON-able dicts


def model_info(config: ml_collections.ConfigDict) -> ModelInfo:
  return ModelInfo(channels=tuple(config.data.channels), num_classes=int(config.model.num_classes),
                   inplane_mm=float(config.preprocess.inplane_mm),
                   clip_low=float(config.preprocess.clip_low), config=config.to_dict())


@dataclasses.dataclass(frozen=True)
class Prediction:
  subject: str
  labels: np.ndarray  # uint8 on the native grid, in the native voxel order
  probabilities: np.ndarray  # float32 (X, Y, Z, K) on the native grid (nearest grid voxel)
  prepared: preprocess.Prepared
  stroke_candidates: np.ndarray  # bool: argmax stroke below options.stroke_threshold (label 0)


def brain_box(mask: np.ndarray, margin: int, bucket: int) -> tuple[slice, slice, tuple[int, int]]:
  """The in-plane bounding box of `mask` (X, Y, Z) plus `margin`, clipped to the image, and the
  padded (H, W) it is run at: each side rounded up to a multiple of `bucket` (itself of 8).

  The box starts at a multiple of the network's stride, so every voxel keeps its place in the
  pooling grid of a whole-slice pass and the crop changes no prediction away from its edges."""
  xs = np.flatnonzero(mask.any(axis=(1, 2)))
  ys = np.flatnonzero(mask.any(axis=(0, 2)))
  x0 = max(0, xs[0] - margin) // NETWORK_STRIDE * NETWORK_STRIDE
  y0 = max(0, ys[0] - margin) // NETWORK_STRIDE * NETWORK_STRIDE
  x1, y1 = min(mask.shape[0], xs[-1] + 1 + margin), min(mask.shape[1], ys[-1] + 1 + margin)
  size = tuple(int(-(-n // bucket) * bucket) for n in (x1 - x0, y1 - y0))
  return slice(int(x0), int(x1)), slice(int(y0), int(y1)), size


class Predictor:
  """Preprocesses a subject, runs the model on its brain slices and maps the result back."""

  def __init__(self, forward: Forward, info: ModelInfo,
               options: ml_collections.ConfigDict | None = None, batch_multiple: int = 1,
               counter: Any = None):
    """`batch_multiple`: the device count, which every batch must split over; `counter`: the
    object whose `compilations` attribute counts the forward function's compilations."""
    self.forward = forward
    self.info = info
    self.options = options if options is not None else predict_config.get_config()
    if self.options.bucket % 8 or self.options.bucket <= 0:
      raise InputError(f"bucket={self.options.bucket} must be a positive multiple of 8 "
                       "(the network's stride)")
    if self.options.batch_slices <= 0:
      raise InputError(f"batch_slices={self.options.batch_slices} must be positive")
    if not 0 <= self.options.get("stroke_threshold", 0.0) <= 1:
      raise InputError(f"stroke_threshold={self.options.stroke_threshold} must be in [0, 1]")
    self.batch_multiple = batch_multiple
    self.batch_slices = -(-int(self.options.batch_slices) // batch_multiple) * batch_multiple
    self._counter = counter if counter is not None else forward

  @property
  def compilations(self) -> int | None:
    """How many times the forward function was compiled (one per input shape), where known."""
    return getattr(self._counter, "compilations", None)

  def with_options(self, options: ml_collections.ConfigDict) -> "Predictor":
    return Predictor(self.forward, self.info, options, self.batch_multiple, self._counter)

  def prepare(self, volumes: nifti_io.SubjectVolumes, require_stripped: bool = True
              ) -> preprocess.Prepared:
    """Preprocessed as the model was trained; refuses a scan smaller than the network's stride."""
    reference = next(iter(volumes.channels.values()))
    height, width, _ = preprocess.make_geometry(reference.data.shape, reference.affine,
                                                self.info.inplane_mm).grid_shape
    if min(height, width) < NETWORK_STRIDE:
      raise InputError(f"{volumes.subject}: {reference.path}: {height}x{width} voxels in-plane at "
                       f"{self.info.inplane_mm} mm, smaller than the network's stride "
                       f"({NETWORK_STRIDE} voxels)")
    return preprocess.prepare_subject(volumes, inplane_mm=self.info.inplane_mm,
                                      clip_low=self.info.clip_low, require_stripped=require_stripped)

  def load(self, record: nifti_io.SubjectRecord, require_stripped: bool = True) -> preprocess.Prepared:
    """Reads and preprocesses a subject's model channels (and expert labels, when it has any)."""
    return self.prepare(nifti_io.load_subject(record, self.info.channels), require_stripped)

  def predict_file(self, flair: str | os.PathLike, brain_mask: str | os.PathLike | None = None,
                   **channels: str | os.PathLike) -> Prediction:
    """One NIfTI scan -> its labels and probabilities on its own voxel grid, in one call (the
    Python API, docs/api.md). `channels`: the t1/wm files a model trained with them needs."""
    _check_extra_channels(channels)
    path = pathlib.Path(flair)
    record = nifti_io.SubjectRecord(
        subject=scan_inputs.nifti_stem(path) or path.name, flair=path, labels=None,
        brain_mask=pathlib.Path(brain_mask) if brain_mask is not None else None,
        **{name: pathlib.Path(file) for name, file in channels.items()})
    return self.predict(self.load(record))

  def predict_array(self, flair: np.ndarray, affine: np.ndarray,
                    brain_mask: np.ndarray | None = None, **channels: np.ndarray) -> Prediction:
    """A scan held in memory -> its labels and probabilities on the same voxel grid (the Python
    API, docs/api.md): 3D arrays on one grid, `affine` its voxel-to-mm map; without a brain mask
    the scan must be skull-stripped. `channels`: the t1/wm arrays a model trained with them
    needs."""
    _check_extra_channels(channels)
    given = {"flair": flair, **channels}
    missing = [name for name in self.info.channels if name not in given]
    if missing:
      raise InputError(f"the model also needs the {', '.join(missing)} channel(s); pass "
                       f"{', '.join(f'{name}=ARRAY' for name in missing)}")
    volumes = {name: nifti_io.as_volume(given[name], affine, where=name)
               for name in self.info.channels}
    mask = (nifti_io.as_volume(brain_mask, affine, kind="mask", where="brain_mask")
            if brain_mask is not None else None)
    shape = volumes[self.info.channels[0]].data.shape
    for name, volume in [*volumes.items(), ("brain_mask", mask)]:
      if volume is not None and volume.data.shape != shape:
        raise InputError(f"{name}: shape {volume.data.shape} differs from "
                         f"{self.info.channels[0]}'s {shape}")
    return self.predict(self.prepare(nifti_io.SubjectVolumes("array", volumes, None, mask)))

  def grid_probabilities(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Class probabilities (X, Y, Z, K) on the preprocessed grid; background (probability 1)
    outside the brain mask, where no lesion can be."""
    nx, ny, nz, _ = image.shape
    out = np.zeros((nx, ny, nz, self.info.num_classes), np.float32)
    out[..., 0] = 1.0
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    if slices.size == 0:
      return out
    bx, by, (h, w) = brain_box(mask, self.options.crop_margin, self.options.bucket)
    crop = np.moveaxis(image[bx, by][:, :, slices], 2, 0)  # (S, x, y, C)
    batch = self.batch_slices
    padded = np.full((-(-len(slices) // batch) * batch, h, w, image.shape[3]), self.info.clip_low,
                     np.float32)
    padded[:len(slices), :crop.shape[1], :crop.shape[2]] = crop
    probs = np.concatenate([self._run(padded[i:i + batch]) for i in range(0, len(padded), batch)])
    region = probs[:len(slices), :crop.shape[1], :crop.shape[2]]
    out[bx, by, slices] = np.moveaxis(region, 0, 2)
    out[~mask] = np.eye(self.info.num_classes, dtype=np.float32)[0]
    return out

  def _run(self, images: np.ndarray) -> np.ndarray:
    if not self.options.tta:
      return np.asarray(self.forward(images), np.float32)
    total = 0.0
    for axes in ((), (1,), (2,), (1, 2)):  # in-plane flips, as in training
      flipped = np.flip(images, axes) if axes else images
      probs = np.asarray(self.forward(np.ascontiguousarray(flipped)), np.float32)
      total = total + (np.flip(probs, axes) if axes else probs)
    return total / 4

  def predict(self, prepared: preprocess.Prepared) -> Prediction:
    """Labels (argmax) and probabilities on the native grid of a prepared subject."""
    grid = self.grid_probabilities(prepared.image, prepared.mask)
    native = preprocess.to_native(grid, prepared.geometry)
    labels, candidates = self.confident_labels(native)
    return Prediction(prepared.subject, labels, native, prepared, candidates)

  def predict_labels(self, prepared: preprocess.Prepared) -> np.ndarray:
    """Only the native label map (what scoring needs): the labels are mapped, not the
    probabilities (the stroke threshold is applied on the preprocessed grid)."""
    grid = self.grid_probabilities(prepared.image, prepared.mask)
    return preprocess.to_native(self.confident_labels(grid)[0], prepared.geometry)

  def confident_labels(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The argmax with stroke lesions below the stroke threshold set to background, and those."""
    labels = np.argmax(probabilities, axis=-1).astype(np.uint8)
    candidates = lesions.unconfident_stroke(
        labels, probabilities[..., labelling.STROKE],
        self.options.get("stroke_threshold", 0.0))
    labels[candidates] = 0
    return labels, candidates


def _check_extra_channels(channels: Mapping[str, Any]) -> None:
  """Refuses a keyword that names no input channel beside FLAIR (a typo would be dropped)."""
  extra = [name for name in nifti_io.CHANNELS if name != "flair"]
  unknown = sorted(set(channels) - set(extra))
  if unknown:
    raise InputError(f"unknown channel(s) {', '.join(unknown)}: choose from {', '.join(extra)}")


# ----------------------------------------------------------------------------- forward functions

def flax_forward(model, mesh) -> Callable[[Any, np.ndarray], np.ndarray]:
  """A jitted (variables, images) -> probabilities over `mesh` (variables replicated, slices split).

  Its `compilations` attribute counts traces (one per distinct input shape)."""
  import jax
  from uresnet_jax.model import uresnet, sharding

  repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)

  def probabilities(variables, images):
    wrapped.compilations += 1
    return jax.nn.softmax(model.apply(variables, images, train=False), axis=-1)

  jitted = jax.jit(probabilities, in_shardings=(repl, split), out_shardings=repl,
                   compiler_options=uresnet.inference_compiler_options())

  def wrapped(variables, images: np.ndarray) -> np.ndarray:
    return np.asarray(jitted(variables, jax.device_put(images, split)))

  wrapped.compilations = 0
  return wrapped


def read_run_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  """A run's config (config.json), with predict's defaults when the run predates them."""
  stored = run_folder.read_config(workdir)
  if stored is None:
    raise InputError(f"{workdir}: no {run_folder.CONFIG} (not a training run folder)")
  config = ml_collections.ConfigDict(stored)
  if "predict" not in config:
    config.predict = predict_config.get_config()
  return config


def from_variables(config: ml_collections.ConfigDict, variables: dict,
                   options: ml_collections.ConfigDict | None = None) -> Predictor:
  """A Predictor running `config`'s model with `variables` ({"params", "batch_stats"}) on every
  device of this process."""
  import jax
  from uresnet_jax.model import uresnet, sharding
  mesh = sharding.create_mesh(jax.local_devices())
  forward = flax_forward(uresnet.create_model(config.model), mesh)
  variables = jax.device_put(variables, sharding.replicated(mesh))
  return Predictor(lambda images: forward(variables, images), model_info(config),
                   options if options is not None else config.predict, mesh.devices.size,
                   counter=forward)


def from_workdir(workdir: str | pathlib.Path, checkpoint: str = "latest",
                 options: ml_collections.ConfigDict | None = None) -> tuple[Predictor, int]:
  """A Predictor with a training run's model on every local device, and the checkpoint's step."""
  from uresnet_jax.model import checkpoints
  workdir = pathlib.Path(workdir)
  config = read_run_config(workdir)
  step, variables = checkpoints.restore_variables(workdir, config, checkpoint)
  return from_variables(config, variables, options), step


def from_artifact(path: str | pathlib.Path,
                  options: ml_collections.ConfigDict | None = None) -> Predictor:
  """A Predictor running an exported artifact (`python -m uresnet_jax.export`)."""
  loaded = read_artifact(path)
  manifest = loaded.manifest
  info = ModelInfo(channels=tuple(manifest["channels"]), num_classes=len(manifest["classes"]),
                   inplane_mm=float(manifest["preprocessing"]["inplane_mm"]),
                   clip_low=float(manifest["preprocessing"]["clip_low"]),
                   config=manifest["training_config"])
  if options is None:
    options = predict_config.get_config()
    options.update(manifest.get("predict", {}))
  return Predictor(loaded, info, options)


def model_path(model: str | pathlib.Path | None) -> pathlib.Path:
  """The model a --model flag names; none given: the bundled release model."""
  from uresnet_jax.inference import artifact
  if model:
    return pathlib.Path(model)
  if not (BUNDLED_MODEL / artifact.MANIFEST).is_file():
    raise InputError(f"no bundled model in this installation ({BUNDLED_MODEL}); pass --model")
  return BUNDLED_MODEL


def read_artifact(path: str | pathlib.Path):
  """An exported artifact (`artifact.Artifact`), a damaged one as one InputError line."""
  from uresnet_jax.inference import artifact
  try:
    return artifact.load(path)
  except artifact.ArtifactError as e:
    raise InputError(str(e)) from None


def model_kind(path: pathlib.Path) -> str:
  """"artifact" (has manifest.json) or "workdir" (has config.json): the one place that tells a
  model's two forms apart."""
  from uresnet_jax.inference import artifact
  if (path / artifact.MANIFEST).is_file():
    return "artifact"
  if run_folder.is_run(path):
    return "workdir"
  raise InputError(f"{path}: neither a training workdir ({run_folder.CONFIG}) nor an exported "
                   f"model ({artifact.MANIFEST})")


def load_model(model: str | pathlib.Path | None, checkpoint: str = "latest",
               options: ml_collections.ConfigDict | None = None) -> Predictor:
  """A Predictor of a training workdir or an exported artifact; None is the bundled model."""
  path = model_path(model)
  if model_kind(path) == "artifact":
    return from_artifact(path, options)
  return from_workdir(path, checkpoint, options)[0]


def load_variables(model: str | pathlib.Path, checkpoint: str = "latest"
                   ) -> tuple[ml_collections.ConfigDict, dict]:
  """(training config, {"params", "batch_stats"}) of a training workdir or an exported artifact:
  the weights to start a new training run from."""
  import jax
  path = pathlib.Path(model)
  if model_kind(path) == "artifact":
    loaded = read_artifact(path)
    config = ml_collections.ConfigDict(loaded.manifest["training_config"])
    return config, jax.tree.map(np.asarray, loaded.weights)
  from uresnet_jax.model import checkpoints
  config = read_run_config(path)
  return config, checkpoints.restore_variables(path, config, checkpoint)[1]
