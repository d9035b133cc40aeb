"""Training batches from the TFDS patch records: per-epoch shuffles from the seed, prefetched.

The data order is a pure function of (seed, step), so a run resumed from a checkpoint at step s
reads exactly the batches an uninterrupted run would have read from step s on.
"""
import queue
import threading
from typing import Iterator, Sequence

import numpy as np

from uresnet_jax.errors import InputError


class ConcatSource:
  """Random access over several TFDS data sources (the training folds) as one index space."""

  def __init__(self, sources: Sequence, names: Sequence[str]):
    for source, name in zip(sources, names):
      if len(source) == 0:
        raise InputError(f"TFDS split {name!r} is empty; rebuild the records or check the cohort")
    self._sources = list(sources)
    self._starts = np.cumsum([0] + [len(s) for s in sources])

  def __len__(self) -> int:
    return int(self._starts[-1])

  def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Reads records by global index and stacks image and label."""
    which = np.searchsorted(self._starts, indices, side="right") - 1
    records = [self._sources[w][int(i - self._starts[w])] for w, i in zip(which, indices)]
    return {
        "image": np.stack([r["image"] for r in records]).astype(np.float32),
        "label": np.stack([r["label"] for r in records]).astype(np.int32),
    }


def steps_per_epoch(num_records: int, global_batch: int) -> int:
  """Whole batches per pass over the records (the last partial batch is dropped)."""
  return num_records // global_batch


def batch_indices(
    step: int, num_records: int, global_batch: int, seed: int,
    process_index: int = 0, process_count: int = 1,
) -> np.ndarray:
  """Record indices of this process's rows of global batch `step`."""
  per_epoch = steps_per_epoch(num_records, global_batch)
  epoch, position = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(num_records)
  rows = order[position * global_batch:(position + 1) * global_batch]
  per_process = global_batch // process_count
  return rows[process_index * per_process:(process_index + 1) * per_process]


def iterate_batches(
    source: ConcatSource, start_step: int, end_step: int, global_batch: int, seed: int,
    process_index: int = 0, process_count: int = 1, prefetch: int = 2,
) -> Iterator[dict[str, np.ndarray]]:
  """Yields host batches for steps [start_step, end_step), read ahead on a background thread."""
  buffer: queue.Queue = queue.Queue(maxsize=prefetch)
  stop = threading.Event()

  def produce():
    try:
      for step in range(start_step, end_step):
        indices = batch_indices(step, len(source), global_batch, seed, process_index, process_count)
        batch = source.read(indices)
        while not stop.is_set():
          try:
            buffer.put(batch, timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
    except Exception as e:  # surfaced in the consumer
      buffer.put(e)

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    for _ in range(start_step, end_step):
      item = buffer.get()
      if isinstance(item, Exception):
        raise item
      yield item
  finally:
    stop.set()
    thread.join(timeout=5)
