"""Every knob of `python -m uresnet_jax.longitudinal`, with the reason for each default."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.registration = ml_collections.ConfigDict()  # longitudinal/registration.py
  c.events = ml_collections.ConfigDict()  # longitudinal/events.py
  # Registration (SimpleITK, Mattes mutual information; docs/measured.md "Change between visits").
  r = c.registration
  # Both brains are resampled to this isotropic grid first, so that thick-slice and 0.5 mm in-plane
  # protocols cost the same. On the longitudinal phantom's pairs (3-5 mm slices, docs/measured.md)
  # 2 mm gave a max error of 0.49 mm over the brain in ~1 s, 1.5 mm 0.36 mm in 3-6 s, 1 mm
  # 0.29 mm in 8-14 s: 1.5 mm keeps a margin under the 0.5 mm target at a few seconds.
  r.working_mm = 1.5
  r.shrink_factors = (2, 1)  # coarse-to-fine levels on the working grid: 3 mm, then 1.5 mm
  r.smoothing_mm = (2.0, 1.0)  # Gaussian sigma of each level (mm)
  r.histogram_bins = 32  # Mattes MI bins: enough for a FLAIR brain's few tissue classes
  r.sampling = 0.1  # share of brain voxels sampled per metric evaluation (random, seeded)
  r.seed = 0  # of that sampling: the same pair registers the same way every run
  r.step_mm = 1.0  # the optimizer's first step (regular step gradient descent, halved on turns)
  r.min_step_mm = 1e-4  # it stops below this step: far under the 0.5 mm target
  r.iterations = 200  # per level: a cap on a runaway optimizer; the step size ends the run first
  r.threads = 2  # the project's machines have 2 cores (the targets: <= 20 s per pair on 2)
  # Plausibility: a result beyond these is reported as a failed registration, not used.
  r.max_rotation_deg = 30.0  # a head in a head coil turns by at most ~15 degrees between visits
  r.max_centre_mm = 25.0  # after registration the brains' centres of mass coincide within a few
  #                         mm (atrophy, a slab that covers less): 25 mm means the wrong anatomy
  # Intensity correlation of the aligned brains below this: not one brain. Measured on the
  # longitudinal phantom: the two visits of one subject 0.91-0.96 (another slice thickness,
  # contrast, bias field, noise, planted change), visits of different subjects 0.18-0.57 (phantom
  # brains all warp one template: real different subjects differ more).
  r.min_similarity = 0.7
  # A one-to-one lesion is enlarging (or shrinking) only when all three hold: it changed by at least
  # `relative_change` of the smaller volume, by at least `absolute_change_ml`, and by more than the
  # two visits' volume intervals allow (predict's interval_low_p/high_p, per lesion: a change inside
  # the interval is not a change), or, enlarging, as a new lesion is new: past the baseline's
  # interval there, and the voxels it gained brightened by new_wmh_contrast_z (a stroke's changed
  # by new_contrast_z). Small WMH rarely reach p >= interval_high_p (the growing WMH of phantom
  # seeds 0-1 that the model followed: 0.008-0.25 mL -> 0.13-0.62 mL, of which 0.03-0.13 mL sure),
  # so the intervals alone never part for them; on 10 pairs of seeds 0-1 (6 growth, 4 stable) the
  # gained voxels of every WMH that grew by the thresholds without being planted brightened by at
  # most 0.56 (the growth called: 1.7). 0.5: the growth many MS studies require of an enlarging T2
  # lesion (at least 50 % of its volume); a one-voxel rim around a lesion of 3 mm radius is already
  # about 30-60 % of its volume on 1 mm grids, so less would call partial-volume jitter growth.
  c.events.relative_change = 0.5
  # 0.02 mL = 20 mm3: about 2 voxels of a 1 x 1 x 6 mm clinical 2D FLAIR and twice the smallest new
  # lesion the issue scores (10 mm3); below it a change is a voxel or two of a lesion's border.
  c.events.absolute_change_ml = 0.02
  # A baseline lesion's volume interval is local: its high end counts the p >= interval_low_p voxels
  # of the region holding it only within this distance of it (events.visit_lesions; a follow-up
  # lesion's stays the whole region: a local one let a stable pair's WMH of phantom seed 7 pass
  # for shrinking). The region of a small WMH often joins the large periventricular WMH (on
  # phantom seeds 0-1 growing WMH of 0.01-0.25 mL sat in regions of 0.05-52 mL), whose doubt is
  # not the small lesion's. 2 mm:
  # registration (<= 0.5 mm) and nearest-voxel resampling (up to a voxel) plus a voxel of partial
  # volume at the border, where a lesion's own doubt lies.
  c.events.neighbourhood_mm = 2.0
  # A lesion overlapping none of the other visit's is matched to one within this many voxels first:
  # rigid registration (<= 0.5 mm) and nearest-voxel resampling of the labels (up to half a voxel on
  # each grid) move a lesion by up to a voxel, which must not make a lesion new or disappearing.
  c.events.match_voxels = 1
  # A lesion at one visit only is new (or disappearing) only where the FLAIR changed, as subtraction
  # images confirm new MS lesions: the model may call a lesion on one acquisition and not on
  # another of the same tissue. The change is the follow-up's robust_z FLAIR minus the baseline's,
  # less its Gaussian-weighted mean over the lesion-free brain within this sigma
  # (events.against_surroundings): a bias field, another contrast or thick slices' partial volume
  # shift a region's change, not a lesion's against its own surroundings. 3 mm: a few 1 mm voxels
  # past a small lesion's border, still inside the deep white matter around it. On the phantom
  # pairs of seeds 0 and 1 it separated planted new WMH (1.3-2.7) from every other follow-up-only
  # WMH of >= 10 mm3 (at most 0.7); the brain-wide change without it mixed them (true 0.9-3.4,
  # false up to 1.4).
  c.events.surroundings_mm = 3.0
  # A new WMH: its mean change against its surroundings (robust SDs of the brain): 1.0 lies in the
  # gap measured above (0.7 | 1.3); seeds 0-1: new-lesion recall 10 -> 13 of 21, no false new WMH.
  c.events.new_wmh_contrast_z = 1.0
  # A new or a disappearing stroke (its absolute change, averaged: an infarct's bright rim and dark
  # cavity cancel in a plain mean), and a disappearing WMH (darkened): planted new strokes changed
  # by 3.3-3.4 against their surroundings, a false new stroke by 1.1. Disappearing lesions are
  # not planted in the phantom, so nothing measured supports lowering it for them (at 1.0 the
  # false disappearing and new strokes on seeds 0-1 went 3 -> 11).
  c.events.new_contrast_z = 2.0
  # A new stroke where the baseline's model saw no stroke at all (no voxel of stroke p >=
  # interval_low_p under it: the model itself is sure something changed) needs only this change:
  # on 6 mm slices a cavity's dark core and bright rim average towards white matter, and such a
  # planted new stroke changed by 1.6 (seed 2). On seeds 0-1 every follow-up-only stroke of that
  # kind that was not planted changed by at most 0.8; 1.2 = 1.5 x that.
  c.events.new_stroke_unseen_contrast_z = 1.2
  # A cavitated infarct the model did not segment at follow-up is still a new stroke where the
  # images show it (events.cavities): its FLAIR darkened by new_contrast_z against its
  # surroundings and is CSF-dark now (robust z <= -cavity_z, 2 robust SDs under the brain's
  # median: fluid on FLAIR), at least cavity_away_mm from the baseline's CSF-dark voxels and the
  # brain's edge (ventricles and sulci shift with another slice thickness or a voxel of
  # registration; 3 mm = the change's own sigma), in a piece of at least cavity_ml. 0.1 mL: a
  # lacune-sized cavity of ~6 mm across; on the 20 phantom pairs of seeds 0-1 the darkened pieces
  # outside a planted new stroke were all <= 0.035 mL, the one missed new stroke's 0.59 mL.
  # Atrophy is not in the phantom: a ventricle that grows towards deep white matter by more
  # than cavity_away_mm would pass (docs/longitudinal.md, "Limits").
  c.events.cavity_z = 2.0
  c.events.cavity_away_mm = 3.0
  c.events.cavity_ml = 0.1
  return c
