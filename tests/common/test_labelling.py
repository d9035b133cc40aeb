"""Label codes and volumes: one voxel volume for straight, oblique and sheared grids; one reading of
a manifest's icv_ml."""
import numpy as np
import pytest

from uresnet_jax.common import labelling


def test_codes_name_the_model_outputs():
  assert labelling.CLASS_NAMES[labelling.WMH] == "wmh"
  assert labelling.CLASS_NAMES[labelling.STROKE] == "stroke"
  assert labelling.CLASSES == {"wmh": 1, "stroke": 2}


def test_volume_of_straight_oblique_and_sheared_voxels():
  labels = np.zeros((3, 3, 3), np.uint8)
  labels[:2, :2, 0] = labelling.WMH
  straight = np.diag([0.5, 0.5, 4.0, 1.0])
  assert labelling.volume_ml(labels, labelling.WMH, straight) == pytest.approx(0.004)
  angle = np.deg2rad(40)
  rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                       [0, 0, 1]])
  oblique = np.eye(4)
  oblique[:3, :3] = rotation @ np.diag([0.5, 2.0, 4.0])
  assert labelling.voxel_volume_ml(oblique) == pytest.approx(0.004)
  sheared = np.diag([1.0, 1.0, 4.0, 1.0])
  sheared[0, 2] = 2.0  # slices shifted in x (gantry tilt): the column norms overstate the volume
  assert labelling.voxel_volume_ml(sheared) == pytest.approx(0.004)
  assert np.prod(np.linalg.norm(sheared[:3, :3], axis=0)) / 1000 > 0.004 * 1.1


def test_percent_of_icv():
  assert labelling.percent_of_icv(15.0, 1500.0) == pytest.approx(1.0)
  assert np.isnan(labelling.percent_of_icv(15.0, None))
  assert np.isnan(labelling.percent_of_icv(15.0, 0.0))


@pytest.mark.parametrize("raw, expected", [("1450.5", 1450.5), (" 1400 ", 1400.0), ("", None),
                                           ("n/a", None), ("0", None), ("-3", None), ("inf", None),
                                           ("nan", None)])
def test_manifest_icv_is_a_positive_finite_number_or_nothing(raw, expected):
  assert labelling.manifest_icv_ml(raw) == expected
