"""Shared test set-up: XLA's persistent compilation cache (this process and every subprocess), the
one way a test starts a subprocess, the `slow` tier, and one tiny training run for the tests that
need a trained model (the main job, evaluate --workdir, predict, export)."""
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

CACHE = ROOT / "data" / "jax_cache"
jax.config.update("jax_compilation_cache_dir", str(CACHE))


def subprocess_env(**extra: str) -> dict[str, str]:
  """The environment of every subprocess a test starts: CPU only, the package importable from this
  checkout, and XLA's compilation cache shared with every other test."""
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
              JAX_COMPILATION_CACHE_DIR=str(CACHE), **extra)


def run_module(module: str, *args, cwd=ROOT, timeout: float = 600,
               **env: str) -> subprocess.CompletedProcess:
  """`python -m uresnet_jax.<module> ARGS` as a user types it, its output captured as text."""
  return subprocess.run([sys.executable, "-m", f"uresnet_jax.{module}", *map(str, args)], cwd=cwd,
                        env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout)


def main_process(workdir, data, *overrides, config="configs/tiny.py", **kwargs) -> subprocess.Popen:
  """`python -m uresnet_jax.main` on the tiny config, cohort and records under `data`."""
  args = [sys.executable, "-m", "uresnet_jax.main", f"--config={config}",
          f"--workdir={workdir}", f"--config.data.cohort={data / 'cohort'}",
          f"--config.data.records_dir={data / 'tfds'}", *overrides]
  return subprocess.Popen(args, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def run_main(workdir, data, *overrides, timeout=600, **kwargs) -> tuple[int, str, str]:
  proc = main_process(workdir, data, *overrides, **kwargs)
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


# The tiny run's overrides: its 4 phantom subjects generated in-process (two worker processes would
# each start Python and load the anatomy again; the subjects are the same for any count).
TINY_RUN = ("--config.phantom.num_workers=1",)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path, str, str]:
  """(data folder with cohort/ and tfds/, workdir, stdout, stderr) of one finished tiny run, made
  once per test session: pytest-xdist's workers share it (the first makes it, the others wait)."""
  base = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    base = base.parent  # the folder above every worker's own
  root = base / "tiny_run"
  with open(base / "tiny_run.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (root / "logs.json").exists():
      shutil.rmtree(root, ignore_errors=True)
      (root / "data").mkdir(parents=True)
      code, out, err = run_main(root / "run", root / "data", *TINY_RUN)
      assert code == 0, err[-3000:]
      (root / "logs.json").write_text(json.dumps({"stdout": out, "stderr": err}))
  logs = json.loads((root / "logs.json").read_text())
  return root / "data", root / "run", logs["stdout"], logs["stderr"]


def two_tiny_subjects(tiny_run, folder: pathlib.Path, rows: tuple[int, int] = (0, 1)
                      ) -> pathlib.Path:
  """A cohort of two of the tiny run's subjects (one to train on, one held out; `rows` of its
  subjects.csv), linked into `folder`: for the tests that need any labelled cohort and pay for each
  subject."""
  tiny = tiny_run[0] / "cohort"
  folder.mkdir()
  header, *lines = (tiny / "subjects.csv").read_text().splitlines()
  lines = [lines[row] for row in rows]
  (folder / "subjects.csv").write_text("\n".join([header, *lines]) + "\n")
  for line in lines:
    subject = line.split(",")[0]
    (folder / subject).symlink_to(tiny / subject)
  return folder


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
  """`-n auto` (pytest.ini): one worker per core, at most 4, since every worker's JAX already
  spreads its convolutions over all cores and holds its own compiled programs in memory."""
  return max(1, min(4, len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
  """End-to-end tests belong to the slow tier: the commands run as a user runs them
  (tests/commands/), and every test that needs the tiny training run. They run first, those that
  need the tiny run ahead of the rest, so that one worker trains it while the others start on
  other slow tests, and the many short tests fill the end (pytest.ini's `--dist worksteal` hands
  an idle worker half of a busy one's queue)."""
  commands = ROOT / "tests" / "commands"
  for item in items:
    if "tiny_run" in getattr(item, "fixturenames", ()) or commands in item.path.parents:
      item.add_marker(pytest.mark.slow)

  def tier(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is None:
      return 2
    return 0 if "tiny_run" in getattr(item, "fixturenames", ()) else 1

  items.sort(key=tier)  # stable: each tier keeps pytest's order
