"""The training loop: records -> jitted data-parallel steps -> Orbax checkpoints -> evaluation.

Data parallelism is `jax.jit` over a 1-D `Mesh` with `NamedSharding` (state replicated, batch split
on the 'data' axis), not `jax.pmap`: pmap is in maintenance mode (built on jit + shard_map since
JAX 0.8), while the jit form runs unchanged on one CPU, several GPUs, a TPU slice or many hosts
(`jax.distributed`); XLA inserts the gradient all-reduce, and batch-norm statistics are taken over
the whole global batch, exactly as on one device.
"""
import collections
import contextlib
import functools
import pathlib
import signal
import time

import jax
import ml_collections
import numpy as np
import tensorboardX
from absl import logging
from tqdm import tqdm

from uresnet_jax.common import distributed, progress
from uresnet_jax.common.errors import InputError, TrainingDiverged
from uresnet_jax.data import input_pipeline, nifti_io, patch_records
from uresnet_jax.inference import predictor
from uresnet_jax.model import checkpoints, losses, run_folder, sharding, steps, uresnet
from uresnet_jax.training import held_out, prepare_data, scoring, warm_start


STOP_CHECK_EVERY = 10  # steps between multi-process checks for a stop request


class _StopRequest:
  """Turns SIGTERM and Ctrl-C into a flag the loop checks after each step (then it checkpoints)."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    logging.warning("signal %d: checkpointing and stopping after this step", signum)
    self.requested = True

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def training_splits(config: ml_collections.ConfigDict) -> list[str]:
  """The patch records' splits a run trains on: every fold but the held-out one."""
  splits = {f"fold{k}": k for k in range(config.data.num_folds)}
  return held_out.split(splits, splits, config.data.eval_fold)[0]


def _check_finite(step: int, loss: float, grad_norm: float, manager) -> None:
  """Stops training at the first non-finite loss or gradient; no later checkpoint is written."""
  if np.isfinite(loss) and np.isfinite(grad_norm):
    return
  manager.wait_until_finished()
  kept = manager.latest_step()
  raise TrainingDiverged(
      f"training diverged at step {step}: non-finite loss ({loss}) or gradient norm "
      f"({grad_norm}); stopped"
      + (f", the last good checkpoint (step {kept}) is kept" if kept is not None else "")
      + f". {checkpoints.AFTER_DIVERGING}")


def use_compilation_cache(config: ml_collections.ConfigDict) -> None:
  """Points JAX's persistent compilation cache at config.compilation_cache_dir, when one is set."""
  if config.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", config.compilation_cache_dir)


def jit_train_step(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
  """The jitted training step, (state, batch, rng) -> (state, metrics): the one training runs and
  `bench` times. State replicated, batch split across the mesh, the state's buffers donated."""
  repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  return jax.jit(
      functools.partial(steps.train_step,
                        loss_fn=losses.from_config(config.train, config.model.num_classes),
                        flips=config.train.random_flips),
      in_shardings=(repl, split, repl), out_shardings=(repl, repl), donate_argnums=0,
      compiler_options=uresnet.train_compiler_options(),
  )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from the workdir's latest checkpoint) and returns the final eval summary."""
  workdir = pathlib.Path(workdir)
  uresnet.create_model(config.model)  # an unknown dtype is refused before any data is built
  with contextlib.ExitStack() as held:  # the lock, the checkpoint manager, the log writer
    distributed.on_chief(f"locking {workdir}",  # one lock per run: the chief's
                         lambda: held.enter_context(run_folder.lock(workdir)))
    return _train_and_evaluate(config, workdir, held)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: pathlib.Path,
                        held: contextlib.ExitStack) -> dict:
  if not 0 <= config.data.eval_fold < config.data.num_folds:
    raise InputError(
        f"config.data.eval_fold={config.data.eval_fold} must be in [0, {config.data.num_folds})"
    )
  warm_start.source_path(config)  # a missing model is refused before any record is built
  mesh = sharding.create_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh)
  # A resume that began at other weights is refused before any other setting is compared.
  distributed.everywhere("seeding step 0 from config.train.init_from",
                         lambda: warm_start.seed_from_config(config, workdir))
  checkpoints.check_compatible(workdir, config)
  if jax.process_count() > 1 and distributed.any_process(prepare_data.cohort_missing(config)):
    distributed.everywhere("generating the phantom cohort", lambda: prepare_data.generate_share(
        config, jax.process_index(), jax.process_count()))
  builder = distributed.once("the cohort and its patch records",
                            lambda: prepare_data.ensure_records(config),
                            lambda: patch_records.open_patches(config))

  train_splits = training_splits(config)
  source = input_pipeline.ConcatSource(
      [builder.as_data_source(split=s) for s in train_splits], train_splits
  )
  global_batch = config.train.batch_size
  per_epoch = input_pipeline.steps_per_epoch(len(source), global_batch)
  if per_epoch == 0:
    raise InputError(
        f"the training folds hold {len(source)} patches, fewer than one batch of {global_batch}; "
        "lower --config.train.batch_size or use a larger cohort"
    )
  total_steps = per_epoch * config.train.epochs
  fold_of = patch_records.get_fold_assignment(builder)
  distributed.on_chief("checking the workdir's experiment", lambda: checkpoints.check_experiment(
      workdir, builder.builder_config.cohort_fingerprint, fold_of, input_pipeline.DATA_ORDER))
  train_records, held_out_records = held_out.split(nifti_io.read_cohort(config.data.cohort),
                                                   fold_of, config.data.eval_fold, held_out.subject)
  info = predictor.model_info(config)
  if jax.process_index() != 0:  # only process 0 evaluates
    held_out_records, train_records = [], []
  eval_subjects = scoring.load_eval_subjects(held_out_records, info)
  train_subjects = (
      scoring.load_eval_subjects(train_records, info) if config.train.eval_train_subjects else []
  )

  model = uresnet.create_model(config.model)
  init_rng, step_rng = jax.random.split(jax.random.key(config.seed))
  state = steps.create_train_state(init_rng, config, model, per_epoch)
  state = jax.device_put(state, sharding.replicated(mesh))
  manager = checkpoints.create_checkpoint_manager(workdir, config.train.keep_checkpoints)
  held.callback(manager.close)
  state = checkpoints.restore_latest(manager, state)
  if jax.process_index() == 0:
    run_folder.write_config(workdir, config)
  start_step = int(state.step)
  schedule = steps.create_learning_rate_schedule(config, per_epoch)

  train_step = jit_train_step(config, mesh)
  # Evaluation runs on process 0's own devices, with its copy of the replicated state.
  local_mesh = sharding.create_mesh(jax.local_devices())
  forward = predictor.flax_forward(model, local_mesh)
  is_chief = jax.process_index() == 0
  writer = (tensorboardX.SummaryWriter(str(workdir / run_folder.TENSORBOARD)) if is_chief
            else None)
  if writer is not None:
    held.callback(writer.close)
  # Async dispatch of collectives across fake CPU devices can hang XLA's rendezvous
  # (docs/measured.md, Software).
  block_each_step = jax.default_backend() == "cpu" and mesh.devices.size > 1

  def run_eval(step: int) -> dict | None:
    if not is_chief:
      return None
    variables = distributed.local_copy({"params": state.params, "batch_stats": state.batch_stats})
    model_now = predictor.Predictor(lambda images: forward(variables, images), info,
                                    config.predict, local_mesh.devices.size)
    start = time.perf_counter()
    rows = scoring.evaluate_subjects(model_now, eval_subjects)
    summary = scoring.summarize(rows)
    train_rows = scoring.evaluate_subjects(model_now, train_subjects)
    train_summary = scoring.summarize(train_rows)
    run_folder.write_eval(workdir, rows, summary, step, step / per_epoch)
    if train_rows:  # the training subjects' Dice (the paper's Figure 3)
      run_folder.write_eval(workdir, train_rows, train_summary, step, step / per_epoch, train=True)
    for tag, values in (("eval", summary), ("train_eval", train_summary)):
      for name, s in values.items():
        if s["n_subjects"] and name == "false_stroke":
          writer.add_scalar(f"{tag}/false_stroke_ml_median", s["median_ml"], step)
        elif s["n_subjects"]:
          writer.add_scalar(f"{tag}/{name}_dice", s["dice_mean"], step)
    tqdm.write(f"step {step}: held-out fold {config.data.eval_fold}: "
               f"{scoring.format_summary(summary)} ({time.perf_counter() - start:.1f} s)")
    return summary

  print(f"{len(source)} training patches ({'+'.join(train_splits)}), {len(eval_subjects)} held-out "
        f"subjects (fold{config.data.eval_fold}); {per_epoch} steps of {global_batch} per epoch, "
        f"{config.train.epochs} epochs, {mesh.devices.size} {jax.default_backend()} device(s), "
        f"from step {start_step}")
  batches = input_pipeline.iterate_batches(
      source, start_step, total_steps, global_batch, config.seed,
      jax.process_index(), jax.process_count(),
  )
  summary = None
  with _StopRequest() as stop, progress.bar(
      total=total_steps, initial=start_step, unit="step", disable=not is_chief, desc="train",
  ) as bar:
    pending, start, times = None, time.perf_counter(), collections.deque(maxlen=11)
    for step, host in zip(range(start_step, total_steps), batches):
      state, step_metrics = train_step(state, sharding.put_batch(host, mesh), step_rng)
      if block_each_step or step == start_step:
        jax.block_until_ready(step_metrics)
      if step == start_step:
        tqdm.write(f"first step (compile + run): {time.perf_counter() - start:.1f} s")
      elif pending is not None:  # metrics fetched one step late so dispatch runs ahead
        loss = float(pending[1]["loss"])
        _check_finite(pending[0] + 1, loss, float(pending[1]["grad_norm"]), manager)
        times.append(time.perf_counter())
        rate = global_batch * (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        bar.set_postfix(loss=f"{loss:.4f}", patches_s=f"{rate:.1f}")
        if is_chief:
          writer.add_scalar("train/loss", loss, pending[0])
          writer.add_scalar("train/learning_rate", float(schedule(pending[0])), pending[0])
          if rate:
            writer.add_scalar("train/patches_per_s", rate, pending[0])
      pending = (step, step_metrics)
      bar.update(1)
      done = step + 1
      if done % per_epoch == 0:
        if (done // per_epoch) % config.train.eval_every == 0 or done == total_steps:
          summary = run_eval(done)  # reported only: no model is ever chosen by held-out Dice
          times.clear()  # the rate window restarts after an evaluation
        checkpoints.save(manager, done, state)
      # A signal on any host stops them all at the same step: with several processes that takes a
      # collective, asked every STOP_CHECK_EVERY steps so as not to sync the hosts at each step.
      at_check = jax.process_count() == 1 or done % STOP_CHECK_EVERY == 0 or done == total_steps
      if at_check and distributed.any_process(stop.requested):
        checkpoints.save(manager, done, state)
        manager.wait_until_finished()
        raise SystemExit(f"interrupted at step {done}: checkpoint saved in {workdir}; rerun to resume")
  if summary is None:  # no step taken: a finished run's own evaluation, else a new one
    recorded = is_chief and run_folder.read_eval(workdir, int(state.step))
    summary = run_folder.eval_summary(recorded) if recorded else run_eval(int(state.step))
  manager.wait_until_finished()
  return summary
