"""uResNet: white-matter hyperintensity and stroke segmentation on FLAIR MRI, in JAX/Flax."""
