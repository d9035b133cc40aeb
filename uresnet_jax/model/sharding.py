"""Device mesh and placement for data parallelism: state replicated, batch split on 'data'."""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from uresnet_jax.common.errors import InputError


def create_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over every device (all processes), axis 'data'."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh(
      (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
  )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """The global batch must split evenly over the devices."""
  num_devices = mesh.devices.size
  if global_batch <= 0 or global_batch % num_devices:
    raise InputError(
        f"config.train.batch_size={global_batch} must be a positive multiple of the "
        f"{num_devices} devices; set --config.train.batch_size to a multiple of {num_devices}"
    )


def put_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Places this process's rows of a global batch onto the mesh, split on the batch axis."""
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
