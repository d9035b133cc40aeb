"""Step 0 of a run that starts from a trained model's weights instead of random ones: fine-tuning,
a release model trained in rounds (config.train.init_from), and rounds' weights averaged
(config.train.average_with)."""
import hashlib
import pathlib

import jax
import ml_collections
import numpy as np

from uresnet_jax.common.errors import InputError
from uresnet_jax.inference import export, predictor
from uresnet_jax.model import checkpoints, run_folder, steps, uresnet


def weights_digest(variables: dict) -> str:
  """SHA-256 of a model's weights (names, shapes and values): which pretrained model a run began at."""
  digest = hashlib.sha256()
  for name, value in sorted(export.flatten(variables).items()):
    value = np.ascontiguousarray(value, np.float32)
    digest.update(f"{name}{value.shape}".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def source_path(config: ml_collections.ConfigDict) -> pathlib.Path | None:
  """config.train.init_from as a path (None: random weights); refused early when it is missing,
  and so is a bad config.train.average_with."""
  average_paths(config)
  return _model_path(config, "init_from")


def average_paths(config: ml_collections.ConfigDict) -> list[pathlib.Path]:
  """config.train.average_with as paths, comma-separated (none: no averaging); refused when one is
  missing, when set without init_from, or given a weight outside (0, 1)."""
  sources = [s.strip() for s in config.train.get("average_with", "").split(",") if s.strip()]
  if sources and not config.train.get("init_from", ""):
    raise InputError(f"config.train.average_with={config.train.average_with}: set "
                     "config.train.init_from too (the model it is averaged with)")
  if sources and not 0.0 < config.train.get("average_weight", 0.5) < 1.0:
    raise InputError(f"config.train.average_weight={config.train.average_weight}: must be "
                     "between 0 and 1 (average_with's share of each weight)")
  return [_existing(source, "average_with") for source in sources]


def _model_path(config: ml_collections.ConfigDict, key: str) -> pathlib.Path | None:
  source = config.train.get(key, "")
  return _existing(source, key) if source else None


def _existing(source: str, key: str) -> pathlib.Path:
  path = pathlib.Path(source).expanduser()
  if not path.exists():
    raise InputError(f"config.train.{key}={source}: no such model (a training workdir or an "
                     "exported model folder)")
  return path


def average(first: dict, others: list[dict], weight: float) -> dict:
  """(1 - weight) x first + weight x the mean of others, weight by weight: models of one
  architecture become one (params and batch statistics alike)."""
  def mix(a, *bs):
    a = np.asarray(a, np.float32)
    bs = [np.asarray(b, np.float32) for b in bs]
    for b in bs:
      if a.shape != b.shape:
        raise ValueError(f"shape {b.shape}, the other model's {a.shape}")
    return (1.0 - weight) * a + weight * sum(bs) / len(bs)

  try:
    return jax.tree.map(mix, first, *others)
  except (KeyError, ValueError, TypeError) as e:
    raise InputError(f"config.train.average_with: its weights do not fit init_from's model: "
                     f"{e}") from None


def seed_from_config(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Seeds step 0 from config.train.init_from (an exported model, or a workdir's checkpoint:
  config.train.init_checkpoint, which finetune sets, else its latest), averaged with
  config.train.average_with when that is set; nothing when init_from is empty.
  The one way a run starts from trained weights."""
  path = source_path(config)
  if path is None:
    return
  checkpoint = config.train.get("init_checkpoint", "latest")
  variables, name = predictor.load_variables(path, checkpoint)[1], str(path)
  others = average_paths(config)
  if others:
    weight = config.train.average_weight
    variables = average(variables, [predictor.load_variables(o)[1] for o in others], weight)
    name = " + ".join([f"{1.0 - weight:g} x {path}"]
                      + [f"{weight / len(others):g} x {o}" for o in others])
  seed_checkpoint(config, variables, name, workdir)


def seed_checkpoint(config: ml_collections.ConfigDict, variables: dict, model_path: str,
                    workdir: pathlib.Path) -> None:
  """Step 0 of the run holds the pretrained weights (and a fresh optimiser), so training starts
  from them; a run that has checkpoints already is resumed instead, if it began at these weights."""
  digest = weights_digest(variables)
  if not run_folder.checkpoint_steps(workdir):  # a resume's check opens no checkpoint manager
    state = _pretrained_state(config, variables)
    manager = checkpoints.create_checkpoint_manager(workdir, config.train.keep_checkpoints)
    try:
      run_folder.write_pretrained(workdir, str(model_path), digest)
      checkpoints.save(manager, 0, state)
      manager.wait_until_finished()
    finally:
      manager.close()
    return
  began = run_folder.read_pretrained(workdir) or {}
  if began.get("weights_sha256") != digest:
    raise InputError(f"{workdir} holds a run that began at another pretrained model "
                     f"({began.get('model', 'random weights')}); use a new --workdir")


def _pretrained_state(config: ml_collections.ConfigDict, variables: dict) -> steps.TrainState:
  """A fresh train state (optimiser included) holding the pretrained weights."""
  model = uresnet.create_model(config.model)
  state = steps.create_train_state(jax.random.key(config.seed), config, model, steps_per_epoch=1)

  def fit(new, fresh):
    new = jax.numpy.asarray(new, fresh.dtype)
    if new.shape != fresh.shape:
      raise ValueError(f"shape {new.shape}, the model's {fresh.shape}")
    return new

  try:
    state = state.replace(params=jax.tree.map(fit, variables["params"], state.params),
                          batch_stats=jax.tree.map(fit, variables["batch_stats"],
                                                   state.batch_stats))
  except (KeyError, ValueError, TypeError) as e:
    raise InputError(f"the pretrained weights do not fit the model their config describes: "
                     f"{e}") from None
  return state
