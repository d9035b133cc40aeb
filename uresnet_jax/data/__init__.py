"""Scans and records: NIfTI I/O and cohort readers, preprocessing, patch sampling, folds, patch
records (TFDS), the training input pipeline."""
