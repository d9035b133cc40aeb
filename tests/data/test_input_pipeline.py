"""Batch order from (seed, step): epochs are shuffles, resumes land exactly, processes split each
global batch, sources concatenate, TFDS records are decoded per batch as TFDS decodes them."""
import numpy as np
import pytest

from configs import tiny
from uresnet_jax.common.errors import InputError
from uresnet_jax.data import input_pipeline, patch_records


class _ListSource:
  """Record i's image holds its value (the global index, below), so batches show their records."""

  def __init__(self, values):
    self._values = values

  def __len__(self):
    return len(self._values)

  def __getitem__(self, i):
    v = self._values[i]
    return {"image": np.full((2, 2, 1), v, np.float32), "label": np.full((2, 2), v % 3, np.uint8)}


def _source(n=50):  # two folds, 30 + 20 records
  return input_pipeline.ConcatSource([_ListSource(list(range(30))), _ListSource(list(range(30, n)))],
                                     ["fold0", "fold2"])


def _records(batches):
  return [b["image"][:, 0, 0, 0].astype(int) for b in batches]


def test_iterate_from_a_step_equals_the_tail_of_a_full_pass():
  source = _source()
  assert len(source) == 50
  full = list(input_pipeline.iterate_batches(source, 0, 14, 8, seed=3))
  resumed = list(input_pipeline.iterate_batches(source, 7, 14, 8, seed=3))  # mid second epoch
  assert len(full) == 14 and len(resumed) == 7
  for a, b in zip(full[7:], resumed):
    for key in ("image", "label"):
      np.testing.assert_array_equal(a[key], b[key])
  batch = full[0]
  assert batch["image"].dtype == np.float32 and batch["image"].shape == (8, 2, 2, 1)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (8, 2, 2)
  np.testing.assert_array_equal(batch["label"][:, 0, 0], _records([batch])[0] % 3)
  assert list(input_pipeline.iterate_batches(source, 5, 5, 8, seed=3)) == []


def test_the_seed_sets_the_order():
  source = _source()
  first, again, other = (_records(input_pipeline.iterate_batches(source, 0, 12, 8, seed=s))
                         for s in (3, 3, 4))
  np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
  assert not np.array_equal(np.concatenate(first), np.concatenate(other))
  # grain seeds epoch e with (seed + e); seed 3's second epoch must not be seed 4's first.
  assert not np.array_equal(np.concatenate(first[6:12]), np.concatenate(other[:6]))


def test_each_epoch_uses_whole_batches_of_distinct_records_in_a_new_order():
  source, batch = _source(), 8
  per_epoch = input_pipeline.steps_per_epoch(len(source), batch)
  assert per_epoch == 6  # 48 of the 50 records; the last partial batch is dropped
  records = _records(input_pipeline.iterate_batches(source, 0, 3 * per_epoch, batch, seed=0))
  epochs = [np.concatenate(records[e * per_epoch:(e + 1) * per_epoch]) for e in range(3)]
  for epoch in epochs:
    assert len(epoch) == per_epoch * batch == len(set(epoch.tolist()))
    assert set(epoch.tolist()) <= set(range(len(source)))
  assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_partial_last_batch_is_dropped():
  assert input_pipeline.steps_per_epoch(41, 8) == 5
  assert input_pipeline.steps_per_epoch(7, 8) == 0
  with pytest.raises(InputError, match="fewer than one batch"):
    list(input_pipeline.iterate_batches(_source(37), 0, 1, 40, seed=0))


def test_processes_read_disjoint_rows_of_the_same_global_batch():
  source = _source()
  whole = _records(input_pipeline.iterate_batches(source, 0, 8, 8, seed=1))
  parts = [_records(input_pipeline.iterate_batches(source, 0, 8, 8, seed=1, process_index=p,
                                                   process_count=2)) for p in range(2)]
  for step, rows in enumerate(whole):
    a, b = parts[0][step], parts[1][step]
    assert len(a) == len(b) == 4 and not set(a.tolist()) & set(b.tolist())
    np.testing.assert_array_equal(np.concatenate([a, b]), rows)
  with pytest.raises(ValueError, match="does not split"):
    list(input_pipeline.iterate_batches(source, 0, 1, 8, seed=1, process_count=3))


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


def test_tfds_records_read_per_batch_equal_tfds_decoding(tiny_run):
  config = tiny.get_config()
  config.data.cohort = str(tiny_run[0] / "cohort")
  config.data.records_dir = str(tiny_run[0] / "tfds")
  builder = patch_records.build_patches(config)  # built by the tiny run: only opened here
  splits = ["fold0", "fold1"]
  sources = [builder.as_data_source(split=s) for s in splits]
  assert all(input_pipeline._raw_reader(s) is not None for s in sources)  # the batched path

  class Decoded:  # the same records through TFDS's own per-record decoding
    def __init__(self, source):
      self._source = source

    def __len__(self):
      return len(self._source)

    def __getitem__(self, i):
      return self._source[i]

  fast = input_pipeline.ConcatSource(sources, splits)
  slow = input_pipeline.ConcatSource([Decoded(s) for s in sources], splits)
  indices = np.random.default_rng(0).permutation(len(fast))[:min(len(fast), 24)]
  a, b = fast.read(indices), slow.read(indices)
  for key, dtype in (("image", np.float32), ("label", np.int32)):
    assert a[key].dtype == b[key].dtype == dtype
    np.testing.assert_array_equal(a[key], b[key])
