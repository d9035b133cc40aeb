"""Batch order from (seed, step): epochs are permutations, resumes land exactly, sources concatenate."""
import numpy as np
import pytest

from uresnet_jax import input_pipeline
from uresnet_jax.errors import InputError


class _ListSource:
  def __init__(self, values):
    self._values = values

  def __len__(self):
    return len(self._values)

  def __getitem__(self, i):
    v = self._values[i]
    return {"image": np.full((2, 2, 1), v, np.float32), "label": np.full((2, 2), v % 3, np.uint8)}


def test_each_epoch_visits_every_record_once_in_a_new_order():
  n, batch = 40, 8
  per_epoch = input_pipeline.steps_per_epoch(n, batch)
  epoch0 = np.concatenate([input_pipeline.batch_indices(s, n, batch, 7) for s in range(per_epoch)])
  epoch1 = np.concatenate(
      [input_pipeline.batch_indices(s, n, batch, 7) for s in range(per_epoch, 2 * per_epoch)])
  np.testing.assert_array_equal(np.sort(epoch0), np.arange(n))
  np.testing.assert_array_equal(np.sort(epoch1), np.arange(n))
  assert not np.array_equal(epoch0, epoch1)


def test_partial_last_batch_is_dropped():
  assert input_pipeline.steps_per_epoch(41, 8) == 5
  assert input_pipeline.steps_per_epoch(7, 8) == 0


def test_processes_split_the_global_batch():
  whole = input_pipeline.batch_indices(3, 100, 8, 0)
  parts = [input_pipeline.batch_indices(3, 100, 8, 0, p, 2) for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_iterate_from_a_step_equals_the_tail_of_a_full_pass():
  source = input_pipeline.ConcatSource([_ListSource(list(range(30))), _ListSource(list(range(30, 50)))],
                                       ["fold0", "fold2"])
  assert len(source) == 50
  full = list(input_pipeline.iterate_batches(source, 0, 12, 8, seed=3))
  resumed = list(input_pipeline.iterate_batches(source, 7, 12, 8, seed=3))
  assert len(full) == 12 and len(resumed) == 5
  for a, b in zip(full[7:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])
  values = full[0]["image"][:, 0, 0, 0].astype(int)
  np.testing.assert_array_equal(values, input_pipeline.batch_indices(0, 50, 8, 3))
  assert full[0]["label"].dtype == np.int32


def test_empty_split_is_a_clear_error():
  with pytest.raises(InputError, match="fold1.*empty"):
    input_pipeline.ConcatSource([_ListSource([1]), _ListSource([])], ["fold0", "fold1"])


def test_reader_errors_reach_the_consumer():
  class Broken(_ListSource):
    def __getitem__(self, i):
      raise OSError("disk gone")

  source = input_pipeline.ConcatSource([Broken([1, 2, 3, 4])], ["fold0"])
  with pytest.raises(OSError, match="disk gone"):
    list(input_pipeline.iterate_batches(source, 0, 1, 2, seed=0))
