"""Every console script's `--help` lists the command's own flags with their help and defaults, and
none of absl's or the libraries' (those are `--helpfull`'s); commands start without matplotlib, and
the light ones' `--help` without JAX and the training stack."""
import ast
import concurrent.futures
import pathlib
import re
import subprocess
import sys

from conftest import ROOT, subprocess_env


def console_scripts() -> dict[str, str]:
  """setup.py's console scripts, name -> the module under uresnet_jax that `python -m` runs: a
  script added there is tested without reinstalling the package."""
  setup = ast.parse((ROOT / "setup.py").read_text())
  entry_points = next(node.value for node in ast.walk(setup)
                      if isinstance(node, ast.keyword) and node.arg == "entry_points")
  targets = dict(s.replace(" ", "").split("=") for s in
                 ast.literal_eval(entry_points)["console_scripts"])
  return {name: target.split(":")[0].removesuffix(".__main__").removeprefix("uresnet_jax.")
          for name, target in targets.items()}


def own_sections(helpfull: str) -> list[str]:
  """The module sections of `--helpfull` (a header line, then that module's flags) whose module is
  this repository's: the command's own flags, each with its help text and default."""
  sections = re.split(r"\n\n(?=\S)", helpfull.split("\nflags:\n", 1)[1].strip())
  return [s for s in sections if s.startswith("uresnet_jax.")
          or pathlib.Path(s.splitlines()[0].removesuffix(":")).is_relative_to(ROOT)]


def run_help(module: str, flag: str) -> subprocess.CompletedProcess:
  """`python -X importtime -m uresnet_jax.<module> FLAG`: conftest's run_module, with the modules
  the command imported listed on stderr."""
  return subprocess.run([sys.executable, "-X", "importtime", "-m", f"uresnet_jax.{module}", flag],
                        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)


def imported(stderr: str) -> set[str]:
  """The modules a process imported, from its `-X importtime` lines."""
  return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
          if line.startswith("import time:")}


FULL = ("predict", "main")  # compared with --helpfull section by section (each a few seconds)
# Commands whose `--help` (and a refused flag) imports none of HEAVY: they import them where the
# work starts. The others define their flags in the module that does the work.
LIGHT = ("predict", "main", "evaluate", "phantom", "release_gate", "lesion_probe",
         "lesion_brightness", "longitudinal", "longitudinal.benchmark")
HEAVY = {"jax", "flax", "optax", "orbax", "tensorflow_datasets", "grain", "apache_beam",
         "matplotlib"}


def test_help_lists_the_commands_own_flags_only():
  scripts = console_scripts()
  calls = [(module, "--help") for module in scripts.values()] + [(m, "--helpfull") for m in FULL]
  with concurrent.futures.ThreadPoolExecutor() as pool:  # a few seconds of imports each
    results = dict(zip(calls, pool.map(lambda call: run_help(*call), calls)))
  for name, module in scripts.items():
    help_ = results[module, "--help"]
    assert help_.returncode == 0, (name, help_.stderr[-2000:])
    own = own_sections(help_.stdout)
    assert own and all(re.search(r"^  --\S+: ", s, re.M) for s in own), (name, help_.stdout)
    assert "--alsologtostderr" not in help_.stdout, name
  for module in FULL:
    help_, full = results[module, "--help"], results[module, "--helpfull"]
    assert full.returncode == 0 and "--alsologtostderr" in full.stdout, full.stderr[-2000:]
    for section in own_sections(full.stdout):
      assert section in help_.stdout, (module, section, help_.stdout)
  assert all(f"  --{flag}: " in results["predict", "--help"].stdout
             for flag in ("input", "output", "model"))
  for module in LIGHT:
    names = imported(results[module, "--help"].stderr)
    assert "uresnet_jax.common.cli" in names and not names & HEAVY, (module, names & HEAVY)


def test_commands_start_without_matplotlib():
  """matplotlib is imported by the first figure drawn (`evaluation.report.figure`), not with a
  command's modules: `--help`, a refusal and a run that draws nothing do not pay for it."""
  modules = ("uresnet_jax.predict", "uresnet_jax.release_gate", "uresnet_jax.longitudinal.report")
  result = subprocess.run(
      [sys.executable, "-c", f"import sys, {', '.join(modules)}; print('matplotlib' in sys.modules)"],
      cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "False"
