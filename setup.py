"""uresnet_jax: uResNet WMH and stroke segmentation in JAX/Flax."""
import setuptools

setuptools.setup(
    name="uresnet_jax",
    version="0.1.0",
    description=(
        "uResNet (Guerrero et al. 2018): white-matter hyperintensity and stroke "
        "lesion segmentation and differentiation on FLAIR MRI, in JAX/Flax."
    ),
    packages=setuptools.find_packages(include=["uresnet_jax", "uresnet_jax.*"]),
    package_data={"uresnet_jax": ["release_model/*"]},  # the bundled model predict uses by default
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.10,<0.12",
        "flax>=0.11,<0.13",
        "optax>=0.2.5,<0.3",
        "orbax-checkpoint>=0.11,<0.13",
        "tensorflow-datasets>=4.9.7,<4.10",  # patches_tfds.SUPPORTED_TFDS
        "array-record>=0.7,<0.9",
        "grain>=0.2.10,<0.3",  # input_pipeline: MapDataset, ReadOptions
        "nibabel>=5.2,<6",
        "nilearn>=0.11,<0.15",
        "absl-py>=2.1",
        "ml-collections>=1.0,<2",
        "numpy>=1.26,<3",
        "scipy>=1.13,<2",
        "matplotlib>=3.8,<4",
        "tqdm>=4.66",
        "threadpoolctl>=3.1",
        "statsmodels>=0.14",
        "tensorboardX>=2.6,<3",
        "flatbuffers>=24.3",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.10",
                             "ipykernel>=6.29", "hypothesis>=6.100", "apache-beam>=2.60,<3"],
                    "beam": ["apache-beam>=2.60,<3"]},  # patches_tfds: config.data.beam_runner
)
