"""Training batches from the TFDS patch records, on grain: per-epoch seeded shuffles, threaded reads.

The data order is a pure function of (seed, step), so a run resumed from a checkpoint at step s
reads exactly the batches an uninterrupted run would have read from step s on. It is computed by
a grain `MapDataset` over record indices (shuffle, batch, repeat), which gives the indices of any
step directly, without a per-step permutation of all records and without replaying earlier steps;
each step's records are then read in one batched call per source and decoded once per batch.

Nothing here needs an accelerator: iterating `iterate_batches` alone times the input pipeline.
"""
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from uresnet_jax.common.errors import InputError

if TYPE_CHECKING:  # imported where used: importing grain defines absl flags (tests/test_layout.py)
  import grain

DATA_ORDER = "grain-1"  # names the order below; a change of order needs a new name (a resume
# of a run begun under another order is refused: model/checkpoints.check_experiment)
_FIELDS = {"image": np.float32, "label": np.int32}  # what a host batch holds, as what dtype

Batch = dict[str, np.ndarray]


class ConcatSource:
  """Random access over several TFDS data sources (the training folds) as one index space."""

  def __init__(self, sources: Sequence, names: Sequence[str]):
    for source, name in zip(sources, names):
      if len(source) == 0:
        raise InputError(f"TFDS split {name!r} is empty; rebuild the records or check the cohort")
    self._sources = list(sources)
    self._readers = [_raw_reader(s) or _decoded_reader(s) for s in self._sources]
    self._starts = np.cumsum([0] + [len(s) for s in self._sources])

  def __len__(self) -> int:
    return int(self._starts[-1])

  def read(self, indices: Sequence[int] | np.ndarray) -> Batch:
    """Reads records by global index (one batched read per source) and stacks image and label."""
    indices = np.asarray(indices, np.int64)
    which = np.searchsorted(self._starts, indices, side="right") - 1
    out: Batch = {}
    for w in np.unique(which):
      rows = np.flatnonzero(which == w)
      part = self._readers[w]((indices[rows] - self._starts[w]).tolist())
      for key, dtype in _FIELDS.items():
        if key not in out:
          out[key] = np.empty((len(indices), *part[key].shape[1:]), dtype)
        out[key][rows] = part[key]
    return out


def _decoded_reader(source) -> Callable[[list[int]], Batch]:
  """Reads decoded records (a list read where the source has one) and stacks them."""

  def read(keys: list[int]) -> Batch:
    getitems = getattr(source, "__getitems__", None)
    records = getitems(keys) if getitems is not None else [source[k] for k in keys]
    return {key: np.stack([r[key] for r in records]).astype(dtype)
            for key, dtype in _FIELDS.items()}

  return read


def _raw_reader(source) -> Callable[[list[int]], Batch] | None:
  """For a TFDS array_record source whose image and label are fixed-shape tensors stored as raw
  bytes (as patches_tfds writes them): reads the serialized examples in one call and turns each
  field's bytes into one array per batch, instead of TFDS decoding every feature of every record.
  None for any other source, which is then read decoded."""
  try:  # imported here: the pipeline itself runs on any random-access sources
    from tensorflow_datasets.core import decode
    from tensorflow_datasets.core.data_sources import array_record
    from tensorflow_datasets.core.features import tensor_feature
    from tensorflow_datasets.proto import tf_example_pb2
  except ImportError:
    return None
  if (not isinstance(source, array_record.ArrayRecordDataSource) or source.decoders
      or source.deserialize_method != decode.DeserializeMethod.DESERIALIZE_AND_DECODE):
    return None
  features = source.dataset_info.features
  layout = {}
  for key in _FIELDS:
    feature = features[key] if key in features else None
    if (type(feature) is not tensor_feature.Tensor  # pylint: disable=unidiomatic-typecheck
        or feature.to_json_content().encoding != tensor_feature.Encoding.BYTES.value
        or any(d is None for d in feature.shape)):
      return None
    layout[key] = (np.dtype(feature.np_dtype), tuple(feature.shape))

  def read(keys: list[int]) -> Batch:
    examples = [tf_example_pb2.Example.FromString(r).features.feature
                for r in source.data_source.__getitems__(keys)]
    out = {}
    for key, dtype in _FIELDS.items():
      stored, shape = layout[key]
      try:
        data = b"".join(e[key].bytes_list.value[0] for e in examples)
      except IndexError:
        raise InputError(f"{source!r}: a record has no {key!r} bytes") from None
      if len(data) != len(keys) * stored.itemsize * int(np.prod(shape)):
        raise InputError(f"{source!r}: {key!r} records are not {shape} {stored}")
      out[key] = np.frombuffer(data, stored).reshape(len(keys), *shape).astype(dtype)
    return out

  return read


def steps_per_epoch(num_records: int, global_batch: int) -> int:
  """Whole batches per pass over the records (the last partial batch is dropped)."""
  return num_records // global_batch


def _shuffle_seed(seed: int) -> int:
  """The 32-bit grain shuffle seed for `seed`, hashed: grain shuffles epoch e with seed + e, so
  unhashed, run seed s + 1 would read run seed s's order one epoch early."""
  return int(np.random.SeedSequence(seed).generate_state(1)[0])


def batch_indices_dataset(
    num_records: int, global_batch: int, seed: int, process_index: int = 0, process_count: int = 1,
) -> "grain.MapDataset":
  """Element s: the record indices of this process's rows of global batch s (any s >= 0).

  Each epoch is a fresh seeded shuffle of all records cut into whole global batches; process p
  takes rows [p*b, (p+1)*b) of each, b = global_batch // process_count.
  """
  import grain  # pylint: disable=g-import-not-at-top,redefined-outer-name
  if global_batch % process_count:
    raise ValueError(f"global batch {global_batch} does not split over {process_count} processes")
  if steps_per_epoch(num_records, global_batch) == 0:
    raise InputError(f"{num_records} records are fewer than one batch of {global_batch}")
  per_process = global_batch // process_count
  first = process_index * per_process
  return (grain.MapDataset.range(num_records)
          .shuffle(seed=_shuffle_seed(seed))
          .batch(global_batch, drop_remainder=True)
          .repeat()  # epoch e of the batches reads epoch e of the shuffle
          .map(lambda rows: rows[first:first + per_process]))


def iterate_batches(
    source: ConcatSource, start_step: int, end_step: int, global_batch: int, seed: int,
    process_index: int = 0, process_count: int = 1, prefetch: int = 8, num_threads: int = 4,
) -> Iterator[Batch]:
  """Yields host batches for steps [start_step, end_step): `prefetch` batches are read ahead on
  `num_threads` threads. A read error is raised here, at the batch it belongs to."""
  import grain  # pylint: disable=g-import-not-at-top,redefined-outer-name
  if end_step <= start_step:
    return
  steps = (batch_indices_dataset(len(source), global_batch, seed, process_index, process_count)
           [start_step:end_step]
           .map(source.read)
           .to_iter_dataset(grain.ReadOptions(num_threads=num_threads,
                                              prefetch_buffer_size=prefetch)))
  iterator = iter(steps)
  try:
    yield from iterator
  finally:
    iterator.close()
