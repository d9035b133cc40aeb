"""Orbax checkpoints in <workdir>/checkpoints: the latest few plus the best by held-out WMH Dice."""
import json
import pathlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from uresnet_jax import atomic
from uresnet_jax.errors import InputError

# Fields whose change makes an existing checkpoint unusable (shapes or meaning of the parameters).
_COMPATIBILITY_FIELDS = (
    ("model", "base_width"), ("model", "num_classes"), ("model", "residual_convs"),
    ("model", "norm"), ("data", "channels"),
)


def create_checkpoint_manager(workdir: pathlib.Path, keep: int) -> ocp.CheckpointManager:
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=keep),
      ocp.checkpoint_managers.BestN(
          get_metric_fn=lambda m: m["wmh_dice"], reverse=False, n=1,
          keep_checkpoints_without_metrics=False,
      ),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, cleanup_tmp_directories=True)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() / "checkpoints", options=options)


def check_compatible(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir whose saved config differs in what the parameters depend on."""
  saved_path = pathlib.Path(workdir) / "config.json"
  if not saved_path.exists() or not (pathlib.Path(workdir) / "checkpoints").exists():
    return
  saved = json.loads(saved_path.read_text())
  for section, field in _COMPATIBILITY_FIELDS:
    old = saved.get(section, {}).get(field)
    new = config[section][field]
    if isinstance(new, (tuple, list)):
      new, old = list(new), list(old or [])
    if old != new:
      raise InputError(
          f"{workdir} holds a checkpoint trained with {section}.{field}={old!r}, not {new!r}; "
          "use a new --workdir or the original config"
      )


def write_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as config.json (atomically)."""
  atomic.write_text(pathlib.Path(workdir) / "config.json",
                    config.to_json_best_effort(indent=2, sort_keys=True))


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> Any:
  """The latest checkpoint restored into `state`'s structure and shardings, or `state` if none."""
  step = manager.latest_step()
  if step is None:
    return state
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(target))
  except (ValueError, KeyError) as e:
    raise InputError(
        f"cannot restore checkpoint step {step} from {manager.directory}: {str(e).splitlines()[0]}"
    ) from e


def save(manager: ocp.CheckpointManager, step: int, state: Any, metrics: dict | None) -> None:
  """Saves `state` at `step` (asynchronously) unless that step is already saved."""
  if step in manager.all_steps():
    return
  manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)
