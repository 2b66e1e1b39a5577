"""Reproducible experiments of the paper: models, data, presets and the training runner."""
