"""Importing the package changes nothing global: no umask, no matplotlib backend, no flags, no
patched attributes of other libraries."""
import os
import subprocess
import sys
import textwrap

from conftest import ROOT

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
    names = [m.name for m in pkgutil.iter_modules(uresnet_jax.__path__) if m.name != "main"]
    for name in names:
      importlib.import_module(f"uresnet_jax.{name}")
    assert (os.umask(umask), os.umask(umask)) == (umask, umask), "umask changed"
    assert dict.__getitem__(matplotlib.rcParams, "backend") is rcsetup._auto_backend_sentinel, \\
        dict.__getitem__(matplotlib.rcParams, "backend")
    assert "matplotlib.pyplot" not in sys.modules
    assert set(flags.FLAGS) == flags_before, set(flags.FLAGS) - flags_before
    assert tfds_shuffle.tf is tf_before
    import uresnet_jax.main  # the absl entry point: its flags, as in the Flax examples
    assert set(flags.FLAGS) - flags_before == {"config", "workdir", "coordinator_address",
                                               "num_processes", "process_id", "distributed"}
    print("IMPORTED", len(names) + 1)
""")


def test_importing_every_module_has_no_global_side_effect():
  result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  count = int(result.stdout.split("IMPORTED")[1])
  assert count >= 25
