"""Nudge: behavioral triggers for your own AWS account."""

__version__ = "0.1.0"
