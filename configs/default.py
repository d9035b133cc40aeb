"""The paper's setting (Guerrero et al. 2018): uResNet, 2-fold CV, 30 epochs of Adam.

Run: python -m uresnet_jax.main --config=configs/default.py --workdir=runs/paper
Override any field on the command line, e.g. --config.train.epochs=5.
"""
import ml_collections

from uresnet_jax.inference import config as predict_config
from uresnet_jax.phantom import config as phantom_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.compilation_cache_dir = "data/jax_cache"  # XLA's persistent cache; "" turns it off

  # Cohort and where derived data lands. A missing phantom cohort is generated.
  config.data = ml_collections.ConfigDict()
  config.data.cohort = "data/phantom"  # a folder with subjects.csv, a manifest, or a WMH-challenge folder
  config.data.records_dir = "data/tfds"  # TFDS data_dir for the patch records
  config.data.generate_phantom_if_missing = True  # a missing cohort folder gets the phantom cohort
  config.data.phantom_subjects = 40  # cohort size when the phantom is generated
  config.data.channels = ("flair",)  # manifest columns stacked as input channels
  config.data.num_folds = 2  # the paper's 2-fold cross-validation
  config.data.eval_fold = 1  # held-out fold; training uses the others
  config.data.beam_runner = ""  # "": plain record build; "direct": Apache Beam's DirectRunner (.[beam])
  config.data.beam_options = ""  # other runners: Beam flags, "--runner=FlinkRunner --flink_master=HOST:8081", "--runner=DataflowRunner --project=... --region=... --temp_location=gs://..."

  # Preprocessing (docs/design.md, the method).
  config.preprocess = ml_collections.ConfigDict()
  config.preprocess.inplane_mm = 1.0  # in-plane resampling; slice thickness kept
  config.preprocess.clip_low = -3.0  # z-scores below this are clipped; also the background value

  # Lesion-centred shifted sampling (the paper's key contribution).
  config.sampling = ml_collections.ConfigDict()
  config.sampling.patch_size = 64
  config.sampling.wmh_rate = 0.2  # share of WMH voxels used as patch centres
  config.sampling.stroke_rate = 0.8  # share of stroke voxels used as patch centres
  config.sampling.max_shift = 32  # max in-plane centre shift in voxels; 0 is the NoC ablation
  config.sampling.healthy_rate = 0.0  # healthy-tissue patches per lesion patch, random in-brain
  #                                     centres off any lesion (0: none, as in the paper)
  config.sampling.bright_share = 0.0  # share of those centred on healthy voxels brighter than
  config.sampling.bright_z = 1.0  # this z-score (cortex, choroid plexus): "bright is not lesion"
  config.sampling.slice_share = 0.0  # share of them on a slice drawn uniformly: the top and
  #                                    bottom slices, where the cortex is cut tangentially
  config.sampling.dark_share = 0.0  # share of them centred on healthy voxels darker than
  config.sampling.dark_z = -1.0  # this z-score (CSF): "a dark cavity is not always an infarct"

  # Phantom cohort generator: every randomisation knob, with documented ranges.
  config.phantom = phantom_config.get_config()

  config.model = ml_collections.ConfigDict()
  config.model.base_width = 32
  config.model.num_classes = 3  # background, WMH, stroke
  config.model.residual_convs = 1  # 1: uResNet, 2: uResNet2
  config.model.norm = "batch"  # "batch" or "none"
  config.model.dtype = "float32"  # compute dtype; "bfloat16": mixed precision (float32 params, loss)

  config.train = ml_collections.ConfigDict()
  config.train.loss = "cross_entropy"  # or weighted_cross_entropy, bootstrapped_cross_entropy, pseudo_dice
  config.train.class_weights = (1.0, 1.0, 1.0)  # weighted_cross_entropy: background, WMH, stroke
  config.train.bootstrap_tau = 0.9  # bootstrapped_cross_entropy: voxels right with p > tau add 0
  config.train.batch_size = 128  # global, split across devices
  config.train.epochs = 30
  config.train.learning_rate = 5e-4
  config.train.decay_epoch = 25  # learning rate x decay_factor from this epoch on
  config.train.decay_factor = 0.1
  config.train.random_flips = True
  config.train.eval_every = 5  # epochs between whole-volume evaluations
  config.train.eval_train_subjects = True  # also Dice on the training subjects (paper Fig. 3/4)
  config.train.keep_checkpoints = 3  # latest checkpoints kept; the model is the last one
  config.train.grad_clip_norm = 0.0  # clip gradients to this global norm; 0: off (the paper)
  config.train.init_from = ""  # start from this model's weights (a training workdir or an
  #                               exported model folder) instead of random ones; "": random
  # A weight-space ensemble (WiSE-FT, Wortsman et al., CVPR 2022; a model soup, Wortsman et al.,
  # ICML 2022): step 0 holds init_from's weights averaged with these models' (comma-separated),
  # which must share its architecture (e.g. the model init_from was fine-tuned from, to keep what
  # the fine-tuning lost); "": init_from's weights alone.
  config.train.average_with = ""
  config.train.average_weight = 0.5  # average_with's share of each weight, in (0, 1), split
  #                                     evenly among its models

  # The classical baseline (crossval's comparison rows, in the role of the paper's LPA/LGA): FLAIR
  # z-score > threshold inside white matter, the threshold chosen on the training fold.
  config.baseline = ml_collections.ConfigDict()
  config.baseline.thresholds = tuple(0.5 + 0.25 * i for i in range(15))  # z from 0.5 to 4.0
  config.baseline.wm_threshold = 0.5  # white-matter probability above which a voxel is WM

  # Held-out phantom domains (uresnet_jax/experiments/domains.py): after training, `main` scores
  # the model on phantom cohorts drawn with these changes to config.phantom, each outside the
  # training ranges (checked before training), and on an in-domain cohort of the same subjects;
  # domains.json.
  config.domains = ml_collections.ConfigDict()
  config.domains.held_out = ml_collections.ConfigDict()  # name -> {phantom knob: value}; none here
  config.domains.subjects = 6  # subjects per domain cohort
  config.domains.seed = 1000  # their cohort seed: other subjects than training's (config.seed)
  config.domains.root = "data/domains"  # where the domain cohorts are generated (reused)

  # Prediction (the training loop's evaluation, `evaluate --workdir`, `predict`, exported models).
  config.predict = predict_config.get_config()

  return config
