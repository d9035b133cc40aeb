"""Applying a trained model: the Predictor (the one prediction path), its settings, export and the
standalone artifact, lesion measures, segmentation of user scans."""
