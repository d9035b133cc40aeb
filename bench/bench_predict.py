"""Seconds per scan of the code `predict` runs: model only, and end to end (read, preprocess, predict,
tables, write), on two clinical geometries made from the MNI152 brain that nilearn ships.

Run from the repository root:
  python bench/bench_predict.py                    # base width 32 (the paper's), random weights
  python bench/bench_predict.py --tta              # with the 4 test-time flips
Prints one JSON line per geometry. Timing excludes compilation (one warm-up scan first); the
median of --repeats runs is reported. `full_field_model_s` runs every slice over the whole field of
view, as the project did before brain cropping, for comparison in the same process.
"""
import json
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import nibabel as nib
import nibabel.processing
import numpy as np
from absl import app, flags
from nilearn import datasets

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository's configs/
from configs import default  # noqa: E402
from uresnet_jax import (models, predict, predict_config, predictor, scan_inputs,
                         sharding)

_BASE = flags.DEFINE_integer("base_width", 32, "Base width of the network.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per figure (median reported).")
_TTA = flags.DEFINE_bool("tta", False, "Test-time flips.")
GEOMETRIES = {"256x256x40_1x1x4mm": ((256, 256, 40), (1.0, 1.0, 4.0)),
              "512x512x16_0.47x0.47x8mm": ((512, 512, 16), (0.47, 0.47, 8.0))}


def _scan(path: pathlib.Path, shape, zooms) -> None:
  """A skull-stripped FLAIR-like scan: the MNI152 brain resampled to an axial clinical grid."""
  template = datasets.load_mni152_template(resolution=1)
  mask = datasets.load_mni152_brain_mask(resolution=1)
  brain = nib.Nifti1Image(np.asarray(template.dataobj, np.float32) * (mask.get_fdata() > 0),
                          template.affine)
  affine = np.diag([*zooms, 1.0])
  affine[:3, 3] = -(np.array(shape) - 1) / 2 * np.array(zooms) + [0, -18, 18]  # centred on brain
  nib.save(nibabel.processing.resample_from_to(brain, (shape, affine), order=1), path)


def _median(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv) -> None:
  del argv
  config = default.get_config()
  config.model.base_width = _BASE.value
  model_def = models.create_model(config.model)
  variables = jax.jit(lambda: model_def.init(
      jax.random.key(0), np.zeros((1, 64, 64, 1), np.float32), train=False))()
  forward = predictor.flax_forward(model_def, sharding.create_mesh())
  options = predict_config.get_config()
  options.tta = _TTA.value
  model = predictor.Predictor(lambda x: forward(variables, x), predictor.model_info(config),
                              options, counter=forward)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for name, (shape, zooms) in GEOMETRIES.items():
      _scan(tmp / f"{name}.nii.gz", shape, zooms)
      (scan,) = scan_inputs.find_scans(tmp / f"{name}.nii.gz")
      out = tmp / f"out_{name}"
      out.mkdir()
      (out / "qc").mkdir()
      segment = lambda: predict.segment_scan(model, scan, out, options, False, False, out / "qc")
      segment()  # compiles
      prepared = model.load(scan.record)
      model_s = _median(lambda: model.grid_probabilities(prepared.image, prepared.mask),
                        _REPEATS.value)
      end_to_end_s = _median(segment, _REPEATS.value)
      slices = np.moveaxis(prepared.image, 2, 0)
      padded, _ = models.pad_to_multiple(slices, 8, config.preprocess.clip_low)
      batch = options.batch_slices
      padded = np.concatenate([padded, np.full((-len(padded) % batch,) + padded.shape[1:],
                                               config.preprocess.clip_low, np.float32)])
      full = lambda: [forward(variables, padded[i:i + batch]) for i in range(0, len(padded), batch)]
      full()
      full_s = _median(full, _REPEATS.value)
      print(json.dumps({
          "geometry": name, "grid_shape": list(prepared.geometry.grid_shape),
          "brain_slices": int(prepared.mask.any(axis=(0, 1)).sum()),
          "model_s": round(model_s, 3), "full_field_model_s": round(full_s, 3),
          "end_to_end_s": round(end_to_end_s, 3), "tta": options.tta,
          "base_width": _BASE.value, "compilations": model.compilations,
          "device": jax.devices()[0].device_kind, "jax": jax.__version__}))


if __name__ == "__main__":
  app.run(main)
