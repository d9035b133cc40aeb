"""Several processes (hosts) as one training run: start-up, work done once, and agreement.

`initialize` joins the run through `jax.distributed.initialize`: from explicit flags, or (with
`auto`) from what the cluster sets (SLURM, Open MPI, a Cloud TPU pod slice, Kubernetes). Work that
writes shared files (the phantom cohort, the patch records) is done by process 0 alone while the
others wait (`once`); `any_process` lets every process see a stop request made on any one of them,
so all stop at the same step.
"""
from typing import Callable, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

from uresnet_jax.errors import InputError

T = TypeVar("T")


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, auto: bool) -> bool:
  """Joins a multi-process run when asked; returns whether one was joined."""
  explicit = any(v is not None for v in (coordinator_address, num_processes, process_id))
  if not (explicit or auto):
    return False
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
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


def once(name: str, chief: Callable[[], T], others: Callable[[], T]) -> T:
  """Process 0 runs `chief` while the others wait, then they run `others` (e.g. open what process 0
  made). A failure on process 0 stops every process. One process: just `chief`."""
  if jax.process_count() == 1:
    return chief()
  result, error = None, None
  if jax.process_index() == 0:
    try:
      result = chief()
    except Exception as e:  # re-raised below, after the others have heard of it
      error = e
  if any_process(error is not None):  # a collective: the barrier
    if error is not None:
      raise error
    raise InputError(f"process 0 failed while preparing {name}; its log says why")
  return result if jax.process_index() == 0 else others()


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on at least one (a collective: all must call)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def local_copy(tree):
  """This process's copy of a replicated tree: usable by computations on its own devices."""
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)
