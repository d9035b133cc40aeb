"""Every knob of `python -m uresnet_jax.longitudinal`, with the reason for each default."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.registration = ml_collections.ConfigDict()  # longitudinal/registration.py
  c.events = ml_collections.ConfigDict()  # longitudinal/events.py
  return c
