"""The Colab TPU notebook, run headless on the CPU with the tiny config: trains, evaluates, exports."""
import json
import pathlib
import shutil
import sys

import nbformat
from ipykernel import kernelspec
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "colab_tpu.ipynb"


def _text(cell) -> str:
  """A code cell's printed and displayed plain text."""
  parts = []
  for output in cell.get("outputs", []):
    parts.append(output.get("text", ""))
    parts.append(output.get("data", {}).get("text/plain", ""))
  return "".join(parts)


def test_notebook_is_stored_without_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  assert notebook.metadata.kernelspec.name == "python3"
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, cell.source[:80]


def test_notebook_runs_tiny_on_cpu(tiny_run, tmp_path, monkeypatch):
  run_dir = tmp_path / "notebook"
  # The tiny run's cohort where the notebook keeps its phantom: the notebook reuses a cohort it
  # finds, as on a rerun (generating one is prepare_data.ensure_records' job, checked by tiny_run).
  shutil.copytree(tiny_run[0] / "cohort", run_dir / "phantom")
  # A `python3` kernel spec that starts this interpreter, ahead of any other on JUPYTER_PATH.
  kernelspec.install(kernel_name="python3", prefix=str(tmp_path / "kernel"))
  spec = json.loads((tmp_path / "kernel/share/jupyter/kernels/python3/kernel.json").read_text())
  assert spec["argv"][0] == sys.executable
  monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "kernel" / "share" / "jupyter"))
  monkeypatch.setenv("URESNET_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("URESNET_NOTEBOOK_DIR", str(run_dir))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")

  notebook = nbformat.read(NOTEBOOK, as_version=4)
  client = NotebookClient(notebook, kernel_name="python3", timeout=600,
                          resources={"metadata": {"path": str(ROOT)}})
  try:
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
  finally:
    nbformat.write(notebook, tmp_path / "executed.ipynb")  # to look at after a failure

  workdir = run_dir / "run"
  assert (workdir / "exported" / "manifest.json").is_file()
  assert (workdir / "exported.zip").is_file()
  assert (workdir / "report" / "report.md").is_file()
  code = [c for c in notebook.cells if c.cell_type == "code"]
  devices = next(c for c in code if "jax.devices()" in c.source)
  assert "backend: cpu" in _text(devices)
  assert str(ROOT) in _text(code[0])  # worked from the repository root
  assert "subjects in" in _text(next(c for c in code if "ensure_records" in c.source))
  assert '"wmh"' in _text(next(c for c in code if "train_and_evaluate" in c.source))
  displayed = [o for c in code for o in c.outputs if o.output_type == "display_data"]
  assert any("image/png" in o.data for o in displayed)
  assert any("text/markdown" in o.data for o in displayed)
