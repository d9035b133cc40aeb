"""Loads and runs an exported uResNet (`python -m uresnet_jax.export`) with jax and numpy only.

An artifact is a folder: `model.jax_export` (a serialized `jax.export` module with symbolic batch,
height and width), `weights.npz` (plain arrays, read without pickle), `manifest.json` (format
version, classes, input channels, preprocessing, training config, SHA-256 of every file) and a copy
of this file, so the model also runs where the package is not installed:

    import uresnet_artifact                    # or: from uresnet_jax.inference import artifact
    model = uresnet_artifact.load("exported/")
    probabilities = model(images)              # (B, H, W, C) float32, H and W multiples of 8
"""
import hashlib
import json
import pathlib

import jax
import numpy as np

FORMAT = "uresnet_jax.artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODULE = "model.jax_export"
WEIGHTS = "weights.npz"
LOADER = "uresnet_artifact.py"


class ArtifactError(ValueError):
  """An artifact that cannot be used; str() is a one-line message naming the file."""


def sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def nest(flat: dict) -> dict:
  """{"a/b": x} -> {"a": {"b": x}}: the weights' tree from the npz keys."""
  tree = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


class Artifact:
  """A callable model: images (B, H, W, C) float32 -> class probabilities (B, H, W, K)."""

  def __init__(self, manifest: dict, exported, weights: dict):
    self.manifest = manifest
    self.exported = exported
    self.weights = weights
    self.compilations = 0  # traces, one per distinct input shape

    def call(weights, images):
      self.compilations += 1
      return exported.call(weights, images)

    # XLA:CPU runs this network's forward pass ~1.6x faster without YNNPACK
    # (uresnet_jax/model/uresnet.py, inference_compiler_options).
    cpu = jax.default_backend() == "cpu"
    self._call = jax.jit(call, compiler_options=(
        {"xla_cpu_experimental_ynn_fusion_type": ""} if cpu else None))

  def check_input(self, images: np.ndarray) -> None:
    channels = len(self.manifest["channels"])
    multiple = int(self.manifest["input"]["spatial_multiple"])
    if images.ndim != 4 or images.shape[3] != channels:
      raise ArtifactError(f"input shape {images.shape}: expected (batch, height, width, {channels})")
    if images.shape[1] % multiple or images.shape[2] % multiple or 0 in images.shape[:3]:
      raise ArtifactError(f"input shape {images.shape}: height and width must be positive "
                          f"multiples of {multiple}")

  def __call__(self, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float32)
    self.check_input(images)
    return np.asarray(self._call(self.weights, images))


def load(path: str | pathlib.Path) -> Artifact:
  """Validates the manifest's format version and every file's checksum, then loads the model."""
  path = pathlib.Path(path)
  manifest_path = path / MANIFEST
  if not manifest_path.is_file():
    raise ArtifactError(f"{path}: no {MANIFEST} (not an exported uresnet_jax model)")
  try:
    manifest = json.loads(manifest_path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ArtifactError(f"{manifest_path}: not valid JSON ({e})") from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    raise ArtifactError(f"{manifest_path}: not a {FORMAT} manifest")
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ArtifactError(f"{manifest_path}: format version {manifest.get('format_version')!r}, "
                        f"this loader reads version {FORMAT_VERSION}; export the model again")
  files = manifest.get("files", {})
  for name in (MODULE, WEIGHTS):
    if name not in files:
      raise ArtifactError(f"{manifest_path}: lists no checksum for {name}")
  for name, expected in files.items():
    file = path / name
    if pathlib.Path(name).name != name or not file.is_file():
      raise ArtifactError(f"{file}: missing from the artifact")
    if sha256(file) != expected:
      raise ArtifactError(f"{file}: SHA-256 does not match the manifest (corrupted or modified)")
  try:
    exported = jax.export.deserialize(bytearray((path / MODULE).read_bytes()))
  except Exception as e:  # flatbuffer and version errors come as several types
    raise ArtifactError(f"{path / MODULE}: cannot deserialize ({' '.join(str(e).split())[:200]})"
                        ) from None
  with np.load(path / WEIGHTS, allow_pickle=False) as npz:
    weights = nest({key: npz[key] for key in npz.files})
  return Artifact(manifest, exported, weights)
