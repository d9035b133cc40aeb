"""TrainState, optimiser, learning-rate schedule and the train step: pure functions, jitted by the
caller (prediction's forward pass is inference/predictor.flax_forward)."""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state


# Initialisation runs once: XLA:CPU spends ~2 s optimising the random-number code of each distinct
# parameter shape (~45 s for this net), unoptimised it compiles in ~4 s and runs just as well.
_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


class TrainState(train_state.TrainState):
  batch_stats: Any


def create_learning_rate_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The paper's schedule: constant, then x decay_factor from decay_epoch on (counted in steps)."""
  return optax.piecewise_constant_schedule(
      config.train.learning_rate,
      {config.train.decay_epoch * steps_per_epoch: config.train.decay_factor},
  )


def create_train_state(
    rng: jax.Array, config: ml_collections.ConfigDict, model: nn.Module, steps_per_epoch: int
) -> TrainState:
  size = config.sampling.patch_size
  dummy = jnp.zeros((1, size, size, len(config.data.channels)), jnp.float32)
  init = jax.jit(functools.partial(model.init, train=False)).lower(rng, dummy)
  variables = init.compile(compiler_options=_INIT_COMPILER_OPTIONS)(rng, dummy)
  tx = optax.adam(create_learning_rate_schedule(config, steps_per_epoch))
  if config.train.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(config.train.grad_clip_norm), tx)
  return TrainState.create(
      apply_fn=model.apply, params=variables["params"],
      batch_stats=variables.get("batch_stats", {}), tx=tx,
  )


def random_flips(key: jax.Array, image: jax.Array, label: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Flips each patch left-right and up-down, each with probability 1/2."""
  flips = jax.random.bernoulli(key, 0.5, (2, image.shape[0]))
  for axis, flip in zip((1, 2), flips):
    image = jnp.where(flip[:, None, None, None], jnp.flip(image, axis), image)
    label = jnp.where(flip[:, None, None], jnp.flip(label, axis), label)
  return image, label


def train_step(
    state: TrainState, batch: dict[str, jax.Array], rng: jax.Array, *,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array], flips: bool,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One Adam step on a global batch; the step number is folded into the key."""
  image, label = batch["image"], batch["label"]
  if flips:
    image, label = random_flips(jax.random.fold_in(rng, state.step), image, label)

  def compute_loss(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, image, train=True,
        mutable=["batch_stats"],
    )
    return loss_fn(logits, label), updates.get("batch_stats", state.batch_stats)

  (loss, batch_stats), grads = jax.value_and_grad(compute_loss, has_aux=True)(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return new_state, {"loss": loss, "grad_norm": optax.global_norm(grads)}


def all_finite(tree: Any) -> jax.Array:
  """True when every floating-point leaf of `tree` is finite (no NaN, no Inf)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
