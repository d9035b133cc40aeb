"""Several processes (hosts) as one training run: start-up, work done once, and agreement.

`initialize` joins the run through `jax.distributed.initialize`: from explicit flags, or (with
`auto`) from what the cluster sets (SLURM, Open MPI, a Cloud TPU pod slice, Kubernetes). Work that
writes shared files (the phantom cohort, the patch records) is done by process 0 alone while the
others wait (`once`); `any_process` lets every process see a stop request made on any one of them,
so all stop at the same step. JAX is imported by the functions that use it: a command defines its
flags here (`define_flags`) without importing it, so `--help` and a refused flag start faster.
"""
from typing import Callable, TypeVar

import numpy as np

from uresnet_jax.common.errors import InputError

T = TypeVar("T")


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, auto: bool) -> bool:
  """Joins a multi-process run when asked; returns whether one was joined."""
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if not (any(given) or auto):
    return False
  if any(given) and not all(given):
    raise InputError("--coordinator_address, --num_processes and --process_id go together "
                     "(or use --distributed on a cluster that sets them)")
  if all(given) and not 0 <= process_id < num_processes:
    raise InputError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")
  import jax
  try:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  except (ValueError, RuntimeError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise InputError(f"could not join the multi-process run: {first}") from None
  return True


def define_flags() -> Callable[[], bool]:
  """Defines a CLI's multi-process flags; the function returned joins the run they describe."""
  from absl import flags
  coordinator = flags.DEFINE_string(
      "coordinator_address", None, "Multi-process run: host:port of process 0's coordinator.")
  num_processes = flags.DEFINE_integer("num_processes", None,
                                       "Multi-process run: processes in all.")
  process_id = flags.DEFINE_integer("process_id", None, "Multi-process run: this process's index.")
  auto = flags.DEFINE_bool(
      "distributed", False, "Join a multi-process run from what the cluster sets (SLURM, Open MPI, "
      "Cloud TPU pod slices, Kubernetes) without the three flags above.")
  return lambda: initialize(coordinator.value, num_processes.value, process_id.value, auto.value)


def agree(error: Exception | None, what: str) -> None:
  """Every process calls this after a step that may fail on some of them: all raise if any failed
  (the failing ones their own error, the others one line naming `what`), so none is left waiting
  at a later collective. One process: raises `error` if there is one."""
  if any_process(error is not None):
    if error is not None:
      raise error
    raise InputError(f"another process failed while {what}; its log says why")


def attempt(fn: Callable[[], T]) -> tuple[T | None, Exception | None]:
  """(result, None), or (None, the error) to hand to agree()."""
  try:
    return fn(), None
  except Exception as e:  # handed to agree(), which re-raises it
    return None, e


def on_chief(what: str, fn: Callable[[], T]) -> T | None:
  """Process 0 runs `fn` (the others get None); then all agree: its failure stops every process."""
  import jax
  result, error = attempt(fn) if jax.process_index() == 0 else (None, None)
  agree(error, what)
  return result


def everywhere(what: str, fn: Callable[[], T]) -> T:
  """Every process runs `fn`; then all agree: one process's failure stops every process."""
  result, error = attempt(fn)
  agree(error, what)
  return result


def once(name: str, chief: Callable[[], T], others: Callable[[], T]) -> T:
  """Process 0 runs `chief` while the others wait, then they run `others` (e.g. open what process 0
  made). A failure on any process stops every process. One process: just `chief`."""
  import jax
  if jax.process_count() == 1:
    return chief()
  result = on_chief(f"preparing {name}", chief)  # the barrier
  error = None
  if jax.process_index() != 0:
    result, error = attempt(others)
  agree(error, f"opening {name}")
  return result


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on at least one (a collective: all must call)."""
  import jax
  from jax.experimental import multihost_utils
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def local_copy(tree):
  """This process's copy of a replicated tree: usable by computations on its own devices."""
  import jax
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)
