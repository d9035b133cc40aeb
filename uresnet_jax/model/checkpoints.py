"""Orbax checkpoints in a run's checkpoints folder: the latest few, a run's weights restored for
prediction or a new run, and the checks that a resume continues the same experiment.

No checkpoint is chosen by held-out Dice: the model a run reports is its last one (the paper made
every choice on the training fold only)."""
import contextlib
import gc
import logging
import os
import pathlib
import sys
import threading
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from uresnet_jax.common import distributed
from uresnet_jax.common.errors import DamagedCheckpoint, InputError, TrainingDiverged
from uresnet_jax.model import run_folder, steps, uresnet

# Every setting that defines an experiment: a resume must match each (the epoch count may grow).
EXPERIMENT_FIELDS = (
    "seed", "data.channels", "data.num_folds", "data.eval_fold", "preprocess.inplane_mm",
    "preprocess.clip_low", "sampling.patch_size", "sampling.wmh_rate", "sampling.stroke_rate",
    "sampling.max_shift", "sampling.healthy_rate", "sampling.bright_share", "sampling.bright_z",
    "sampling.slice_share", "sampling.dark_share", "sampling.dark_z",
    "model.base_width", "model.num_classes", "model.residual_convs", "model.norm", "model.dtype",
    "train.loss", "train.class_weights", "train.bootstrap_tau", "train.batch_size",
    "train.learning_rate", "train.decay_epoch", "train.decay_factor", "train.random_flips",
    "train.grad_clip_norm",
)
# What to do once training diverged: a resume is exact, so the same command repeats the same steps,
# and a resume with other settings is refused (EXPERIMENT_FIELDS).
AFTER_DIVERGING = ("Train again in a new --workdir with a lower learning rate "
                   "(--config.train.learning_rate; finetune: --learning_rate) or with "
                   "--config.train.grad_clip_norm set")


_all_finite = jax.jit(steps.all_finite)


def create_checkpoint_manager(workdir: pathlib.Path, keep: int) -> ocp.CheckpointManager:
  policy = ocp.checkpoint_managers.LatestN(n=keep)
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, cleanup_tmp_directories=True)
  return ocp.CheckpointManager(run_folder.checkpoint_dir(workdir), options=options)


def _get(tree: dict, dotted: str):
  for part in dotted.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return _MISSING
    tree = tree[part]
  return tree


_MISSING = object()


def flat_fields(tree: dict, prefix: str = "") -> dict:
  """{"a": {"b": x}} -> {"a.b": x}, tuples as lists: a saved config.json and a live config compare."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flat_fields(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
  return flat


def check_compatible(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir whose run had any other experiment setting (EXPERIMENT_FIELDS),
  naming the first that differs; settings the saved config predates are not compared."""
  saved = run_folder.read_config(workdir) if run_folder.checkpoint_steps(workdir) else None
  if saved is None:
    return
  current = config.to_dict()
  for field in EXPERIMENT_FIELDS:
    old, new = _get(saved, field), _get(current, field)
    if old is _MISSING or new is _MISSING:
      continue
    if isinstance(new, (tuple, list)):
      new, old = list(new), list(old or [])
    if old != new:
      raise InputError(
          f"{workdir} holds a run trained with {field}={old!r}, not {new!r}; "
          "use a new --workdir or the original setting")


def check_experiment(workdir: pathlib.Path, fingerprint: str, fold_of: dict[str, int],
                     data_order: str) -> None:
  """Records the cohort's content fingerprint, fold assignment and data order (the input
  pipeline's, `input_pipeline.DATA_ORDER`) in <workdir>/experiment.json on a fresh run, and refuses
  a resume on other data, other folds, or batches another version of the pipeline ordered."""
  record = {"cohort_fingerprint": fingerprint, "fold_of_subject": dict(sorted(fold_of.items())),
            "data_order": data_order}
  saved = run_folder.read_experiment(workdir) if run_folder.checkpoint_steps(workdir) else None
  if saved is not None:
    saved_order = saved.get("data_order", "numpy-1")  # runs before the order was recorded
    if saved_order != data_order:
      raise InputError(f"{workdir} holds a run whose batches came in another data order "
                       f"({saved_order}; this version's is {data_order}), which a resume cannot "
                       "continue; use a new --workdir or the version that started it")
    if saved.get("cohort_fingerprint") != fingerprint:
      raise InputError(f"{workdir} holds a run trained on other data (cohort fingerprint "
                       f"{saved.get('cohort_fingerprint')}, this cohort's is {fingerprint}); use "
                       "a new --workdir or the original cohort")
    if saved.get("fold_of_subject") != record["fold_of_subject"]:
      raise InputError(f"{workdir} holds a run with another fold assignment; use a new --workdir")
    return
  run_folder.write_experiment(workdir, record)


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> Any:
  """The newest readable checkpoint restored into `state`'s structure and shardings, or `state` if
  there is none. A damaged checkpoint (files truncated or missing, or holding NaN/Inf) is reported
  on one line, moved to <workdir>/damaged_checkpoints/ (by process 0 alone) and the previous one
  tried, by every process together; if checkpoints exist but none is readable, training does not
  silently start from scratch."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  steps_found = sorted(manager.all_steps(), reverse=True)
  for step in steps_found:
    restored, error = distributed.attempt(lambda: _restore_finite(manager, step, target))
    if not distributed.any_process(error is not None):  # every process takes the same step
      return restored
    if error is None:
      reason = "another process could not read it"
    else:  # Orbax/TensorStore raise ValueError, OSError, KeyError, ... for damage
      reason = " ".join(str(error).split())[:160] or type(error).__name__
    print(f"warning: checkpoint step {step} in {manager.directory} is damaged ({reason}); "
          "moved to damaged_checkpoints/, trying the previous one", file=sys.stderr)
    distributed.once(f"setting aside checkpoint {step}", lambda: _set_aside(manager, step),
                     manager.reload)  # process 0 moves it; the others then see it gone
  if steps_found:
    raise DamagedCheckpoint(
        f"{manager.directory}: none of the {len(steps_found)} checkpoint(s) could be restored, "
        "all are damaged (moved to damaged_checkpoints/); rerun to start the run from scratch, "
        "or use another --workdir")
  return state


def _restore_finite(manager: ocp.CheckpointManager, step: int, target: Any) -> Any:
  with quiet_tensorstore_errors():
    restored = manager.restore(step, args=ocp.args.StandardRestore(target))
  if not bool(_all_finite(restored)):
    raise ValueError("it holds NaN or Inf")
  return restored


def _set_aside(manager: ocp.CheckpointManager, step: int) -> None:
  source = pathlib.Path(manager.directory) / str(step)
  damaged = run_folder.damaged_dir(manager.directory)
  damaged.mkdir(exist_ok=True)
  target = damaged / str(step)
  suffix = 1
  while target.exists():
    target, suffix = damaged / f"{step}.{suffix}", suffix + 1
  if source.exists():
    os.replace(source, target)
  manager.reload()


@contextlib.contextmanager
def quiet_tensorstore_errors():
  """A damaged checkpoint makes TensorStore fail every array read, and each failure is reported
  again by its callback threads (on a closed event loop) and, whenever its future is collected, by
  asyncio's logger. The one line above is enough: the threads are silenced while they finish and,
  once a checkpoint was found damaged, asyncio's logger for the rest of the process."""
  logger = logging.getLogger("asyncio")
  level, thread_hook, unraisable_hook = logger.level, threading.excepthook, sys.unraisablehook
  logger.setLevel(logging.CRITICAL + 1)
  threading.excepthook = lambda args: None
  sys.unraisablehook = lambda args: None
  try:
    yield
    logger.setLevel(level)
  finally:
    gc.collect()
    time.sleep(0.2)  # TensorStore's callback threads finish failing
    threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook


def save(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
  """Saves `state` at `step` (asynchronously) unless that step is already saved; a state holding
  a NaN or Inf is never written."""
  if step in manager.all_steps():
    return
  if not bool(_all_finite(state)):
    manager.wait_until_finished()
    raise TrainingDiverged(
        f"training diverged at step {step}: the parameters or optimiser state hold NaN or Inf; "
        f"not checkpointed, stopped (the last good checkpoint, step {manager.latest_step()}, is "
        f"kept). {AFTER_DIVERGING}")
  manager.save(step, args=ocp.args.StandardSave(state), force=True)


def restore_variables(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                      checkpoint: str = "latest") -> tuple[int, dict]:
  """(step, {"params", "batch_stats"}) of a run's checkpoint, "latest" or a step number, as numpy
  arrays: the weights that predict, export and a warm start use; the optimiser state is never
  read."""
  directory = run_folder.checkpoint_dir(workdir)
  if not directory.is_dir():
    raise InputError(f"{workdir}: no checkpoints folder (not a training run, or not started)")
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  if checkpoint == "latest":
    step = manager.latest_step()
    if step is None:
      raise InputError(f"{workdir}: no checkpoint to predict with")
  elif checkpoint.isdigit() and int(checkpoint) in manager.all_steps():
    step = int(checkpoint)
  else:
    raise InputError(f"--checkpoint={checkpoint}: choose latest or one of the saved steps "
                     f"{sorted(manager.all_steps())}")
  model = uresnet.create_model(config.model)
  size = 8 * max(1, config.sampling.patch_size // 8)
  dummy = np.zeros((1, size, size, len(config.data.channels)), np.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy, train=False))
  target = {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})}
  target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
  try:
    with quiet_tensorstore_errors():
      restored = ocp.PyTreeCheckpointer().restore(
          directory / str(step) / "default",
          args=ocp.args.PyTreeRestore(item=target, partial_restore=True,
                                      restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(
                                          restore_type=np.ndarray), target)))
  except Exception as e:  # Orbax/TensorStore raise ValueError, OSError, KeyError, ... for damage
    reason = " ".join(str(e).split())[:160] or type(e).__name__
    raise DamagedCheckpoint(f"cannot restore checkpoint step {step} from {directory} (damaged?): "
                            f"{reason}; choose another with --checkpoint") from None
  return step, {"params": restored["params"], "batch_stats": restored["batch_stats"]}
