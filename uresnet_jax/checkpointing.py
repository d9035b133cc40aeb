"""Orbax checkpoints in <workdir>/checkpoints: the latest few plus the best by held-out WMH Dice."""
import contextlib
import fcntl
import gc
import json
import logging
import os
import pathlib
import sys
import threading
import time
from typing import Any, Iterator

import jax
import ml_collections
import orbax.checkpoint as ocp

from uresnet_jax import atomic, steps
from uresnet_jax.errors import InputError

# Fields whose change makes an existing checkpoint unusable (shapes or meaning of the parameters).
_COMPATIBILITY_FIELDS = (
    ("model", "base_width"), ("model", "num_classes"), ("model", "residual_convs"),
    ("model", "norm"), ("data", "channels"),
)


_all_finite = jax.jit(steps.all_finite)


def create_checkpoint_manager(workdir: pathlib.Path, keep: int) -> ocp.CheckpointManager:
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=keep),
      ocp.checkpoint_managers.BestN(
          get_metric_fn=lambda m: m["wmh_dice"], reverse=False, n=1,
          keep_checkpoints_without_metrics=False,
      ),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, cleanup_tmp_directories=True)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() / "checkpoints", options=options)


def check_compatible(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir whose saved config differs in what the parameters depend on."""
  saved_path = pathlib.Path(workdir) / "config.json"
  if not saved_path.exists() or not (pathlib.Path(workdir) / "checkpoints").exists():
    return
  saved = json.loads(saved_path.read_text())
  for section, field in _COMPATIBILITY_FIELDS:
    old = saved.get(section, {}).get(field)
    new = config[section][field]
    if isinstance(new, (tuple, list)):
      new, old = list(new), list(old or [])
    if old != new:
      raise InputError(
          f"{workdir} holds a checkpoint trained with {section}.{field}={old!r}, not {new!r}; "
          "use a new --workdir or the original config"
      )


@contextlib.contextmanager
def workdir_lock(workdir: pathlib.Path) -> Iterator[None]:
  """Holds <workdir>/.lock while a run trains in it: a second run started on the same workdir is
  refused (the lock is the kernel's, so a killed run leaves none behind)."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / ".lock", "a+") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      holder = lock.read().strip() or "?"
      raise InputError(f"{workdir}: another training run (pid {holder}) is using it; wait for it "
                       "to finish or use another --workdir") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    yield


def write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as config.json (atomically)."""
  atomic.write_text(pathlib.Path(workdir) / "config.json",
                    config.to_json_best_effort(indent=2, sort_keys=True))


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> Any:
  """The newest readable checkpoint restored into `state`'s structure and shardings, or `state` if
  there is none. A damaged checkpoint (files truncated or missing, or holding NaN/Inf) is reported
  on one line, moved to <workdir>/damaged_checkpoints/ and the previous one tried; if checkpoints
  exist but none is readable, training does not silently start from scratch."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  steps_found = sorted(manager.all_steps(), reverse=True)
  for step in steps_found:
    try:
      with quiet_tensorstore_errors():
        restored = manager.restore(step, args=ocp.args.StandardRestore(target))
      if not bool(_all_finite(restored)):
        raise ValueError("it holds NaN or Inf")
      return restored
    except Exception as e:  # Orbax/TensorStore raise ValueError, OSError, KeyError, ... for damage
      reason = " ".join(str(e).split())[:160] or type(e).__name__
      print(f"warning: checkpoint step {step} in {manager.directory} is damaged ({reason}); "
            "moved to damaged_checkpoints/, trying the previous one", file=sys.stderr)
      _set_aside(manager, step)
  if steps_found:
    raise InputError(f"{manager.directory}: none of the {len(steps_found)} checkpoint(s) could be "
                     "restored (moved to damaged_checkpoints/); rerun to start from scratch, or "
                     "use another --workdir")
  return state


def _set_aside(manager: ocp.CheckpointManager, step: int) -> None:
  source = pathlib.Path(manager.directory) / str(step)
  damaged = pathlib.Path(manager.directory).parent / "damaged_checkpoints"
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


def save(manager: ocp.CheckpointManager, step: int, state: Any, metrics: dict | None) -> None:
  """Saves `state` at `step` (asynchronously) unless that step is already saved; a state holding
  a NaN or Inf is never written."""
  if step in manager.all_steps():
    return
  if not bool(_all_finite(state)):
    manager.wait_until_finished()
    raise InputError(
        f"step {step}: the parameters or optimiser state hold NaN or Inf; not checkpointed, "
        f"training stopped (the last good checkpoint, step {manager.latest_step()}, is kept). "
        "Lower --config.train.learning_rate or set --config.train.grad_clip_norm")
  manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)
