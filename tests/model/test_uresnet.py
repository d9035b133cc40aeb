"""Tests for uresnet_jax.model.uresnet: structure, the deconv rewrite, batch norm, whole-slice
padding."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from uresnet_jax.model import uresnet


def _init(model: nn.Module, x):
  """Variables shaped as model.init's, filled from numpy: compiling the init's threefry RNG
  takes XLA:CPU ~15 s, and these tests need values, not the initialisation scheme."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if "batch_stats" in name:
      return jnp.full(leaf.shape, 1.0 if "var" in name else 0.0, leaf.dtype)
    return jnp.asarray(rng.normal(0.0, 0.3, leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _apply(model: nn.Module, variables, x, train: bool):
  """Jitted apply; in train mode returns (logits, updated batch_stats)."""
  if train:
    apply = lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])
    return jax.jit(apply)(variables, x)
  return jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)


def _param_count(model: nn.Module, shape=(1, 64, 64, 1)) -> int:
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))


def _torch_conv_transpose(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """PyTorch ConvTranspose2d(k=3, s=2, p=1, output_padding=1) by its definition, NHWC."""
  n, h, w, _ = x.shape
  out = np.zeros((n, 2 * h, 2 * w, kernel.shape[-1]))
  for i in range(h):
    for j in range(w):
      for ky in range(3):
        for kx in range(3):
          oy, ox = 2 * i - 1 + ky, 2 * j - 1 + kx
          if 0 <= oy < 2 * h and 0 <= ox < 2 * w:
            out[:, oy, ox] += x[:, i, j] @ kernel[ky, kx]
  return out


def test_param_count_matches_paper():
  assert _param_count(uresnet.UResNet()) == 1_079_427


def test_create_model_reads_config():
  config = default.get_config()
  model = uresnet.create_model(config.model)
  fields = (model.base_width, model.num_classes, model.residual_convs, model.norm)
  assert fields == (32, 3, 1, "batch")
  assert _param_count(model) == 1_079_427


def test_uresnet2_has_more_params_and_runs():
  assert _param_count(uresnet.UResNet(residual_convs=2)) > _param_count(uresnet.UResNet())
  model = uresnet.UResNet(base_width=4, residual_convs=2)
  x = jnp.ones((2, 16, 16, 1))
  logits, _ = _apply(model, _init(model, x), x, train=True)
  assert logits.shape == (2, 16, 16, 3)


def test_deconv_matches_transposed_convolution():
  x = jax.random.normal(jax.random.key(1), (2, 5, 7, 3))
  kernel = jax.random.normal(jax.random.key(2), (3, 3, 3, 4))
  out = uresnet.conv_transpose_2x(x, kernel)
  assert out.shape == (2, 10, 14, 4)
  # lax.conv_transpose without kernel transposition correlates with the kernel as given; PyTorch
  # semantics need it flipped, with padding (k - 1 - p, k - 1 - p + output_padding) = (1, 2).
  reference = jax.lax.conv_transpose(
      x, kernel[::-1, ::-1], (2, 2), ((1, 2), (1, 2)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(out, reference, atol=1e-5)
  by_definition = _torch_conv_transpose(np.asarray(x), np.asarray(kernel))
  np.testing.assert_allclose(out, by_definition, atol=1e-5)


def test_deconv_module_doubles_size_with_transposed_conv_params():
  x = jnp.ones((1, 4, 6, 8))
  variables = uresnet.Deconv(5).init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, variables["params"]) == {"kernel": (3, 3, 8, 5), "bias": (5,)}
  assert uresnet.Deconv(5).apply(variables, x).shape == (1, 8, 12, 5)


def test_fused_residual_element_equals_separate_convolutions():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  block = uresnet.ResEle(4, norm="none")
  params = _init(block, x)["params"]
  separate = (uresnet.conv2d(x, params["conv_kernel"]) + params["conv_bias"]
              + uresnet.conv2d(x, params["proj_kernel"]) + params["proj_bias"])
  np.testing.assert_allclose(
      block.apply({"params": params}, x, train=False), jax.nn.relu(separate), atol=1e-5)


def test_max_pool_matches_flax_values_and_gradients_with_ties():
  # Small integers make many windows hold tied maxima: the gradient must go to the first one.
  x = jax.random.randint(jax.random.key(0), (2, 8, 6, 3), 0, 3).astype(jnp.float32)
  dy = jax.random.normal(jax.random.key(1), (2, 4, 3, 3))
  ours, ours_vjp = jax.vjp(uresnet.max_pool_2x, x)
  flax_, flax_vjp = jax.vjp(lambda x: nn.max_pool(x, (2, 2), strides=(2, 2)), x)
  np.testing.assert_array_equal(ours, flax_)
  np.testing.assert_array_equal(ours_vjp(dy)[0], flax_vjp(dy)[0])
  assert int((ours_vjp(dy)[0] != 0).sum()) == dy.size  # one position per window, ties or not


def test_batch_norm_matches_flax_values_gradients_and_statistics():
  x = jax.random.normal(jax.random.key(0), (4, 6, 6, 5)) * 3 + 1
  ours = uresnet.BatchNorm()
  flax_bn = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)
  v_ours = ours.init(jax.random.key(1), x, train=True)
  v_flax = flax_bn.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, v_ours) == jax.tree.map(jnp.shape, v_flax)
  params = {"scale": jnp.arange(5.0) + 0.5, "bias": jnp.arange(5.0) * 0.1}

  def loss(apply, stats, p, x):
    y, updates = apply({"params": p, "batch_stats": stats}, x)
    return jnp.sum(jnp.sin(y)), updates["batch_stats"]

  ours_apply = lambda v, x: ours.apply(v, x, train=True, mutable=["batch_stats"])
  flax_apply = lambda v, x: flax_bn.apply(v, x, mutable=["batch_stats"])
  grad = jax.value_and_grad(loss, argnums=(2, 3), has_aux=True)
  (l1, s1), g1 = grad(ours_apply, v_ours["batch_stats"], params, x)
  (l2, s2), g2 = grad(flax_apply, v_flax["batch_stats"], params, x)
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), (g1, s1), (g2, s2))


def test_batch_norm_train_uses_batch_statistics_eval_uses_running_ones():
  model = uresnet.UResNet(base_width=4)
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 1)) * 2 + 5
  variables = _init(model, x)
  before = variables["batch_stats"]
  train_out, updates = _apply(model, variables, x, train=True)
  # Running means move 10 % of the way to the batch means (PyTorch momentum 0.1).
  e1_mean = np.asarray(updates["batch_stats"]["e1"]["norm"]["mean"])
  assert np.all(np.abs(e1_mean) > 0) and not np.allclose(e1_mean, before["e1"]["norm"]["mean"])
  eval_out = _apply(model, variables, x, train=False)  # no mutable collections needed
  assert eval_out.shape == train_out.shape == (2, 16, 16, 3)
  assert not np.allclose(eval_out, train_out)
  # Eval mode is per-example: a patch's logits do not depend on the rest of the batch;
  # train mode normalises with the batch's statistics, so they do.
  np.testing.assert_allclose(_apply(model, variables, x[:1], train=False), eval_out[:1], atol=1e-5)
  assert not np.allclose(_apply(model, variables, x[:1], train=True)[0], train_out[:1], atol=1e-5)


def test_norm_none_has_biases_and_no_batch_stats():
  model = uresnet.UResNet(base_width=4, norm="none")
  x = jnp.ones((1, 16, 16, 1))
  variables = _init(model, x)
  assert "batch_stats" not in variables
  assert set(variables["params"]["e1"]) == {"conv_kernel", "conv_bias", "proj_kernel", "proj_bias"}
  assert jax.jit(lambda v, x: model.apply(v, x, train=True))(variables, x).shape == (1, 16, 16, 3)


def test_patch_and_whole_slice():
  model = uresnet.UResNet(base_width=4)
  variables = _init(model, jnp.zeros((1, 64, 64, 1)))
  patch = jax.random.normal(jax.random.key(1), (2, 64, 64, 1))
  assert _apply(model, variables, patch, train=False).shape == (2, 64, 64, 3)
  slice_ = np.random.default_rng(0).normal(size=(1, 233, 197, 1)).astype(np.float32)
  padded, size = uresnet.pad_to_multiple(slice_, 8, value=-3.0)
  assert padded.shape == (1, 240, 200, 1) and size == (233, 197)
  assert isinstance(padded, np.ndarray)
  np.testing.assert_array_equal(padded[:, 233:], -3.0)
  np.testing.assert_array_equal(padded[:, :, 197:], -3.0)
  logits = uresnet.crop_to(_apply(model, variables, padded, train=False), size)
  assert logits.shape == (1, 233, 197, 3)
  np.testing.assert_array_equal(uresnet.crop_to(padded, size), slice_)


def test_input_not_multiple_of_8_is_rejected():
  model = uresnet.UResNet(base_width=4)
  with pytest.raises(ValueError, match="multiples of 8"):
    model.init(jax.random.key(0), jnp.zeros((1, 20, 16, 1)), train=False)


def test_compiler_options_only_on_cpu_and_results_unchanged():
  assert uresnet.train_compiler_options("tpu") is None
  options = uresnet.train_compiler_options("cpu")
  assert "INDIVIDUAL_CONVOLUTION" not in options["xla_cpu_experimental_ynn_fusion_type"]
  assert float(jax.jit(lambda x: x + 1, compiler_options=uresnet.train_compiler_options())(1.0)) == 2.0
  assert uresnet.inference_compiler_options("gpu") is None
  assert uresnet.inference_compiler_options("cpu") == {"xla_cpu_experimental_ynn_fusion_type": ""}
  model = uresnet.UResNet(base_width=4)
  x = jax.random.normal(jax.random.key(0), (2, 16, 24, 1))
  variables = _init(model, x)
  apply = lambda v, x: model.apply(v, x, train=False)
  plain = jax.jit(apply)(variables, x)
  for options in (uresnet.train_compiler_options(), uresnet.inference_compiler_options()):
    np.testing.assert_allclose(jax.jit(apply, compiler_options=options)(variables, x), plain,
                               rtol=1e-4, atol=1e-5)  # the options change speed, not results


def test_bfloat16_compute_keeps_float32_parameters_and_is_close_to_float32():
  config = default.get_config()
  config.model.base_width = 4
  config.model.dtype = "bfloat16"
  half = uresnet.create_model(config.model)
  config.model.dtype = "float32"
  full = uresnet.create_model(config.model)
  x = jax.random.normal(jax.random.key(3), (2, 16, 16, 1))
  variables = _init(full, x)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(_init(half, x)))
  (logits_half, _), (logits_full, _) = (_apply(m, variables, x, train=True) for m in (half, full))
  assert logits_half.dtype == logits_full.dtype == jnp.float32  # the loss sees float32
  gap = float(jnp.max(jnp.abs(jax.nn.softmax(logits_half) - jax.nn.softmax(logits_full))))
  assert 0 < gap < 0.05  # computed in bfloat16 (8 bits of mantissa), yet close


def test_unknown_compute_dtype_is_refused():
  config = default.get_config()
  config.model.dtype = "float16"
  with pytest.raises(uresnet.InputError, match="config.model.dtype='float16'"):
    uresnet.create_model(config.model)
