"""bench: the JSON a user gets, from the tiny config (speed itself is never asserted)."""
import json
import subprocess
import sys
import pytest

from conftest import ROOT, run_module, subprocess_env

pytestmark = pytest.mark.slow  # every test runs the bench command


def test_bench_reports_every_figure_of_the_tiny_config(tiny_run, tmp_path):
  data = tiny_run[0]
  out = tmp_path / "bench.json"
  result = subprocess.run(
      [sys.executable, "-m", "uresnet_jax.bench", "--config=configs/tiny.py", f"--json={out}",
       f"--config.data.cohort={data / 'cohort'}", f"--config.data.records_dir={data / 'tfds'}",
       "--repeats=1", "--train_steps=2", "--torch", f"--torch_script={tmp_path / 'none.py'}",
       f"--profile={tmp_path / 'trace'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600, env=subprocess_env())
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(out.read_text())
  assert out.read_text().strip() in result.stdout  # printed and written
  for key in ("train_patches_per_s", "compile_s", "step_ms", "gflop_per_patch", "achieved_gflops",
              "infer_s_per_volume", "predict_s_per_scan", "pipeline_patches_per_s",
              "tfds_build_s", "pipeline_to_train_ratio"):
    assert report[key] > 0, key
  assert report["batch"] == 8 and report["precision"] == "float32" and report["device_count"] >= 1
  assert report["tfds_build_records"] > 0 and report["pipeline_records"] > 0
  # the step's FLOPs per patch: forward + backward of the base-4 net on 32x32 patches, a few MFLOP
  assert 1e-4 < report["gflop_per_patch"] < 0.1
  assert "ratio_vs_torch" not in report and report["torch"]  # why the peer did not run, no ratio
  # the profile: a Perfetto trace on disk and the step's slowest XLA ops, convolutions among them
  assert list((tmp_path / "trace").rglob("*.trace.json.gz"))
  top = report["profile_top_ops_ms"]
  assert "unattributed" in top and any("conv" in op for op in top), top
  assert all(op == op.lower() and ms > 0 for op, ms in top.items() if op != "unattributed"), top


def test_unknown_part_is_one_line(tmp_path):
  result = run_module("bench", "--config=configs/tiny.py", "--parts=train,gpu", timeout=300)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: --parts: unknown part(s) gpu")


def test_profile_needs_the_train_part_and_a_new_folder(tmp_path):
  (tmp_path / "file").write_text("not a folder")
  for args, message in ((["--parts=infer", f"--profile={tmp_path / 'new'}"],
                         "--profile traces the training step"),
                        (["--parts=train", f"--profile={tmp_path}"], "already exists"),
                        (["--parts=train", f"--profile={tmp_path / 'file' / 'trace'}"],
                         "cannot create it")):
    result = run_module("bench", "--config=configs/tiny.py", *args, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "new").exists()
