"""Per-lesion events on small hand-made label maps: each event, merged and split, the thresholds,
the volume interval, a one-voxel shift, a new stroke over a baseline WMH, the change maps."""
import numpy as np
import pytest

from uresnet_jax.longitudinal import config, events

SHAPE = (24, 24, 12)
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])  # 2 uL voxels


def _settings(**overrides):
  settings = config.get_config().events
  settings.update(overrides)
  return settings


def _probabilities(labels: np.ndarray, soft: np.ndarray | None = None) -> np.ndarray:
  """One-hot class probabilities (a sure model), or p = `soft` for the lesion class where given."""
  p = np.eye(3, dtype=np.float32)[labels]
  if soft is not None:
    for label in (1, 2):
      inside = labels == label
      p[..., label][inside] = soft[inside]
      p[..., 0][inside] = 1 - soft[inside]
  return p


def _visit(labels: np.ndarray, soft: np.ndarray | None = None, affine=AFFINE):
  return events.visit_lesions(labels, _probabilities(labels, soft), affine, 0.3, 0.7, 2.0)


def _same_grid(f: events.VisitLesions) -> tuple[dict, dict]:
  """The follow-up's lesion ids and unsure regions 'moved' onto a baseline of the same grid."""
  return ({c: v.ids for c, v in f.classes.items()}, {c: v.wide_mask for c, v in f.classes.items()})


def _events(baseline: np.ndarray, followup: np.ndarray, **overrides) -> list[events.Event]:
  """Events of two label maps on one grid (registration: the identity)."""
  b, f = _visit(baseline), _visit(followup)
  return events.find_events(b, f, *_same_grid(f), np.eye(4), _settings(**overrides))


def _box(labels: np.ndarray, x: int, y: int, z: int, size=(3, 3, 2), value=1) -> np.ndarray:
  labels[x:x + size[0], y:y + size[1], z:z + size[2]] = value
  return labels


def _empty() -> np.ndarray:
  return np.zeros(SHAPE, np.uint8)


def _kinds(found: list[events.Event]) -> list[tuple[str, str]]:
  return [(e.cls, e.event) for e in found]


def test_codes_are_ten_times_the_class_plus_the_event():
  assert events.change_code("wmh", "new") == 12 and events.change_code("stroke", "new") == 22
  assert events.change_code("wmh", "split") == 17
  assert sorted(events.EVENTS.values()) == list(range(1, 10))
  assert events.change_code("wmh", "unconfirmed_new") == 18
  assert events.change_code("stroke", "unconfirmed_disappearing") == 29


def test_a_lesion_in_both_visits_is_stable_and_a_new_one_is_new_with_its_volume_and_centroid():
  baseline = _box(_empty(), 2, 2, 2)
  followup = _box(_box(_empty(), 2, 2, 2), 14, 14, 6, size=(2, 2, 1))
  found = _events(baseline, followup)
  assert sorted(_kinds(found)) == [("wmh", "new"), ("wmh", "stable")]
  new = next(e for e in found if e.event == "new")
  assert new.volume_ml_baseline == 0 and new.volume_ml_followup == pytest.approx(4 * 0.002)
  assert new.centroid_mm == pytest.approx((14.5, 14.5, 12.0))  # voxel (14.5, 14.5, 6) in mm
  stable = next(e for e in found if e.event == "stable")
  assert stable.volume_ml_baseline == stable.volume_ml_followup == pytest.approx(18 * 0.002)


def test_a_lesion_gone_at_follow_up_is_disappearing_at_its_place_in_follow_up_coordinates():
  baseline = _box(_empty(), 4, 4, 4)
  shift = np.eye(4)
  shift[:3, 3] = (10.0, 0.0, 0.0)  # follow-up mm + 10 in x = baseline mm
  b, f = _visit(baseline), _visit(_empty())
  found = events.find_events(b, f, *_same_grid(f), shift, _settings())
  assert _kinds(found) == [("wmh", "disappearing")]
  assert found[0].centroid_mm == pytest.approx((5.0 - 10.0, 5.0, 9.0))
  assert found[0].volume_ml_followup == 0


def test_growth_and_shrinkage_need_the_relative_and_the_absolute_change():
  small = _box(_empty(), 4, 4, 4, size=(3, 3, 2))  # 18 voxels, 0.036 mL
  large = _box(_empty(), 4, 4, 4, size=(5, 5, 2))  # 50 voxels, 0.1 mL
  assert _kinds(_events(small, large)) == [("wmh", "enlarging")]
  assert _kinds(_events(large, small)) == [("wmh", "shrinking")]
  assert _kinds(_events(small, large, relative_change=2.0)) == [("wmh", "stable")]
  assert _kinds(_events(small, large, absolute_change_ml=0.1)) == [("wmh", "stable")]
  slightly = _box(_empty(), 4, 4, 4, size=(4, 3, 2))  # +33 %: under the default 50 %
  assert _kinds(_events(small, slightly)) == [("wmh", "stable")]


def test_a_change_inside_the_volume_interval_is_not_a_change():
  small = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  large = _box(_empty(), 4, 4, 4, size=(5, 5, 2))
  b = _visit(small)
  # the follow-up's added rim is unsure (p = 0.5): its interval's low end is the baseline's volume
  soft = np.where(small > 0, 0.95, 0.5).astype(np.float32)
  f = _visit(large, soft)
  found = events.find_events(b, f, *_same_grid(f), np.eye(4), _settings())
  assert _kinds(found) == [("wmh", "stable")]
  assert found[0].volume_ml_followup == pytest.approx(50 * 0.002)  # the argmax volume, still


def test_a_lesion_grows_past_its_own_doubt_not_that_of_a_far_region_joined_to_it():
  small = _box(_empty(), 4, 4, 4)  # 18 voxels, 0.036 mL
  large = _box(_empty(), 4, 4, 4, size=(5, 5, 2))  # 50 voxels, 0.1 mL
  p = _probabilities(small)
  p[4:7, 7:, 4:6] = (0.5, 0.5, 0.0)  # an unsure band, not labelled, from the lesion far away
  f = _visit(large)
  near = events.visit_lesions(small, p, AFFINE, 0.3, 0.7, 2.0)
  assert near.classes["wmh"].high[1] == 18 + 3 * 2 * 2  # the band's first 2 mm
  found = events.find_events(near, f, *_same_grid(f), np.eye(4), _settings())
  assert _kinds(found) == [("wmh", "enlarging")]
  far = events.visit_lesions(small, p, AFFINE, 0.3, 0.7, 100.0)  # the whole band: 0.24 mL
  assert far.classes["wmh"].high[1] == 18 + 3 * 17 * 2
  found = events.find_events(far, f, *_same_grid(f), np.eye(4), _settings())
  assert _kinds(found) == [("wmh", "stable")]


def test_growth_inside_the_interval_enlarges_where_the_gained_voxels_brightened():
  small = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  large = _box(_empty(), 4, 4, 4, size=(5, 5, 2))
  rim = (large > 0) & (small == 0)
  f = _visit(large, np.where(small > 0, 0.95, 0.5).astype(np.float32))  # the rim unsure

  def kinds(b, brightening):
    return _kinds(events.find_events(b, f, *_same_grid(f), np.eye(4), _settings(), brightening))

  assert kinds(_visit(small), np.where(rim, 3.0, 0.0)) == [("wmh", "enlarging")]
  assert kinds(_visit(small), np.where(small > 0, 3.0, 0.0)) == [("wmh", "stable")]  # not the rim
  p = _probabilities(small)
  p[3:10, 3:10, 4:6] = np.where(small[3:10, 3:10, 4:6, None] > 0, p[3:10, 3:10, 4:6], (.5, .5, 0))
  doubted = events.visit_lesions(small, p, AFFINE, 0.3, 0.7, 2.0)  # the baseline doubted the rim
  assert kinds(doubted, np.where(rim, 3.0, 0.0)) == [("wmh", "stable")]


def test_a_lesion_where_the_other_visit_was_unsure_is_not_new_nor_disappearing():
  lesion = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  unsure = np.where(lesion > 0, 0.5, 0.0).astype(np.float32)  # p(WMH) 0.5 there: not labelled
  p = np.eye(3, dtype=np.float32)[_empty()]
  p[..., 1], p[..., 0] = unsure, 1 - unsure
  doubtful = events.visit_lesions(_empty(), p, AFFINE, 0.3, 0.7, 2.0)
  sure = _visit(lesion)
  for b, f, event in ((doubtful, sure, "unconfirmed_new"),
                       (sure, doubtful, "unconfirmed_disappearing")):
    found = events.find_events(b, f, *_same_grid(f), np.eye(4), _settings())
    assert _kinds(found) == [("wmh", event)]
  assert found[0].volume_ml_followup == 0  # a baseline lesion the follow-up doubts: not gone
  found = events.find_events(_visit(_empty()), sure, *_same_grid(sure), np.eye(4), _settings())
  assert _kinds(found) == [("wmh", "new")]


def test_a_lesion_at_one_visit_only_must_show_as_a_change_of_the_flair():
  lesion = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  stroke = _box(_empty(), 4, 4, 4, size=(3, 3, 2), value=2)
  empty = _visit(_empty())

  def kinds(b, f, brightening):
    return _kinds(events.find_events(b, f, *_same_grid(f), np.eye(4), _settings(), brightening))

  bright = np.where(lesion > 0, 3.0, 0.0)
  assert kinds(empty, _visit(lesion), bright) == [("wmh", "new")]
  # the same tissue, or a darkening (WMH do not darken): present now, nothing says it appeared
  assert kinds(empty, _visit(lesion), bright / 6) == [("wmh", "unconfirmed_new")]
  assert kinds(empty, _visit(lesion), -bright) == [("wmh", "unconfirmed_new")]
  assert kinds(_visit(lesion), empty, -bright) == [("wmh", "disappearing")]
  assert kinds(_visit(lesion), empty, bright) == [("wmh", "unconfirmed_disappearing")]
  checkers = (-1.0) ** np.indices(SHAPE).sum(0)  # an infarct's bright rim and dark cavity:
  rim_and_cavity = np.where(lesion > 0, 3.0, 0.0) * checkers  # much change, none on average
  assert rim_and_cavity[lesion > 0].mean() == 0
  assert kinds(empty, _visit(stroke), rim_and_cavity) == [("stroke", "new")]


def test_a_new_wmh_needs_less_contrast_than_a_stroke_or_a_disappearing_wmh():
  lesion = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  stroke = _box(_empty(), 4, 4, 4, size=(3, 3, 2), value=2)
  empty = _visit(_empty())
  some = np.where(lesion > 0, 1.5, 0.0)  # past new_wmh_contrast_z (1.0), short of 2.0

  def kinds(b, f, brightening):
    return _kinds(events.find_events(b, f, *_same_grid(f), np.eye(4), _settings(), brightening))

  assert kinds(empty, _visit(lesion), some) == [("wmh", "new")]
  assert kinds(_visit(lesion), empty, -some) == [("wmh", "unconfirmed_disappearing")]
  # a baseline unsure of a stroke on a corner of it (p 0.5, not labelled): 2.0 is needed
  p = np.eye(3, dtype=np.float32)[_empty()]
  p[4, 4, 4:6] = (0.5, 0.0, 0.5)
  doubtful = events.visit_lesions(_empty(), p, AFFINE, 0.3, 0.7, 2.0)
  assert kinds(doubtful, _visit(stroke), some) == [("stroke", "unconfirmed_new")]
  assert kinds(doubtful, _visit(stroke), 2 * some) == [("stroke", "new")]


def test_a_stroke_the_baseline_saw_nothing_of_needs_only_the_unseen_contrast():
  stroke = _box(_empty(), 4, 4, 4, size=(3, 3, 2), value=2)
  empty = _visit(_empty())  # no voxel of stroke p >= interval_low_p anywhere
  needed = config.get_config().events.new_stroke_unseen_contrast_z
  assert needed < config.get_config().events.new_contrast_z
  for change, event in ((needed + 0.1, "new"), (needed - 0.1, "unconfirmed_new")):
    found = events.find_events(empty, _visit(stroke), *_same_grid(_visit(stroke)), np.eye(4),
                               _settings(), np.where(stroke > 0, change, 0.0))
    assert _kinds(found) == [("stroke", event)]


def test_a_new_lesion_without_sure_voxels_is_new_where_the_baseline_had_no_doubt():
  lesion = _box(_empty(), 4, 4, 4, size=(3, 3, 2))
  unsure = np.where(lesion > 0, 0.6, 0.0).astype(np.float32)  # labelled, none p >= 0.7
  soft = _visit(lesion, unsure)
  assert soft.classes["wmh"].low[1] == 0
  found = events.find_events(_visit(_empty()), soft, *_same_grid(soft), np.eye(4), _settings())
  assert _kinds(found) == [("wmh", "new")]
  # the other way round a lesion stays strict: without sure voxels it is not disappearing
  found = events.find_events(soft, _visit(_empty()), *_same_grid(_visit(_empty())), np.eye(4),
                             _settings())
  assert _kinds(found) == [("wmh", "unconfirmed_disappearing")]


def test_the_change_against_the_surroundings_drops_a_bias_and_keeps_a_lesion():
  brain = np.zeros(SHAPE, bool)
  brain[2:22, 2:22, 1:11] = True
  lesion = _box(_empty(), 10, 10, 5, size=(3, 3, 2)) > 0
  ramp = np.indices(SHAPE)[0] * 0.1  # a bias field that differs between the visits
  change = ramp + np.where(lesion, 2.0, 0.0)
  local = events.against_surroundings(change, lesion, brain, (1.0, 1.0, 2.0), 3.0)
  assert local[lesion].mean() == pytest.approx(2.0, abs=0.1)
  assert change[lesion].mean() > 3.0  # the bias alone would pass for a new lesion
  assert np.abs(local[brain & ~lesion]).max() < 0.5
  assert not local[~brain].any()


def test_two_lesions_joined_at_follow_up_are_merged_and_one_in_two_pieces_is_split():
  two = _box(_box(_empty(), 4, 4, 4, size=(3, 3, 2)), 9, 4, 4, size=(3, 3, 2))
  one = _box(_empty(), 4, 4, 4, size=(8, 3, 2))
  merged = _events(two, one)
  assert _kinds(merged) == [("wmh", "merged")]
  assert (len(merged[0].baseline_ids), len(merged[0].followup_ids)) == (2, 1)
  split = _events(one, two)
  assert _kinds(split) == [("wmh", "split")]
  assert (len(split[0].baseline_ids), len(split[0].followup_ids)) == (1, 2)


def test_a_one_voxel_shift_does_not_make_a_lesion_new_but_further_does():
  baseline = _box(_empty(), 4, 4, 4, size=(1, 1, 1))
  followup = _box(_empty(), 5, 5, 4, size=(1, 1, 1))  # no overlap: a voxel off diagonally
  assert _kinds(_events(baseline, followup)) == [("wmh", "stable")]
  assert sorted(_kinds(_events(baseline, followup, match_voxels=0))) == [
      ("wmh", "disappearing"), ("wmh", "new")]
  far = _box(_empty(), 7, 4, 4, size=(1, 1, 1))
  assert sorted(_kinds(_events(baseline, far))) == [("wmh", "disappearing"), ("wmh", "new")]


def test_a_follow_up_stroke_where_the_baseline_had_wmh_is_a_new_stroke_listed_first():
  baseline = _box(_box(_empty(), 4, 4, 4), 14, 14, 4)
  followup = _box(_box(_empty(), 4, 4, 4, value=2), 14, 14, 4)
  found = _events(baseline, followup)
  assert found[0].cls == "stroke" and found[0].event == "new"
  assert sorted(_kinds(found[1:])) == [("wmh", "disappearing"), ("wmh", "stable")]
  b, f = _visit(baseline), _visit(followup)  # as bright as the WMH it replaced: still new
  found = events.find_events(b, f, *_same_grid(f), np.eye(4), _settings(), np.zeros(SHAPE))
  assert (found[0].cls, found[0].event) == ("stroke", "new")


def test_change_maps_give_every_voxel_of_a_lesion_its_events_code():
  baseline = _box(_box(_empty(), 2, 2, 2), 14, 2, 2)
  followup = _box(_box(_empty(), 2, 2, 2), 8, 14, 6, value=2)
  b, f = _visit(baseline), _visit(followup)
  found = events.find_events(b, f, *_same_grid(f), np.eye(4), _settings())
  base_map = events.change_map(b, found, "baseline")
  follow_map = events.change_map(f, found, "followup")
  assert set(np.unique(base_map[baseline == 1])) == {11, 15}  # stable, disappearing
  assert np.all(base_map[followup == 2] == 0)
  assert np.all(follow_map[followup == 2] == 22) and np.all(follow_map[followup == 1] == 11)
  common = events.common_map(base_map, follow_map)
  assert set(np.unique(common)) == {0, 11, 15, 22}
  assert events.change_map({c: v.ids for c, v in f.classes.items()}, found,
                           "followup").tolist() == follow_map.tolist()


def _cavity_scene():
  """A brain with CSF along one side; at follow-up a dark piece of 0.2 mL deep in it, one of
  0.02 mL, and one of 0.2 mL at the CSF's edge (as a ventricle seen on another slice stack)."""
  brain = np.zeros(SHAPE, bool)
  brain[1:23, 1:23, 1:11] = True
  baseline_z = np.where(brain, 0.0, -5.0)
  baseline_z[1:4] = -3.0  # CSF
  followup_z = baseline_z.copy()
  deep = _box(_empty(), 12, 12, 4, size=(5, 5, 4)) > 0  # 100 voxels of 2 uL
  small = _box(_empty(), 18, 4, 4, size=(2, 2, 2)) > 0  # 8 voxels
  edge = _box(_empty(), 4, 14, 4, size=(2, 10, 5)) > 0  # 100 voxels next to the CSF
  for piece in (deep, small, edge):
    followup_z[piece] = -3.0
  return brain, baseline_z, followup_z, deep


def test_a_cavity_neither_visit_segmented_is_found_deep_and_large_only():
  brain, baseline_z, followup_z, deep = _cavity_scene()
  settings = _settings()
  found = events.cavities(followup_z - baseline_z, baseline_z, followup_z, brain,
                          np.zeros(SHAPE, bool), (1.0, 1.0, 2.0), settings)
  assert found.tolist() == deep.tolist()
  assert not events.cavities(followup_z - baseline_z, baseline_z, followup_z, brain, deep,
                             (1.0, 1.0, 2.0), settings).any()  # a lesion already: not a cavity
  beside = _box(_empty(), 11, 12, 4, size=(1, 5, 4)) > 0  # a lesion touching it: its own event
  followup_z[beside] = 0.0
  assert not events.cavities(followup_z - baseline_z, baseline_z, followup_z, brain, beside,
                             (1.0, 1.0, 2.0), settings).any()
  assert not events.cavities(followup_z - baseline_z, baseline_z, followup_z, brain,
                             np.zeros(SHAPE, bool), (1.0, 1.0, 2.0),
                             _settings(cavity_ml=0.25)).any()


def test_a_cavity_added_as_a_sure_lesion_is_a_new_stroke():
  followup = _visit(_box(_empty(), 2, 2, 2, value=2))
  cavity = _box(_empty(), 12, 12, 4, size=(3, 3, 2)) > 0
  added = events.add_lesions(followup.classes["stroke"], cavity)
  assert added.count == 2 and added.voxels[2] == added.low[2] == added.high[2] == 18
  assert (added.ids == 2).tolist() == cavity.tolist() and added.wide_mask[cavity].all()
  assert added.centroids[2] == pytest.approx((13.0, 13.0, 4.5))
  with_cavity = events.VisitLesions(AFFINE, {**followup.classes, "stroke": added})
  found = events.find_events(_visit(_box(_empty(), 2, 2, 2, value=2)), with_cavity,
                             *_same_grid(with_cavity), np.eye(4), _settings(),
                             np.where(cavity, -3.0, 0.0))
  assert sorted(_kinds(found)) == [("stroke", "new"), ("stroke", "stable")]
