"""Train and predict steps: flips, learning, schedule, and data parallelism over fake CPU devices."""
import functools
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import tiny
from uresnet_jax.model import losses, steps, uresnet
from conftest import subprocess_env


def _batch(rng: np.random.Generator, n: int, size: int) -> dict[str, np.ndarray]:
  image = rng.normal(size=(n, size, size, 1)).astype(np.float32)
  label = np.zeros((n, size, size), np.int32)
  label[image[..., 0] > 1.0] = 1  # a learnable rule: bright voxels are lesion
  label[image[..., 0] > 2.0] = 2
  return {"image": image, "label": label}


def test_random_flips_flip_image_and_label_together():
  image = jnp.arange(2 * 4 * 4, dtype=jnp.float32).reshape(2, 4, 4, 1)
  label = image[..., 0].astype(jnp.int32)
  for seed in range(4):
    flipped, flipped_label = steps.random_flips(jax.random.key(seed), image, label)
    np.testing.assert_array_equal(flipped[..., 0].astype(jnp.int32), flipped_label)
    for i in range(2):  # each patch is one of the four flips of itself
      candidates = [image[i], image[i, ::-1], image[i, :, ::-1], image[i, ::-1, ::-1]]
      assert any(bool(jnp.array_equal(flipped[i], c)) for c in candidates)


def test_learning_rate_schedule_decays_at_decay_epoch():
  config = tiny.get_config()
  config.train.learning_rate, config.train.decay_epoch, config.train.decay_factor = 1e-3, 2, 0.1
  schedule = steps.create_learning_rate_schedule(config, steps_per_epoch=10)
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(19)) == pytest.approx(1e-3)
  assert float(schedule(20)) == pytest.approx(1e-4)


@pytest.mark.slow
def test_train_step_lowers_loss_and_updates_batch_stats():
  config = tiny.get_config()
  config.train.learning_rate = 1e-2
  model = uresnet.create_model(config.model)
  state = steps.create_train_state(jax.random.key(0), config, model, steps_per_epoch=100)
  step = jax.jit(functools.partial(steps.train_step, loss_fn=losses.cross_entropy, flips=True))
  batch = _batch(np.random.default_rng(0), 8, config.sampling.patch_size)
  stats_before = jax.tree.map(np.asarray, state.batch_stats)
  first = None
  for _ in range(20):
    state, metrics = step(state, batch, jax.random.key(1))
    first = float(metrics["loss"]) if first is None else first
  assert float(metrics["loss"]) < 0.5 * first
  assert int(state.step) == 20
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), stats_before, state.batch_stats)
  assert all(jax.tree.leaves(changed))


_DEVICES_SCRIPT = textwrap.dedent("""
    import functools, jax, numpy as np
    from configs import tiny
    from uresnet_jax.model import losses, uresnet, sharding, steps
    config = tiny.get_config()
    model = uresnet.create_model(config.model)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(8, 32, 32, 1)).astype(np.float32)
    batch = {"image": image, "label": (image[..., 0] > 1).astype(np.int32)}
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = sharding.create_mesh(devices)
      repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
      state = steps.create_train_state(jax.random.key(0), config, model, 10)
      state = jax.device_put(state, repl)
      step = jax.jit(functools.partial(steps.train_step, loss_fn=losses.cross_entropy, flips=True),
                     in_shardings=(repl, split, repl), out_shardings=(repl, repl))
      state, metrics = step(state, sharding.put_batch(batch, mesh), jax.random.key(1))
      jax.block_until_ready(state)
      results.append((float(metrics["loss"]), jax.tree.map(np.asarray, (state.params, state.batch_stats))))
    (loss1, tree1), (loss4, tree4) = results
    assert len(jax.devices()) == 4, jax.devices()
    np.testing.assert_allclose(loss1, loss4, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), tree1, tree4)
    print("SAME", loss1, loss4)
""")


@pytest.mark.slow
def test_four_fake_devices_give_the_same_step_as_one():
  root = pathlib.Path(__file__).resolve().parents[2]
  env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
  result = subprocess.run(
      [sys.executable, "-c", _DEVICES_SCRIPT], cwd=root, env=env, capture_output=True, text=True,
      timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "SAME" in result.stdout


@pytest.mark.slow
def test_gradient_clip_bounds_the_gradient_adam_sees_and_metrics_report_its_norm():
  config = tiny.get_config()
  model = uresnet.create_model(config.model)
  batch = _batch(np.random.default_rng(0), 8, config.sampling.patch_size)
  step = jax.jit(functools.partial(steps.train_step, loss_fn=losses.cross_entropy, flips=False))

  def first_moment_norm(clip: float) -> tuple[float, float]:
    config.train.grad_clip_norm = clip
    state = steps.create_train_state(jax.random.key(0), config, model, steps_per_epoch=10)
    state, metrics = step(state, batch, jax.random.key(1))
    mu = [s.mu for s in jax.tree.leaves(state.opt_state, is_leaf=lambda x: hasattr(x, "mu"))
          if hasattr(s, "mu")]
    return float(optax.global_norm(mu)), float(metrics["grad_norm"])

  free, grad_norm = first_moment_norm(0.0)
  clipped, same_norm = first_moment_norm(1e-3)
  b1 = 0.1  # Adam's first moment after one step: (1 - 0.9) * gradient
  assert grad_norm > 1e-2 and same_norm == pytest.approx(grad_norm, rel=1e-5)  # the raw norm
  assert free == pytest.approx(b1 * grad_norm, rel=1e-4)
  assert clipped == pytest.approx(b1 * 1e-3, rel=1e-4)


def test_all_finite_finds_nan_and_inf_in_any_leaf():
  tree = {"a": jnp.ones(3), "b": {"c": jnp.zeros((2, 2))}, "n": jnp.int32(3)}
  assert bool(steps.all_finite(tree))
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    assert not bool(steps.all_finite({**tree, "b": {"c": jnp.zeros((2, 2)).at[1, 0].set(bad)}}))
