"""Nudge's benchmarks: each prints its figures next to a baseline's (``python -m bench``)."""
