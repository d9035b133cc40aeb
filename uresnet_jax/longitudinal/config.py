"""Every knob of `python -m uresnet_jax.longitudinal`, with the reason for each default."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.registration = ml_collections.ConfigDict()  # longitudinal/registration.py
  c.events = ml_collections.ConfigDict()  # longitudinal/events.py
  # A one-to-one lesion is enlarging (or shrinking) only when all three hold: it changed by at least
  # `relative_change` of the smaller volume, by at least `absolute_change_ml`, and by more than the
  # two visits' volume intervals allow (predict's interval_low_p/high_p, per lesion: a change inside
  # the interval is not a change). 0.5: the growth many MS studies require of an enlarging T2 lesion
  # (at least 50 % of its volume); a one-voxel rim around a lesion of 3 mm radius is already about
  # 30-60 % of its volume on 1 mm grids, so less would call partial-volume jitter growth.
  c.events.relative_change = 0.5
  # 0.02 mL = 20 mm3: about 2 voxels of a 1 x 1 x 6 mm clinical 2D FLAIR and twice the smallest new
  # lesion the issue scores (10 mm3); below it a change is a voxel or two of a lesion's border.
  c.events.absolute_change_ml = 0.02
  # A lesion overlapping none of the other visit's is matched to one within this many voxels first:
  # rigid registration (<= 0.5 mm) and nearest-voxel resampling of the labels (up to half a voxel on
  # each grid) move a lesion by up to a voxel, which must not make a lesion new or disappearing.
  c.events.match_voxels = 1
  return c
