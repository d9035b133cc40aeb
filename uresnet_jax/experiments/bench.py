"""Speed of what training and prediction run, on this machine, as one JSON object.

Run: python -m uresnet_jax.bench --config=configs/default.py [--json=FILE] [--torch] [--parts=...]
Parts (all by default):
  train     the very step training jits (`training/loop.jit_train_step`) on synthetic batches of the
            config's size: compile seconds, steady-state step time, XLA's FLOP count;
  infer     whole-volume inference of a 256x256x40 scan (1x1x4 mm, the MNI152 brain), model only;
  predict   `predict`'s per-scan path on that scan, end to end (read, preprocess, infer, tables,
            write);
  pipeline  the training input pipeline alone (`input_pipeline.iterate_batches` over the config's
            records, no device);
  build     building the config's patch records from its cohort into a fresh folder.
--profile=DIR also traces one round of the training step (jax.profiler, a Perfetto trace) and adds
its slowest ops, in ms per step, to the JSON: where the step's time goes.
--torch runs the PyTorch peer (../shared/bench/torch_uresnet.py, or --torch_script) in the same
call when torch is importable, at the same batch, patch and precision, and prints the ratio. Timings
exclude compilation; medians of --repeats rounds. Weights are random: speed does not depend on them.
"""
import collections
import gzip
import importlib.util
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

import jax
import ml_collections
import numpy as np

from uresnet_jax.data import input_pipeline, patch_records, scan_inputs
from uresnet_jax.inference import predictor, run_settings, scan_work
from uresnet_jax.model import sharding, steps, uresnet
from uresnet_jax.training import loop, prepare_data

PARTS = ("train", "infer", "predict", "pipeline", "build")
SCAN_SHAPE, SCAN_ZOOMS = (256, 256, 40), (1.0, 1.0, 4.0)
_REPO = pathlib.Path(__file__).resolve().parents[2]


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _flops(compiled) -> float | None:
  """XLA's FLOP count of a compiled computation (None when the backend gives none)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def _top_ops(trace_dir: pathlib.Path, steps_traced: int, step_ms: float,
             top: int = 12) -> dict[str, float]:
  """Milliseconds per step of the slowest XLA op kinds (fusion names, numbering dropped) in the
  Perfetto trace `jax.profiler` wrote, and `unattributed`: the rest of the step's wall time.

  XLA:CPU runs its Eigen convolutions asynchronously, so their span covers little more than the
  launch and most of their time shows up as unattributed."""
  (trace,) = trace_dir.rglob("*.trace.json.gz")
  with gzip.open(trace) as f:
    events = json.load(f)["traceEvents"]
  totals: collections.Counter = collections.Counter()
  for event in events:  # XLA ops are named in lower case; host-side spans are not
    if event.get("ph") == "X" and re.fullmatch(r"[a-z][\w.\-]*", event.get("name", "")):
      totals[re.sub(r"\.\d+$", "", event["name"])] += event["dur"] / 1e3 / steps_traced
  ops = {name: round(ms, 2) for name, ms in totals.most_common(top) if round(ms, 2) > 0}
  ops["unattributed"] = round(max(0.0, step_ms - sum(totals.values())), 1)
  return ops


def bench_train(config: ml_collections.ConfigDict, steps_per_round: int, repeats: int,
                profile_dir: str | None = None) -> dict:
  """The training step: compile seconds, then steady-state patches/s over synthetic batches; with
  `profile_dir`, a Perfetto trace of one more round and its slowest ops (`profile_top_ops_ms`)."""
  mesh = sharding.create_mesh()
  batch, size = config.train.batch_size, config.sampling.patch_size
  sharding.check_batch_size(batch, mesh)
  model = uresnet.create_model(config.model)
  state = steps.create_train_state(jax.random.key(0), config, model, steps_per_epoch=1000)
  state = jax.device_put(state, sharding.replicated(mesh))
  rng = np.random.default_rng(0)
  host = {"image": rng.normal(size=(batch, size, size, len(config.data.channels))).astype(np.float32),
          "label": rng.integers(0, config.model.num_classes, (batch, size, size)).astype(np.int32)}
  device_batch = sharding.put_batch(host, mesh)
  key = jax.random.key(1)
  start = time.perf_counter()
  step = loop.jit_train_step(config, mesh).lower(state, device_batch, key).compile()
  compile_s = time.perf_counter() - start
  flops = _flops(step)

  def run_round() -> None:
    nonlocal state
    for _ in range(steps_per_round):
      state, metrics = step(state, device_batch, key)
    jax.block_until_ready(metrics)

  run_round()  # warm-up
  step_s = _median_seconds(run_round, repeats) / steps_per_round
  result = {"train_patches_per_s": round(batch / step_s, 1), "compile_s": round(compile_s, 2),
            "step_ms": round(1e3 * step_s, 1)}
  if flops is not None:
    result.update(gflop_per_patch=round(flops / batch / 1e9, 3),
                  achieved_gflops=round(flops / step_s / 1e9, 1))
  if profile_dir is not None:
    # The same step compiled again with XLA:CPU's per-op trace events, which the timing runs lack.
    traced = {"xla_cpu_enable_xprof_traceme": True} if jax.default_backend() == "cpu" else None
    step = loop.jit_train_step(config, mesh).lower(state, device_batch, key).compile(traced)
    run_round()  # warm-up of the traced copy
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
      start = time.perf_counter()
      run_round()
      traced_ms = 1e3 * (time.perf_counter() - start) / steps_per_round
    result.update(profile_dir=str(profile_dir), profile_top_ops_ms=_top_ops(
        pathlib.Path(profile_dir), steps_per_round, traced_ms))
  return result


def _scan(path: pathlib.Path) -> None:
  """A skull-stripped FLAIR-like scan: the MNI152 brain nilearn ships, on an axial clinical grid."""
  import nibabel as nib
  import nibabel.processing
  from nilearn import datasets
  template = datasets.load_mni152_template(resolution=1)
  mask = datasets.load_mni152_brain_mask(resolution=1)
  brain = nib.Nifti1Image(np.asarray(template.dataobj, np.float32) * (mask.get_fdata() > 0),
                          template.affine)
  affine = np.diag([*SCAN_ZOOMS, 1.0])
  affine[:3, 3] = -(np.array(SCAN_SHAPE) - 1) / 2 * np.array(SCAN_ZOOMS) + [0, -18, 18]
  nib.save(nibabel.processing.resample_from_to(brain, (SCAN_SHAPE, affine), order=1), path)


def bench_inference(config: ml_collections.ConfigDict, parts: Sequence[str], repeats: int) -> dict:
  """Whole-volume inference (model only) and `predict`'s per-scan path, one warm-up each."""
  model_def = uresnet.create_model(config.model)
  variables = jax.jit(lambda: model_def.init(
      jax.random.key(0), np.zeros((1, 64, 64, len(config.data.channels)), np.float32),
      train=False))()
  model = predictor.from_variables(config, variables)
  result = {}
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    _scan(tmp / "scan.nii.gz")
    (scan,) = scan_inputs.find_scans(tmp / "scan.nii.gz")
    out = tmp / "out"
    out.mkdir()
    settings = run_settings.RunSettings(config.predict)
    segment_once = lambda: scan_work.segment_scan(model, scan, out, settings)
    segment_once()  # compiles every shape bucket the scan needs
    if "infer" in parts:
      prepared = model.load(scan.record)
      result["infer_s_per_volume"] = round(_median_seconds(
          lambda: model.grid_probabilities(prepared.image, prepared.mask), repeats), 3)
    if "predict" in parts:
      result["predict_s_per_scan"] = round(_median_seconds(segment_once, repeats), 3)
  result["infer_volume"] = "x".join(map(str, SCAN_SHAPE))
  return result


def bench_pipeline(config: ml_collections.ConfigDict, num_steps: int, repeats: int) -> dict:
  """Patches/s of the training input pipeline alone, over the config's training folds."""
  builder = prepare_data.ensure_records(config)
  splits = loop.training_splits(config)
  source = input_pipeline.ConcatSource([builder.as_data_source(split=s) for s in splits], splits)
  batch = config.train.batch_size
  num_steps = min(num_steps, input_pipeline.steps_per_epoch(len(source), batch))
  start = [0]

  def run_round() -> None:
    for _ in input_pipeline.iterate_batches(source, start[0], start[0] + num_steps, batch,
                                            config.seed):
      pass
    start[0] += num_steps  # new batches each round, as training reads them

  seconds = _median_seconds(run_round, repeats)
  return {"pipeline_patches_per_s": round(num_steps * batch / seconds, 1),
          "pipeline_records": len(source)}


def bench_build(config: ml_collections.ConfigDict) -> dict:
  """Seconds to build the config's patch records from its cohort into a fresh records folder."""
  prepare_data.ensure_cohort(config)
  with tempfile.TemporaryDirectory() as tmp:
    fresh = config.copy_and_resolve_references()
    fresh.data.records_dir = tmp
    start = time.perf_counter()
    builder = patch_records.build_patches(fresh)
    seconds = time.perf_counter() - start
    records = sum(builder.info.splits[f"fold{k}"].num_examples
                  for k in range(config.data.num_folds))
  return {"tfds_build_s": round(seconds, 1), "tfds_build_records": records}


def bench_torch(config: ml_collections.ConfigDict, script: pathlib.Path, extra: Sequence[str],
                python: str | None = None) -> dict:
  """The PyTorch peer's training step at the config's batch, patch and precision, same machine;
  `python` is an interpreter with torch (torch is not a dependency of this package)."""
  if python is None and importlib.util.find_spec("torch") is None:
    return {"torch": "not importable: pip install torch==2.13.0 (CPU wheel), or --torch_python"}
  if not script.exists():
    return {"torch": f"{script}: peer script not found"}
  if config.model.base_width != 32:
    return {"torch": f"the peer has base width 32, the config {config.model.base_width}"}
  args = [python or sys.executable, str(script), "--batch", str(config.train.batch_size), "--patch",
          str(config.sampling.patch_size), "--threads", str(os.cpu_count()), "--skip-infer",
          *(["--bf16"] if config.model.get("dtype") == "bfloat16" else []), *extra]
  done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
  if done.returncode:
    return {"torch": f"peer failed: {done.stderr.strip().splitlines()[-1:]}"}
  peer = json.loads(done.stdout.strip().splitlines()[-1])
  return {"torch_patches_per_s": peer["train_patches_per_s"], "torch_version": peer["torch"],
          "torch_settings": " ".join(extra) + (" --bf16" if "--bf16" in args else "")}


def run_benchmarks(config: ml_collections.ConfigDict, parts: Sequence[str], repeats: int = 3,
                   train_steps: int = 5, pipeline_steps: int = 50, torch_script: str | None = None,
                   torch_args: Sequence[str] = (), torch_python: str | None = None,
                   profile_dir: str | None = None) -> dict:
  devices = jax.devices()
  result = {"device_kind": devices[0].device_kind, "device_count": len(devices),
            "backend": jax.default_backend(), "precision": config.model.get("dtype", "float32"),
            "batch": config.train.batch_size, "patch": config.sampling.patch_size,
            "base_width": config.model.base_width, "jax_version": jax.__version__}
  if "train" in parts:
    result.update(bench_train(config, train_steps, repeats, profile_dir))
  if "infer" in parts or "predict" in parts:
    result.update(bench_inference(config, parts, repeats))
  if "pipeline" in parts:
    result.update(bench_pipeline(config, pipeline_steps, repeats))
  if "build" in parts:
    result.update(bench_build(config))
  if "train_patches_per_s" in result and "pipeline_patches_per_s" in result:
    result["pipeline_to_train_ratio"] = round(
        result["pipeline_patches_per_s"] / result["train_patches_per_s"], 2)
  if torch_script is not None:
    result.update(bench_torch(config, pathlib.Path(torch_script), torch_args, torch_python))
    if "torch_patches_per_s" in result and "train_patches_per_s" in result:
      result["ratio_vs_torch"] = round(
          result["train_patches_per_s"] / result["torch_patches_per_s"], 2)
  return result


def run() -> None:
  """The CLI; flags are defined here so that importing this module defines none."""
  from absl import flags, logging
  from ml_collections import config_flags
  from uresnet_jax.common import atomic, cli
  from uresnet_jax.common.errors import InputError
  config_flag = config_flags.DEFINE_config_file("config", str(_REPO / "configs" / "default.py"),
                                                "Configuration to time.", lock_config=True)
  parts_flag = flags.DEFINE_list("parts", list(PARTS), f"What to time, of {', '.join(PARTS)}.")
  json_flag = flags.DEFINE_string("json", None, "Also write the result to this file.")
  repeats = flags.DEFINE_integer("repeats", 3, "Timed rounds per figure (the median is reported).")
  train_steps = flags.DEFINE_integer("train_steps", 5, "Training steps per timed round.")
  torch_flag = flags.DEFINE_bool("torch", False, "Also time the PyTorch peer in this call.")
  torch_script = flags.DEFINE_string(
      "torch_script", str(_REPO.parent / "shared" / "bench" / "torch_uresnet.py"),
      "The PyTorch peer's benchmark script.")
  torch_args = flags.DEFINE_string("torch_args", "--channels-last",
                                   "Settings for the peer (its best float32 one on CPU).")
  torch_python = flags.DEFINE_string("torch_python", None,
                                     "Python with torch for the peer (default: this one).")
  profile = flags.DEFINE_string(
      "profile", None, "Also trace one round of training steps into this new folder (Perfetto "
      "trace; open it at ui.perfetto.dev) and report its slowest ops.")

  def main() -> None:
    unknown = sorted(set(parts_flag.value) - set(PARTS))
    if unknown:
      raise InputError(f"--parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if repeats.value < 1 or train_steps.value < 1:
      raise InputError("--repeats and --train_steps must be at least 1")
    if profile.value is not None:
      if "train" not in parts_flag.value:
        raise InputError("--profile traces the training step: add train to --parts")
      if pathlib.Path(profile.value).exists():
        raise InputError(f"--profile={profile.value}: already exists; give a new folder")
      try:  # made now, so that a path that cannot be a folder fails before any timing
        pathlib.Path(profile.value).mkdir(parents=True)
      except OSError as e:
        raise InputError(f"--profile={profile.value}: cannot create it ({e.strerror})") from None
    config = cli.get_config(config_flag)  # no persistent compilation cache: compile_s is real
    result = run_benchmarks(config, parts_flag.value, repeats.value, train_steps.value,
                            torch_script=torch_script.value if torch_flag.value else None,
                            torch_args=torch_args.value.split(), torch_python=torch_python.value,
                            profile_dir=profile.value)
    text = json.dumps(result, indent=1)
    print(text)
    if "ratio_vs_torch" in result:
      print(f"training step: {result['ratio_vs_torch']}x the PyTorch peer "
            f"({result['train_patches_per_s']} vs {result['torch_patches_per_s']} patches/s, "
            f"{result['precision']})", file=sys.stderr)
    if json_flag.value:
      atomic.write_text(json_flag.value, text + "\n")

  cli.run_cli(main, logging.WARNING)

