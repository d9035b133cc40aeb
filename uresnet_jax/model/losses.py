"""The losses the paper compares (Guerrero et al. 2018, §2.3), as pure functions of logits.

Every loss takes logits (..., C), integer labels (...) and optional per-voxel weights (...), and
returns a scalar. Weighted means divide by the sum of the weights (as PyTorch's cross-entropy
does), so zero-weight voxels, such as slice padding, neither contribute nor dilute.
"""
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from uresnet_jax.common.errors import InputError

Array = jax.Array
LossFn = Callable[..., Array]


def _weighted_mean(values: Array, weights: Array | None) -> Array:
  if weights is None:
    return jnp.mean(values)
  weights = jnp.asarray(weights, values.dtype)
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), jnp.finfo(values.dtype).tiny)


def _voxel_cross_entropy(logits: Array, labels: Array) -> Array:
  # One-hot targets rather than optax's integer-label form: the latter's gradient is a
  # scatter-add, which XLA:CPU constant-folds slowly at compile time and runs slowly.
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), onehot)


def cross_entropy(logits: Array, labels: Array, weights: Array | None = None) -> Array:
  """Categorical cross-entropy, (weighted) mean over voxels: the paper's chosen loss."""
  return _weighted_mean(_voxel_cross_entropy(logits, labels), weights)


def weighted_cross_entropy(
    logits: Array, labels: Array, class_weights: Sequence[float] | Array,
    weights: Array | None = None) -> Array:
  """Cross-entropy with voxel weight class_weights[label], normalised by the sum of weights."""
  voxel_weights = jnp.asarray(class_weights, jnp.float32)[labels.astype(jnp.int32)]
  if weights is not None:
    voxel_weights = voxel_weights * jnp.asarray(weights, jnp.float32)
  return _weighted_mean(_voxel_cross_entropy(logits, labels), voxel_weights)


def bootstrapped_cross_entropy(
    logits: Array, labels: Array, tau: float, weights: Array | None = None) -> Array:
  """Online bootstrapped cross-entropy: voxels already right with probability > tau add 0.

  The mean is over all voxels (the easy ones count as zeros), so the loss shrinks as the
  network gets more voxels right.
  """
  ce = _voxel_cross_entropy(logits, labels)
  # p_correct = exp(-ce); p > tau  <=>  ce < -log(tau).
  hard = ce >= -jnp.log(jnp.asarray(tau, jnp.float32))
  return _weighted_mean(jnp.where(hard, ce, 0.0), weights)


def pseudo_dice(logits: Array, labels: Array, weights: Array | None = None) -> Array:
  """1 - (1/C) sum_c 2 sum(y p) / (sum y + sum p), sums over every voxel of the batch."""
  num_classes = logits.shape[-1]
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  if weights is not None:
    w = jnp.asarray(weights, jnp.float32)[..., None]
    probs, onehot = probs * w, onehot * w
  axes = tuple(range(logits.ndim - 1))
  overlap = jnp.sum(onehot * probs, axis=axes)
  total = jnp.sum(onehot, axis=axes) + jnp.sum(probs, axis=axes)
  dice = 2.0 * overlap / jnp.maximum(total, 1e-7)
  return 1.0 - jnp.mean(dice)


_LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "weighted_cross_entropy": weighted_cross_entropy,
    "bootstrapped_cross_entropy": bootstrapped_cross_entropy,
    "pseudo_dice": pseudo_dice,
}


def from_config(train_config, num_classes: int) -> LossFn:
  """config.train.loss with the parameters it takes from config.train (class_weights, tau)."""
  params = {
      "weighted_cross_entropy": {"class_weights": tuple(train_config.class_weights)},
      "bootstrapped_cross_entropy": {"tau": float(train_config.bootstrap_tau)},
  }.get(train_config.loss, {})
  if "class_weights" in params and (len(params["class_weights"]) != num_classes
                                    or min(params["class_weights"]) < 0):
    raise InputError(f"config.train.class_weights={params['class_weights']}: give {num_classes} "
                     "non-negative weights, one per class (background, WMH, stroke)")
  if "tau" in params and not 0.0 < params["tau"] <= 1.0:
    raise InputError(f"config.train.bootstrap_tau={params['tau']}: must be in (0, 1]")
  return get_loss(train_config.loss, **params)


def get_loss(name: str, **params) -> LossFn:
  """The loss called `name` as f(logits, labels, weights=None), with `params` bound.

  weighted_cross_entropy needs class_weights=..., bootstrapped_cross_entropy needs tau=....
  """
  if name not in _LOSSES:
    raise InputError(f"config.train.loss: unknown loss {name!r}; choose from {', '.join(_LOSSES)}")
  return functools.partial(_LOSSES[name], **params) if params else _LOSSES[name]
