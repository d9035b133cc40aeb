"""uResNet (Guerrero et al. 2018): a 2D residual U-Net with summation skips, in Flax linen.

Layout is NHWC throughout. The network is exactly the published one; these rewrites (same
parameters, same outputs) make its training step fast on XLA:CPU (docs/measured.md):
- the 3x3 stride-2 transposed convolutions are computed as a sub-pixel convolution (a 2x2
  ordinary convolution to 4x the channels, then depth-to-space) built from the same 3x3 kernel,
  because XLA:CPU differentiates transposed convolutions ~17x slower than ordinary ones;
- a residual element's 3x3 convolution and 1x1 projection, both linear in the same input, run as
  one 3x3 convolution whose kernel is the 3x3 kernel plus the 1x1 kernel at its centre tap;
- batch norm and max-pooling (a reshape + max) have hand-written backward passes, which XLA:CPU
  runs several times faster than those of nn.BatchNorm and nn.max_pool;
- `train_compiler_options()` keeps XLA:CPU from handing kernel-gradient convolutions to YNNPACK.
Parameters count exactly as in the paper (1,079,427 at base width 32).
"""
import functools
from typing import Any

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np

from uresnet_jax.common.errors import InputError

Array = jax.Array
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
# Per spatial axis: which 3x3 tap feeds sub-pixel phase a from input offset d (3 = zero tap).
# PyTorch ConvTranspose2d(k=3, s=2, p=1, output_padding=1) gives out[2m] = W[1] x[m] and
# out[2m+1] = W[2] x[m] + W[0] x[m+1].
_SUBPIXEL_TAPS = np.array([[1, 2], [3, 0]])  # [d, a]
# XLA:CPU (jax 0.10) hands convolutions to YNNPACK by default; its kernel-gradient convolutions
# run 5-20x slower than XLA's own (Eigen), which made the training step ~2x slower. These keep
# YNNPACK for dots and reductions only (the default list minus INDIVIDUAL_CONVOLUTION).
_CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


def train_compiler_options(backend: str | None = None) -> dict[str, str] | None:
  """`compiler_options` for jax.jit of a training step: CPU-only XLA settings, else None."""
  backend = backend or jax.default_backend()
  return dict(_CPU_COMPILER_OPTIONS) if backend == "cpu" else None


def inference_compiler_options(backend: str | None = None) -> dict[str, str] | None:
  """`compiler_options` for jax.jit of whole-slice inference: on XLA:CPU, no YNNPACK at all.

  The forward pass alone runs ~1.6x faster on XLA's own kernels than with YNNPACK convolutions
  (16 slices of 192x224 at base width 32: 0.62 s vs 1.02 s, jax 0.10.2, 2 cores)."""
  backend = backend or jax.default_backend()
  return {"xla_cpu_experimental_ynn_fusion_type": ""} if backend == "cpu" else None


def conv2d(x: Array, kernel: Array, padding: Any = "SAME") -> Array:
  """Stride-1 cross-correlation of NHWC `x` with an HWIO `kernel`."""
  return lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding=padding, dimension_numbers=_DIMENSION_NUMBERS)


def subpixel_kernel(kernel: Array) -> Array:
  """Turns a (3, 3, I, O) transposed-conv kernel into the (2, 2, I, 4*O) sub-pixel kernel.

  Output channels are ordered (row phase, column phase, O), as `depth_to_space` expects.
  """
  kh, kw, cin, cout = kernel.shape
  if (kh, kw) != (3, 3):
    raise ValueError(f"subpixel_kernel needs a 3x3 kernel, got {kh}x{kw}")
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap 3 is zero
  rows = padded[_SUBPIXEL_TAPS]  # (dy, a, 4, I, O)
  taps = rows[:, :, _SUBPIXEL_TAPS]  # (dy, a, dx, b, I, O)
  taps = taps.transpose(0, 2, 4, 1, 3, 5)  # (dy, dx, I, a, b, O)
  return taps.reshape(2, 2, cin, 4 * cout)


def depth_to_space(x: Array, block: int = 2) -> Array:
  """(N, H, W, b*b*C) -> (N, b*H, b*W, C), channels ordered (row phase, column phase, C)."""
  n, h, w, c = x.shape
  cout = c // (block * block)
  x = x.reshape(n, h, w, block, block, cout).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, cout)


def conv_transpose_2x(x: Array, kernel: Array) -> Array:
  """PyTorch ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1) without bias.

  `kernel` is (3, 3, I, O): kernel[i, j, c, o] = torch_weight[c, o, i, j]. Output is exactly 2x
  the input size, computed as an ordinary convolution so its gradients are fast on XLA:CPU.
  """
  y = conv2d(x, subpixel_kernel(kernel).astype(x.dtype), padding=((0, 1), (0, 1)))
  return depth_to_space(y)


class Deconv(nn.Module):
  """3x3 stride-2 transposed convolution with bias; output exactly twice the input size."""

  features: int
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    x = x.astype(self.dtype)
    return conv_transpose_2x(x, kernel.astype(self.dtype)) + bias.astype(self.dtype)


class ResEle(nn.Module):
  """Residual element relu(norm(conv3x3(x) + conv1x1(x))); uResNet2 puts two 3x3 convs in the path.

  With residual_convs=2 the path is conv3x3 -> norm -> relu -> conv3x3 (the usual ResNet basic
  block order), and the 1x1 projection of the block's input is added before the final norm.
  Convolutions followed by a norm carry no bias; with norm="none" every convolution has one.
  """

  features: int
  residual_convs: int = 1
  norm: str = "batch"
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  def _kernel(self, name: str, size: int, cin: int) -> Array:
    return self.param(name, self.kernel_init, (size, size, cin, self.features), jnp.float32)

  def _bias(self, name: str) -> Array:
    return self.param(name, nn.initializers.zeros, (self.features,), jnp.float32)

  def _norm(self, x: Array, train: bool, name: str) -> Array:
    if self.norm == "none":
      return x
    return BatchNorm(name=name)(x, train)

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    if self.norm not in ("batch", "none"):
      raise ValueError(f"norm must be 'batch' or 'none', got {self.norm!r}")
    if self.residual_convs not in (1, 2):
      raise ValueError(f"residual_convs must be 1 or 2, got {self.residual_convs}")
    biased = self.norm == "none"
    cin = x.shape[-1]
    x = x.astype(self.dtype)
    proj = self._kernel("proj_kernel", 1, cin)
    if self.residual_convs == 1:
      # conv3x3(x) + conv1x1(x) == one 3x3 conv with the 1x1 kernel added at the centre tap.
      kernel = self._kernel("conv_kernel", 3, cin).at[1, 1].add(proj[0, 0])
      y = conv2d(x, kernel.astype(self.dtype))
      if biased:
        y = y + (self._bias("conv_bias") + self._bias("proj_bias")).astype(self.dtype)
    else:
      h = conv2d(x, self._kernel("conv_kernel", 3, cin).astype(self.dtype))
      if biased:
        h = h + self._bias("conv_bias").astype(self.dtype)
      h = nn.relu(self._norm(h, train, "inner_norm")).astype(self.dtype)
      y = conv2d(h, self._kernel("conv2_kernel", 3, self.features).astype(self.dtype))
      y = y + conv2d(x, proj.astype(self.dtype))
      if biased:
        y = y + (self._bias("conv2_bias") + self._bias("proj_bias")).astype(self.dtype)
    return nn.relu(self._norm(y, train, "norm")).astype(self.dtype)


@jax.custom_vjp
def max_pool_2x(x: Array) -> Array:
  """2x2 max-pool, stride 2 (H and W even), with nn.max_pool's gradient.

  The gradient goes to the first maximum of each window in row-major order, as nn.max_pool's
  and PyTorch's do; written out as one elementwise pass, because autodiff of the reshape + max
  shares it among tied maxima through a reduction that XLA:CPU fuses with the neighbouring
  convolution and hands to YNNPACK (slower there than XLA's own convolution).
  """
  return _max_pool_2x_fwd(x)[0]


def _max_pool_2x_fwd(x: Array) -> tuple[Array, tuple[Array, Array]]:
  n, h, w, c = x.shape
  y = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
  return y, (x, y)


def _max_pool_2x_bwd(residuals: tuple[Array, Array], dy: Array) -> tuple[Array]:
  x, y = residuals
  n, h, w, c = x.shape
  windows = x.reshape(n, h // 2, 2, w // 2, 2, c)
  taken = jnp.zeros(y.shape, bool)
  rows = []
  for i in range(2):
    cols = []
    for j in range(2):
      first = (windows[:, :, i, :, j] == y) & ~taken
      taken = taken | first
      cols.append(jnp.where(first, dy, jnp.zeros_like(dy)))
    rows.append(jnp.stack(cols, axis=3))  # (n, h/2, w/2, 2, c)
  return (jnp.stack(rows, axis=2).reshape(n, h, w, c),)


max_pool_2x.defvjp(_max_pool_2x_fwd, _max_pool_2x_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _batch_norm_train(x: Array, scale: Array, bias: Array, epsilon: float):
  """Normalises over all axes but the last; returns (y, mean, var). mean, var carry no gradient."""
  return _batch_norm_train_fwd(x, scale, bias, epsilon)[0]


def _batch_norm_train_fwd(x, scale, bias, epsilon):
  axes = tuple(range(x.ndim - 1))
  mean = jnp.mean(x, axes)
  var = jnp.mean(jnp.square(x - mean), axes)
  inv_std = lax.rsqrt(var + epsilon)
  y = (x - mean) * (inv_std * scale) + bias
  return (y, mean, var), (x, mean, inv_std, scale)


def _batch_norm_train_bwd(epsilon, residuals, cotangents):
  del epsilon
  x, mean, inv_std, scale = residuals
  dy = cotangents[0]
  axes = tuple(range(x.ndim - 1))
  n = x.size // x.shape[-1]
  x_hat = (x - mean) * inv_std
  dbias = jnp.sum(dy, axes)
  dscale = jnp.sum(dy * x_hat, axes)
  dx = (scale * inv_std / n) * (n * dy - dbias - x_hat * dscale)
  return dx, dscale, dbias


_batch_norm_train.defvjp(_batch_norm_train_fwd, _batch_norm_train_bwd)


class BatchNorm(nn.Module):
  """Batch norm over (N, H, W) in float32, variables named as nn.BatchNorm's.

  Same numbers as nn.BatchNorm(momentum=0.9, epsilon=1e-5) (PyTorch's momentum 0.1), with the
  closed-form backward pass, which XLA:CPU runs ~2x faster than autodiff through the statistics.
  """

  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    x = x.astype(jnp.float32)
    if not train:
      return (x - ra_mean.value) * (lax.rsqrt(ra_var.value + self.epsilon) * scale) + bias
    y, mean, var = _batch_norm_train(x, scale, bias, self.epsilon)
    if not self.is_initializing():
      m = self.momentum
      ra_mean.value = m * ra_mean.value + (1 - m) * lax.stop_gradient(mean)
      ra_var.value = m * ra_var.value + (1 - m) * lax.stop_gradient(var)
    return y


class UResNet(nn.Module):
  """uResNet: 4-level residual encoder, 3 deconvolutions, summation skips, 1x1 head to logits.

  Input NHWC with H and W multiples of 8 (see `pad_to_multiple`); output float32 logits
  (N, H, W, num_classes).
  """

  base_width: int = 32
  num_classes: int = 3
  residual_convs: int = 1
  norm: str = "batch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    if x.ndim != 4 or x.shape[1] % 8 or x.shape[2] % 8:
      raise ValueError(f"UResNet needs NHWC input with H, W multiples of 8, got shape {x.shape}")
    c = self.base_width

    def res(features, name):
      return ResEle(features, self.residual_convs, self.norm, self.dtype, name=name)

    def up(features, name):
      return Deconv(features, self.dtype, name=name)

    e1 = res(c, "e1")(x, train)
    e2 = res(2 * c, "e2")(max_pool_2x(e1), train)
    e3 = res(4 * c, "e3")(max_pool_2x(e2), train)
    e4 = res(8 * c, "e4")(max_pool_2x(e3), train)
    u = res(4 * c, "d1")(up(4 * c, "up1")(e4), train)
    u = res(2 * c, "d2")(u + e3, train)
    u = res(2 * c, "d3")(up(2 * c, "up2")(u) + e2, train)
    u = res(c, "d4")(up(c, "up3")(u) + e1, train)
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="head")(u)
    return logits.astype(jnp.float32)


COMPUTE_DTYPES = ("float32", "bfloat16")


def create_model(model_config: ml_collections.ConfigDict) -> UResNet:
  """Builds the network from config.model (base_width, num_classes, residual_convs, norm, dtype).

  dtype is the compute dtype: "bfloat16" is mixed precision (parameters, batch norm, and the loss
  stay float32)."""
  dtype = model_config.get("dtype", "float32")
  if dtype not in COMPUTE_DTYPES:
    raise InputError(f"config.model.dtype={dtype!r}: choose from {', '.join(COMPUTE_DTYPES)}")
  return UResNet(
      base_width=model_config.base_width,
      num_classes=model_config.num_classes,
      residual_convs=model_config.residual_convs,
      norm=model_config.norm,
      dtype=jnp.dtype(dtype))


def pad_to_multiple(
    x: Array, multiple: int = 8, value: float = -3.0) -> tuple[Array, tuple[int, int]]:
  """Pads the spatial axes of (..., H, W, C) at the bottom/right up to multiples of `multiple`.

  `value` is the background intensity (config.preprocess.clip_low). Returns the padded array and
  the original (H, W) for `crop_to`.
  """
  h, w = x.shape[-3], x.shape[-2]
  pad = [(0, 0)] * x.ndim
  pad[-3] = (0, -h % multiple)
  pad[-2] = (0, -w % multiple)
  xp = np if isinstance(x, np.ndarray) else jnp
  return xp.pad(x, pad, constant_values=value), (h, w)


def crop_to(x: Array, size: tuple[int, int]) -> Array:
  """Undoes `pad_to_multiple` on (..., H', W', C): keeps the top-left (H, W)."""
  h, w = size
  return x[..., :h, :w, :]
