"""Patches/s of one uResNet training step (forward, backward, Adam) on this machine.

Run from the repository root:
  python bench/bench_train_step.py                      # JAX only
  python bench/bench_train_step.py --torch              # plus the PyTorch peer, same run
  python bench/bench_train_step.py --micro_batch=32     # batch 128 as 4 accumulated micro-batches
The peer (../shared/bench/torch_uresnet.py) needs torch, which is not a project dependency.
Prints one JSON line per framework.
"""
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import optax

from uresnet_jax import losses
from uresnet_jax import models

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BATCH = flags.DEFINE_integer("batch", 128, "Patches per optimizer step.")
_MICRO_BATCH = flags.DEFINE_integer(
    "micro_batch", 0, "If > 0, run the step as batch/micro_batch accumulated micro-batches, "
    "unrolled (lax.scan runs ~16x slower on XLA:CPU); batch-norm statistics then come from "
    "each micro-batch.")
_PATCH = flags.DEFINE_integer("patch", 64, "Patch side in voxels.")
_BASE = flags.DEFINE_integer("base_width", 32, "Base width of the network.")
_RESIDUAL_CONVS = flags.DEFINE_integer("residual_convs", 1, "1: uResNet, 2: uResNet2.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
_STEPS = flags.DEFINE_integer("steps", 8, "Timed steps (the median is reported).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
_XLA_DEFAULTS = flags.DEFINE_bool(
    "xla_defaults", False, "Compile without models.train_compiler_options() (for comparison).")
_TORCH = flags.DEFINE_bool("torch", False, "Also run the PyTorch peer in this run.")
_TORCH_SCRIPT = flags.DEFINE_string(
    "torch_script", os.path.join(_REPO, "..", "shared", "bench", "torch_uresnet.py"),
    "Path of the PyTorch peer benchmark.")
_TORCH_ARGS = flags.DEFINE_string(
    "torch_args", "--channels-last --threads 2", "Extra flags for the peer.")


def make_train_step(model, tx, batch: int, micro_batch: int, compiler_options):
  """A jitted (params, batch_stats, opt_state, x, y) -> (..., loss) step, optionally accumulated."""

  def grads_of(params, batch_stats, x, y):
    def loss_fn(p):
      logits, updates = model.apply(
          {"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"])
      return losses.cross_entropy(logits, y), updates["batch_stats"]
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, new_stats, grads

  def step(params, batch_stats, opt_state, x, y):
    if micro_batch and micro_batch < batch:
      n = batch // micro_batch
      loss, grads = 0.0, jax.tree.map(jnp.zeros_like, params)
      for i in range(n):
        part = slice(i * micro_batch, (i + 1) * micro_batch)
        part_loss, batch_stats, part_grads = grads_of(params, batch_stats, x[part], y[part])
        loss = loss + part_loss / n
        grads = jax.tree.map(lambda g, p: g + p / n, grads, part_grads)
    else:
      loss, batch_stats, grads = grads_of(params, batch_stats, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  return jax.jit(step, donate_argnums=(0, 1, 2), compiler_options=compiler_options)


def bench_jax() -> dict:
  """Compiles, warms up and times the JAX train step."""
  dtype = jnp.bfloat16 if _DTYPE.value == "bfloat16" else jnp.float32
  model = models.UResNet(
      base_width=_BASE.value, residual_convs=_RESIDUAL_CONVS.value, dtype=dtype)
  kx, ky, kinit = jax.random.split(jax.random.key(0), 3)
  shape = (_BATCH.value, _PATCH.value, _PATCH.value, 1)
  x = jax.random.normal(kx, shape, jnp.float32)
  y = jax.random.randint(ky, shape[:3], 0, 3).astype(jnp.uint8)
  variables = model.init(kinit, x[:1], train=False)
  params, batch_stats = variables["params"], variables["batch_stats"]
  tx = optax.adam(5e-4)
  opt_state = tx.init(params)
  compiler_options = None if _XLA_DEFAULTS.value else models.train_compiler_options()
  step = make_train_step(model, tx, _BATCH.value, _MICRO_BATCH.value, compiler_options)

  t = time.perf_counter()
  compiled = step.lower(params, batch_stats, opt_state, x, y).compile()
  compile_s = time.perf_counter() - t
  times, step_losses = [], []
  for i in range(_WARMUP.value + _STEPS.value):
    t = time.perf_counter()
    params, batch_stats, opt_state, loss = compiled(params, batch_stats, opt_state, x, y)
    loss = float(loss)  # blocks
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - t)
    step_losses.append(loss)
  median = statistics.median(times)
  return dict(
      framework="jax", jax=jax.__version__, dtype=_DTYPE.value, batch=_BATCH.value,
      compiler_options=compiler_options or {},
      micro_batch=_MICRO_BATCH.value or _BATCH.value, residual_convs=_RESIDUAL_CONVS.value,
      params=sum(p.size for p in jax.tree.leaves(params)), compile_s=round(compile_s, 2),
      train_step_ms_median=round(median * 1e3, 1), train_step_ms_min=round(min(times) * 1e3, 1),
      train_step_ms_all=[round(t * 1e3) for t in times],
      train_patches_per_s=round(_BATCH.value / median, 1),
      loss_first_last=[round(step_losses[0], 4), round(step_losses[-1], 4)])


def bench_torch() -> dict:
  """Runs the PyTorch peer as a subprocess and returns its JSON line."""
  cmd = [sys.executable, _TORCH_SCRIPT.value, "--batch", str(_BATCH.value), "--patch",
         str(_PATCH.value), "--steps", str(_STEPS.value), "--warmup", str(_WARMUP.value + 1),
         "--skip-infer", *_TORCH_ARGS.value.split()]
  out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def main(argv):
  del argv
  if _MICRO_BATCH.value and _BATCH.value % _MICRO_BATCH.value:
    raise app.UsageError("--batch must be a multiple of --micro_batch")
  if _BASE.value != 32 and _TORCH.value:
    raise app.UsageError("the PyTorch peer is fixed at base width 32")
  print(json.dumps(bench_jax()), flush=True)
  if _TORCH.value:
    print(json.dumps(bench_torch()), flush=True)


if __name__ == "__main__":
  app.run(main)
