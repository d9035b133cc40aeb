"""The package's layout holds: stage packages import only their own or lower stages, the commands on
top are imported by nothing below them, modules form no import cycle, and importing any module
changes nothing global (no umask, no matplotlib backend, no flags, no patched attributes)."""
import ast
import subprocess
import sys
import textwrap

from conftest import ROOT, subprocess_env

PACKAGE = ROOT / "uresnet_jax"
# Lowest first: a module may import its own stage or one listed before it, never one after.
STAGES = ("common", "data", "phantom", "model", "evaluation", "inference", "training", "longitudinal",
          "experiments")


def _module_name(path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
  """module -> the uresnet_jax modules it imports anywhere in its text (function bodies too)."""
  modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")
             if "release_model" not in p.parts and p != PACKAGE / "__init__.py"}
  graph = {}
  for name, path in modules.items():
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uresnet_jax"):
        for alias in node.names:
          full = f"{node.module}.{alias.name}"
          found.add(full if full in modules else node.module)
      elif isinstance(node, ast.Import):
        found |= {a.name for a in node.names if a.name.startswith("uresnet_jax.")}
    graph[name] = {m for m in found if m != name and m != "uresnet_jax"}
  return graph


def _rank(module: str) -> int:
  """The stage's place in STAGES; the commands at the top of the package rank above them all."""
  parts = module.split(".")
  return STAGES.index(parts[1]) if parts[1] in STAGES else len(STAGES)


def test_every_module_lives_in_a_stage_or_is_a_command():
  tops = {n for n in _imports() if n.count(".") == 1 and n.split(".")[1] not in STAGES}
  commands = {"main", "predict", "evaluate", "export", "finetune", "reproduce", "crossval", "bench",
              "model_card", "patches_tfds", "release", "release_gate", "lesion_probe",
              "lesion_brightness"}
  assert {n.split(".")[1] for n in tops} == commands


def test_imports_flow_down_the_stages_only():
  upward = [f"{a} -> {b}" for a, deps in _imports().items() for b in deps if _rank(b) > _rank(a)]
  assert not upward, upward


def test_no_import_cycle():
  graph, state, cycles = _imports(), {}, []

  def visit(node, path):
    state[node] = "open"
    for dep in graph.get(node, ()):
      if state.get(dep) == "open":
        cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
      elif dep not in state:
        visit(dep, path + [dep])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  assert not cycles, cycles


_SCRIPT = textwrap.dedent("""
    import os, pkgutil, importlib, sys
    umask = os.umask(0o027); os.umask(umask)
    import matplotlib
    from matplotlib import rcsetup
    from absl import flags
    from tensorflow_datasets.core import shuffle as tfds_shuffle
    import orbax.checkpoint  # defines flags of its own
    flags_before, tf_before = set(flags.FLAGS), tfds_shuffle.tf
    import uresnet_jax
    names = [m.name for m in pkgutil.walk_packages(uresnet_jax.__path__, "uresnet_jax.")
             if m.name != "uresnet_jax.main" and "release_model" not in m.name
             and not m.name.endswith("__main__")]
    for name in names:
      importlib.import_module(name)
    assert (os.umask(umask), os.umask(umask)) == (umask, umask), "umask changed"
    assert dict.__getitem__(matplotlib.rcParams, "backend") is rcsetup._auto_backend_sentinel, \\
        dict.__getitem__(matplotlib.rcParams, "backend")
    assert "matplotlib.pyplot" not in sys.modules
    assert set(flags.FLAGS) == flags_before, set(flags.FLAGS) - flags_before
    assert tfds_shuffle.tf is tf_before
    import uresnet_jax.main  # the absl entry point: its flags, as in the Flax examples
    assert set(flags.FLAGS) - flags_before == {"config", "workdir", "coordinator_address",
                                               "num_processes", "process_id", "distributed"}
    print("IMPORTED", " ".join(names))
""")


def test_importing_every_module_has_no_global_side_effect():
  result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=subprocess_env())
  assert result.returncode == 0, result.stderr[-3000:]
  imported = set(result.stdout.split("IMPORTED")[1].split())
  assert set(_imports()) - imported == {"uresnet_jax.main", "uresnet_jax.phantom.__main__",
                                        "uresnet_jax.longitudinal.__main__"}
