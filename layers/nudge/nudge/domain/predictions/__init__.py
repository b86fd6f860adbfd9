"""Predictions: a label over a horizon, the features that may predict it, and the scorer."""
