"""Tests for uresnet_jax.model.losses against numbers worked out by hand."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.model import losses

# Two voxels, three classes. Voxel 0: logits (0, 0, 0), label 1 -> p = 1/3 each.
# Voxel 1: logits (log 2, 0, log 1) = (log 2, 0, 0), label 0 -> p = (1/2, 1/4, 1/4).
LOGITS = jnp.array([[0.0, 0.0, 0.0], [np.log(2.0), 0.0, 0.0]])
LABELS = jnp.array([1, 0], jnp.uint8)
CE = np.array([np.log(3.0), np.log(2.0)])


def test_cross_entropy_mean():
  np.testing.assert_allclose(losses.cross_entropy(LOGITS, LABELS), CE.mean(), rtol=1e-6)


def test_cross_entropy_voxel_weights_normalise_by_their_sum():
  weights = jnp.array([1.0, 3.0])
  expected = (CE[0] + 3 * CE[1]) / 4
  np.testing.assert_allclose(losses.cross_entropy(LOGITS, LABELS, weights), expected, rtol=1e-6)
  # A zero-weight voxel (e.g. padding) is ignored entirely.
  np.testing.assert_allclose(
      losses.cross_entropy(LOGITS, LABELS, jnp.array([0.0, 1.0])), CE[1], rtol=1e-6)


def test_cross_entropy_works_on_images():
  logits = jnp.broadcast_to(LOGITS[:, None, None, :], (2, 4, 5, 3))
  labels = jnp.broadcast_to(LABELS[:, None, None], (2, 4, 5))
  np.testing.assert_allclose(losses.cross_entropy(logits, labels), CE.mean(), rtol=1e-6)


def test_weighted_cross_entropy():
  class_weights = [2.0, 0.5, 1.0]  # voxel 0 is class 1 (0.5), voxel 1 class 0 (2.0)
  expected = (0.5 * CE[0] + 2.0 * CE[1]) / 2.5
  np.testing.assert_allclose(
      losses.weighted_cross_entropy(LOGITS, LABELS, class_weights), expected, rtol=1e-6)
  np.testing.assert_allclose(
      losses.weighted_cross_entropy(LOGITS, LABELS, [1.0, 1.0, 1.0]), CE.mean(), rtol=1e-6)


def test_bootstrapped_cross_entropy_drops_confident_voxels():
  # Correct-class probabilities are 1/3 and 1/2.
  np.testing.assert_allclose(
      losses.bootstrapped_cross_entropy(LOGITS, LABELS, tau=0.4), CE[0] / 2, rtol=1e-6)
  np.testing.assert_allclose(
      losses.bootstrapped_cross_entropy(LOGITS, LABELS, tau=0.9), CE.mean(), rtol=1e-6)
  np.testing.assert_allclose(losses.bootstrapped_cross_entropy(LOGITS, LABELS, tau=0.2), 0.0)


def test_pseudo_dice():
  # p = [[1/3, 1/3, 1/3], [1/2, 1/4, 1/4]], y = [[0, 1, 0], [1, 0, 0]].
  # class 0: 2 * (1/2) / (1 + 5/6) = 6/11; class 1: 2 * (1/3) / (1 + 7/12) = 8/19;
  # class 2: 0 / (0 + 7/12) = 0.
  expected = 1 - (6 / 11 + 8 / 19 + 0) / 3
  np.testing.assert_allclose(losses.pseudo_dice(LOGITS, LABELS), expected, rtol=1e-6)


def test_pseudo_dice_perfect_prediction_is_zero():
  labels = jnp.array([0, 1, 2])
  logits = 100.0 * jax.nn.one_hot(labels, 3)
  np.testing.assert_allclose(losses.pseudo_dice(logits, labels), 0.0, atol=1e-6)


def test_get_loss():
  assert losses.get_loss("cross_entropy") is losses.cross_entropy
  boot = losses.get_loss("bootstrapped_cross_entropy", tau=0.4)
  np.testing.assert_allclose(boot(LOGITS, LABELS), CE[0] / 2, rtol=1e-6)
  for name in ("weighted_cross_entropy", "pseudo_dice"):
    assert callable(losses.get_loss(name))
  with pytest.raises(InputError, match="unknown loss 'dice'"):
    losses.get_loss("dice")


def test_losses_are_differentiable_and_jittable():
  direction = jax.random.normal(jax.random.key(7), LOGITS.shape)
  for name, params in [("cross_entropy", {}),
                       ("weighted_cross_entropy", {"class_weights": [1, 2, 3]}),
                       ("bootstrapped_cross_entropy", {"tau": 0.9}),
                       ("pseudo_dice", {})]:
    fn = losses.get_loss(name, **params)
    np.testing.assert_allclose(jax.jit(fn)(LOGITS, LABELS), fn(LOGITS, LABELS), rtol=1e-6)
    grad = jax.jit(jax.grad(fn))(LOGITS, LABELS)
    assert grad.shape == LOGITS.shape and bool(jnp.all(jnp.isfinite(grad))), name
    # the gradient is the derivative: it predicts a small step's change (central difference)
    eps = 1e-2
    numeric = (fn(LOGITS + eps * direction, LABELS) - fn(LOGITS - eps * direction, LABELS)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, direction)), float(numeric), rtol=2e-2,
                               atol=1e-4, err_msg=name)


def test_losses_take_their_parameters_from_the_config():
  from configs import default
  train = default.get_config().train
  assert losses.from_config(train, 3) is losses.cross_entropy
  train.loss, train.class_weights = "weighted_cross_entropy", (1.0, 3.0, 5.0)
  # by hand: voxel 0 (label 1, CE log 3) weight 3, voxel 1 (label 0, CE log 2) weight 1
  expected = (3 * np.log(3.0) + 1 * np.log(2.0)) / 4
  np.testing.assert_allclose(losses.from_config(train, 3)(LOGITS, LABELS), expected, rtol=1e-6)
  train.loss, train.bootstrap_tau = "bootstrapped_cross_entropy", 0.4
  # p(correct) = 1/3 and 1/2: only the first is below tau = 0.4; the mean is over both voxels
  np.testing.assert_allclose(losses.from_config(train, 3)(LOGITS, LABELS), np.log(3.0) / 2,
                             rtol=1e-6)
  train.loss, train.class_weights = "weighted_cross_entropy", (1.0, 2.0)
  with pytest.raises(InputError, match="give 3 non-negative weights"):
    losses.from_config(train, 3)
  train.loss, train.bootstrap_tau = "bootstrapped_cross_entropy", 0.0
  with pytest.raises(InputError, match="bootstrap_tau"):
    losses.from_config(train, 3)
  train.loss = "focal"
  with pytest.raises(InputError, match="unknown loss 'focal'"):
    losses.from_config(train, 3)
