"""The classical baseline: z-score thresholding in white matter, threshold chosen on training data."""
import numpy as np
import pytest

from uresnet_jax.evaluation import baseline


def _subject(seed: int, lesion_z: float = 3.0):
  rng = np.random.default_rng(seed)
  image = rng.normal(0, 0.5, (16, 16, 4, 1)).astype(np.float32)
  truth = np.zeros((16, 16, 4), np.uint8)
  truth[4:9, 4:9, 1:3] = 1
  image[truth == 1, 0] = lesion_z + rng.normal(0, 0.3, int(truth.sum()))
  return image, truth


def test_region_is_white_matter_inside_the_brain_or_the_brain():
  mask = np.zeros((4, 4, 1), bool)
  mask[1:3, 1:3] = True
  wm = np.zeros((4, 4, 1))
  wm[2:, :] = 0.9
  assert baseline.region(mask, wm, 0.5).sum() == 2
  assert baseline.region(mask, None, 0.5).sum() == 4


def test_segment_labels_everything_bright_as_wmh():
  image, truth = _subject(0)
  where = np.ones(truth.shape, bool)
  labels = baseline.segment(image, where, 2.0)
  assert set(np.unique(labels)) <= {0, 1}  # never stroke: it cannot tell them apart
  assert (labels == truth).mean() > 0.99
  where[:, :8] = False
  assert not baseline.segment(image, where, 2.0)[:, :8].any()


def test_fit_chooses_the_threshold_that_separates_the_training_subjects():
  subjects = [(*_subject(s)[:1], np.ones((16, 16, 4), bool), _subject(s)[1]) for s in range(3)]
  thresholds = [0.5 + 0.25 * i for i in range(15)]
  chosen = baseline.fit(subjects, thresholds)
  assert 1.5 <= chosen <= 2.25  # above the background's tail, below the lesions
  from uresnet_jax.evaluation import metrics
  mean_dice = {t: np.mean([metrics.dice(truth, baseline.segment(image, where, t), 1)
                           for image, where, truth in subjects]) for t in thresholds}
  assert mean_dice[chosen] == max(mean_dice.values())
  assert chosen == min(t for t in thresholds if mean_dice[t] == mean_dice[chosen])  # ties: lowest
  with pytest.raises(ValueError, match="no training subjects"):
    baseline.fit([], thresholds)
