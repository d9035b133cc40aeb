"""uresnet_jax: uResNet WMH and stroke segmentation in JAX/Flax."""
import setuptools

setuptools.setup(
    name="uresnet_jax",
    version="0.1.0",
    description=(
        "uResNet (Guerrero et al. 2018): white-matter hyperintensity and stroke "
        "lesion segmentation and differentiation on FLAIR MRI, in JAX/Flax."
    ),
    # configs/ installs too: the release configs import their parents (`from configs import demo`).
    packages=setuptools.find_packages(include=["uresnet_jax", "uresnet_jax.*", "configs"]),
    package_data={"uresnet_jax": ["release_model/*"]},  # the bundled model predict uses by default
    python_requires=">=3.11",
    entry_points={"console_scripts": [  # the same commands as `python -m uresnet_jax.<name>`
        "uresnet-train=uresnet_jax.main:run",
        "uresnet-predict=uresnet_jax.predict:run",
        "uresnet-evaluate=uresnet_jax.evaluate:run",
        "uresnet-export=uresnet_jax.export:run",
        "uresnet-finetune=uresnet_jax.finetune:run",
        "uresnet-reproduce=uresnet_jax.reproduce:run",
        "uresnet-crossval=uresnet_jax.crossval:run",
        "uresnet-bench=uresnet_jax.bench:run",
        "uresnet-model-card=uresnet_jax.model_card:run",
        "uresnet-phantom=uresnet_jax.phantom.__main__:run",
        "uresnet-patches=uresnet_jax.patches_tfds:run",
        "uresnet-release=uresnet_jax.release:run",
        "uresnet-release-gate=uresnet_jax.release_gate:run",
        "uresnet-lesion-probe=uresnet_jax.lesion_probe:run",
        "uresnet-lesion-brightness=uresnet_jax.lesion_brightness:run",
        "uresnet-longitudinal=uresnet_jax.longitudinal.__main__:run",
        "uresnet-longitudinal-benchmark=uresnet_jax.longitudinal.benchmark:run",
    ]},
    install_requires=[
        "jax>=0.10,<0.12",
        "flax>=0.11,<0.13",
        "optax>=0.2.5,<0.3",
        "orbax-checkpoint>=0.11,<0.13",
        "tensorflow-datasets>=4.9.7,<4.10",  # data/patch_records.SUPPORTED_TFDS
        "array-record>=0.7,<0.9",
        "grain>=0.2.10,<0.3",  # data/input_pipeline: MapDataset, ReadOptions
        "nibabel>=5.2,<6",
        "pydicom>=3.0.1,<4",  # data/dicom_series: DICOM series in (pydicom 3's pixel handlers, UIDs)
        "highdicom>=0.28,<0.29",  # data/dicom_seg: DICOM-SEG out; 0.x changes its API between minors
        "nilearn>=0.11,<0.15",
        # longitudinal/registration: one ~50 MB wheel, no dependencies; as accurate as itk-elastix,
        # greedy or antspyx on the phantom at a fraction of their install (docs/measured.md)
        "SimpleITK>=2.4,<3",
        "absl-py>=2.1",
        "ml-collections>=1.0,<2",
        "numpy>=1.26,<3",
        "scipy>=1.13,<2",
        "matplotlib>=3.8,<4",
        "pillow>=10",  # html_report: the slice images (matplotlib needs it too)
        "tqdm>=4.66",
        "threadpoolctl>=3.1",
        "statsmodels>=0.14",
        "tensorboardX>=2.6,<3",
        "flatbuffers>=24.3",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.10",
                             "ipykernel>=6.29", "hypothesis>=6.100", "apache-beam>=2.60,<3"],
                    "beam": ["apache-beam>=2.60,<3"]},  # data/patch_records: config.data.beam_runner
)
