"""The bundled release model's third round: round 2's model trained on a phantom whose strokes and
hard negatives look like those of real FLAIR.

Round 2 found none of the first real infarcts it was shown (recent, bright, cortical or in deep
grey matter: it had learnt that bright cortex is healthy) and called the CSF of enlarged ventricles
ringed by confluent WMH an old infarct. This round draws strokes of every stage, type and size:
recent infarcts bright and swollen (the sulci inside them effaced), wedges in the middle, anterior
and posterior cerebral arteries' territories and their watershed, from a few mm deep (small
cortical infarcts) to the whole territory (150+ mL), thalamic beside striatocapsular infarcts,
recent lacunes beside cavitated ones, embolic showers of small infarcts; and hard negatives:
ventricles enlarged up to 7 mm (plus age) and asymmetric, wider sulci, heavier and fainter WMH with
more small foci. It starts from round 2's weights (config.train.init_from).

Run: python -m uresnet_jax.main --config=configs/release_round3.py --workdir=runs/release_round3
     (round 2 elsewhere: --config.train.init_from=ITS_WORKDIR_OR_EXPORT, e.g. the bundled model
     uresnet_jax/release_model before it is replaced)
"""
import ml_collections

from configs import release, release_round2


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "tiny": the tests' tiny scale, as configs/release.py's."""
  config = release_round2.get_config(arg)
  config.train.init_from = "runs/release_round2"
  release.own_cohort(config, "phantom_release3", arg)

  p = config.phantom
  # Strokes of every stage and type.
  p.stroke_probability = 0.6
  p.stroke_type_weights = (0.5, 0.25, 0.25)  # cortical wedge, striatocapsular/thalamic, lacunar
  p.cortical_territory_weights = (0.45, 0.15, 0.2, 0.2)  # MCA, ACA, PCA, watershed
  p.cortical_extent = (0.2, 1.0)  # small cortical infarcts (< 1 mL) to a whole territory
  p.cortical_half_angle_deg = (10.0, 40.0)
  p.recent_swelling = (0.3, 1.0)
  p.thalamic_probability = 0.3
  p.recent_lacune_probability = 0.5
  p.old_infarct_probability = 0.45
  p.embolic_count = (0, 4)
  p.infarct_intensity = (0.8, 1.6)  # recent infarcts are among the brightest tissue
  # Hard negatives: elderly ventricles and sulci, heavy and faint WMH, many small foci.
  p.ventricle_enlargement_mm = (0.0, 7.0)
  p.ventricle_asymmetry = (0.0, 0.5)
  p.sulcal_widening_mm = (0.0, 4.0)
  p.deep_count = (5.0, 90.0)
  p.lesion_intensity = (1.05, 2.4)
  p.wmh_model.intercept = 0.5

  config.sampling.stroke_rate = 0.15  # strokes up to 150 mL: fewer centres per stroke voxel
  config.train.epochs = 4
  config.train.decay_epoch = 3
  config.train.eval_every = 4
  config.train.learning_rate = 2e-4  # new lesion types: more than round 2's 1e-4
  config.domains.held_out.large_ventricles = dict(ventricle_enlargement_mm=(8.0, 10.0))
  return config
