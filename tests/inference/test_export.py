"""Export: a self-contained artifact that runs with jax and numpy only and matches the model."""
import json
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.inference import artifact, export, predictor
from uresnet_jax.model import checkpoints, uresnet
from conftest import subprocess_env


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
  out = tmp_path_factory.mktemp("export") / "model"
  manifest = export.export_model(tiny_run[1], out)
  return out, manifest


def test_manifest_describes_the_model_and_checksums_every_file(exported, tiny_run):
  out, manifest = exported
  assert json.loads((out / artifact.MANIFEST).read_text()) == json.loads(json.dumps(manifest))
  assert manifest["format_version"] == artifact.FORMAT_VERSION
  assert manifest["classes"] == ["background", "wmh", "stroke"]
  assert manifest["channels"] == ["flair"]
  assert manifest["preprocessing"]["inplane_mm"] == 1.0
  assert manifest["training_config"]["model"]["base_width"] == 4
  assert set(manifest["files"]) == {artifact.MODULE, artifact.WEIGHTS, artifact.LOADER}
  for name, digest in manifest["files"].items():
    assert artifact.sha256(out / name) == digest
  with np.load(out / artifact.WEIGHTS, allow_pickle=False) as npz:  # plain arrays, no pickle
    assert all(npz[k].dtype == np.float32 for k in npz.files)


def test_artifact_runs_in_a_fresh_process_without_the_model_code(exported, tiny_run, tmp_path):
  out, _ = exported
  rng = np.random.default_rng(0)
  images = rng.normal(size=(3, 40, 56, 1)).astype(np.float32)  # a shape never seen in training
  np.save(tmp_path / "images.npy", images)
  script = textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {str(out)!r})  # the loader copied into the artifact, not the package
      import numpy as np
      import uresnet_artifact
      model = uresnet_artifact.load({str(out)!r})
      np.save({str(tmp_path / 'probs.npy')!r}, model(np.load({str(tmp_path / 'images.npy')!r})))
      banned = [m for m in sys.modules if m.startswith(("flax", "uresnet_jax", "optax", "orbax"))]
      assert not banned, banned
      print("STANDALONE")
  """)
  env = subprocess_env()
  result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0 and "STANDALONE" in result.stdout, result.stderr[-2000:]
  config = predictor.read_run_config(tiny_run[1])
  _, variables = checkpoints.restore_variables(tiny_run[1], config)
  variables = jax.tree.map(jax.numpy.asarray, variables)
  logits = uresnet.create_model(config.model).apply(variables, images, train=False)
  expected = np.asarray(jax.nn.softmax(logits, axis=-1))
  np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected, atol=1e-5, rtol=0)


def test_tampered_or_foreign_artifacts_are_refused(exported, tmp_path):
  out, _ = exported
  bad = tmp_path / "bad"
  shutil.copytree(out, bad)
  with open(bad / artifact.WEIGHTS, "r+b") as f:
    f.seek(-20, 2)
    f.write(b"\0" * 8)
  with pytest.raises(InputError, match="SHA-256"):
    predictor.load_model(bad)
  old = tmp_path / "old"
  shutil.copytree(out, old)
  manifest = json.loads((old / artifact.MANIFEST).read_text())
  manifest["format_version"] = 99
  (old / artifact.MANIFEST).write_text(json.dumps(manifest))
  with pytest.raises(InputError, match="format version 99"):
    predictor.load_model(old)
  with pytest.raises(InputError, match="neither a training workdir"):
    predictor.load_model(tmp_path)
  model = artifact.load(out)
  with pytest.raises(artifact.ArtifactError, match="multiples of 8"):
    model(np.zeros((1, 20, 16, 1), np.float32))


def test_export_refuses_a_non_empty_output_unless_overwrite(exported, tiny_run):
  out, _ = exported
  with pytest.raises(InputError, match="--overwrite"):
    export.export_model(tiny_run[1], out)
  manifest = export.export_model(tiny_run[1], out, overwrite=True)
  assert artifact.load(out).manifest == json.loads(json.dumps(manifest))
