"""Shared test set-up: XLA's persistent compilation cache, and one tiny training run for the
tests that need a trained model (the main job, evaluate --workdir, predict, export)."""
import os
import pathlib
import subprocess
import sys

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

jax.config.update("jax_compilation_cache_dir", str(ROOT / "data" / "jax_cache"))


def main_process(workdir, data, *overrides, config="configs/tiny.py", **kwargs) -> subprocess.Popen:
  """`python -m uresnet_jax.main` on the tiny config, cohort and records under `data`."""
  args = [sys.executable, "-m", "uresnet_jax.main", f"--config={config}",
          f"--workdir={workdir}", f"--config.data.cohort={data / 'cohort'}",
          f"--config.data.records_dir={data / 'tfds'}", *overrides]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def run_main(workdir, data, *overrides, timeout=600, **kwargs) -> tuple[int, str, str]:
  proc = main_process(workdir, data, *overrides, **kwargs)
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path, str, str]:
  """(data folder with cohort/ and tfds/, workdir, stdout, stderr) of one finished tiny run."""
  data = tmp_path_factory.mktemp("data")
  workdir = tmp_path_factory.mktemp("run")
  code, out, err = run_main(workdir, data)
  assert code == 0, err[-3000:]
  return data, workdir, out, err
