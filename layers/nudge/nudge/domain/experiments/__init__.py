"""Experiments: how their arms are read, and the statistics that say which arm worked."""
