"""Every console script's `--help` lists the command's own flags with their help and defaults, and
none of absl's or the libraries' (those are `--helpfull`'s); commands start without matplotlib."""
import ast
import concurrent.futures
import pathlib
import re
import subprocess
import sys

from conftest import ROOT, run_module, subprocess_env


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


FULL = ("predict", "main")  # compared with --helpfull section by section (each a few seconds)


def test_help_lists_the_commands_own_flags_only():
  scripts = console_scripts()
  calls = [(module, "--help") for module in scripts.values()] + [(m, "--helpfull") for m in FULL]
  with concurrent.futures.ThreadPoolExecutor() as pool:  # a few seconds of imports each
    results = dict(zip(calls, pool.map(lambda call: run_module(*call, timeout=300), calls)))
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


def test_commands_start_without_matplotlib_and_predict_without_jax():
  """matplotlib is imported by the first figure drawn (`evaluation.report.figure`), not with a
  command's modules, and predict imports JAX where it first needs it: `--help`, a refusal and a run
  that draws nothing do not pay for them."""
  modules = ("uresnet_jax.predict", "uresnet_jax.release_gate", "uresnet_jax.longitudinal.report")
  result = subprocess.run(
      [sys.executable, "-c", f"import sys, {', '.join(modules)}; print('matplotlib' in sys.modules)"],
      cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "False"
  help_ = subprocess.run([sys.executable, "-X", "importtime", "-m", "uresnet_jax.predict", "--help"],
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
  assert help_.returncode == 0 and "--input" in help_.stdout, help_.stderr[-2000:]
  imported = {line.rsplit("|", 1)[-1].strip() for line in help_.stderr.splitlines()}
  assert "uresnet_jax.inference.segment" in imported
  assert not imported & {"jax", "matplotlib"}
