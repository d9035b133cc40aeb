"""Exports a trained model as a self-contained artifact (see `artifact.py` for its contents).

Run: python -m uresnet_jax.export --workdir=runs/demo --output=exported [--checkpoint=STEP]
"""
import importlib.metadata
import json
import pathlib
import shutil

import jax
import numpy as np

from uresnet_jax.common import atomic, labelling
from uresnet_jax.common.errors import InputError
from uresnet_jax.inference import artifact, predictor
from uresnet_jax.model import checkpoints, uresnet

PLATFORMS = ("cpu", "cuda", "tpu")


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
  """{"a": {"b": x}} -> {"a/b": x}, the inverse of `artifact.nest`."""
  flat = {}
  for key, value in tree.items():
    if "/" in key:
      raise ValueError(f"parameter name {key!r} contains '/'")
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, name + "/"))
    else:
      flat[name] = np.asarray(value)
  return flat


def export_model(workdir: str | pathlib.Path, output: str | pathlib.Path,
                 checkpoint: str = "latest", overwrite: bool = False) -> dict:
  """Writes the artifact folder `output` whole (or not at all); returns its manifest."""
  workdir, output = pathlib.Path(workdir), pathlib.Path(output)
  atomic.check_output_folder(output, overwrite)
  config = predictor.read_run_config(workdir)
  step, variables = checkpoints.restore_variables(workdir, config, checkpoint)
  variables = jax.tree.map(lambda x: np.asarray(x, np.float32), variables)
  model = uresnet.create_model(config.model)

  def probabilities(variables, images):
    return jax.nn.softmax(model.apply(variables, images, train=False), axis=-1)

  batch, height, width = jax.export.symbolic_shape("b, 8*h, 8*w")
  images = jax.ShapeDtypeStruct((batch, height, width, len(config.data.channels)), np.float32)
  weights = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables)
  exported = jax.export.export(jax.jit(probabilities), platforms=PLATFORMS)(weights, images)
  num_classes = int(config.model.num_classes)
  manifest = {
      "format": artifact.FORMAT,
      "format_version": artifact.FORMAT_VERSION,
      "package_version": importlib.metadata.version("uresnet_jax"),
      "jax_version": jax.__version__,
      "platforms": list(PLATFORMS),
      "classes": list(labelling.CLASS_NAMES[:num_classes]),
      "channels": list(config.data.channels),
      "input": {"layout": "NHWC", "dtype": "float32", "spatial_multiple": 8,
                "symbolic_shape": "b, 8*h, 8*w, channels"},
      "output": "softmax class probabilities (B, H, W, classes), float32",
      "preprocessing": {
          "inplane_mm": float(config.preprocess.inplane_mm),
          "clip_low": float(config.preprocess.clip_low),
          "orientation": "RAS voxel order; axial slices are [:, :, k]; resampled to inplane_mm "
                         "in-plane, slice thickness kept",
          "normalisation": "per channel z-score inside the brain mask, clipped below at clip_low; "
                           "clip_low outside the mask and in padding",
      },
      "source": {"workdir": str(workdir), "checkpoint": checkpoint, "step": step},
      "training_config": config.to_dict(),
      "predict": config.predict.to_dict(),
  }
  output.parent.mkdir(parents=True, exist_ok=True)
  with atomic.replacing(output) as tmp:
    tmp.mkdir()
    (tmp / artifact.MODULE).write_bytes(exported.serialize())
    np.savez(tmp / artifact.WEIGHTS, **flatten(variables))
    shutil.copyfile(pathlib.Path(artifact.__file__), tmp / artifact.LOADER)
    manifest["files"] = {name: artifact.sha256(tmp / name)
                         for name in (artifact.MODULE, artifact.WEIGHTS, artifact.LOADER)}
    (tmp / artifact.MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
  return manifest


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from uresnet_jax.common import cli
  workdir = flags.DEFINE_string("workdir", None, "A training run folder (config.json, checkpoints/).")
  output = flags.DEFINE_string("output", None, "Folder to write the artifact into (created whole).")
  checkpoint = flags.DEFINE_string("checkpoint", "latest",
                                 "Checkpoint: latest, or a saved step number.")
  overwrite = flags.DEFINE_bool("overwrite", False, "Replace an existing, non-empty --output.")

  def main() -> None:
    if not workdir.value or not output.value:
      raise InputError("--workdir and --output are required")
    manifest = export_model(workdir.value, output.value, checkpoint.value, overwrite.value)
    size = sum(f.stat().st_size for f in pathlib.Path(output.value).iterdir())
    print(f"exported step {manifest['source']['step']} of {workdir.value} to {output.value} "
          f"({size / 1e6:.1f} MB; {', '.join(manifest['platforms'])})")

  cli.run_cli(main, logging.ERROR)  # Orbax's notes on reading checkpoints

