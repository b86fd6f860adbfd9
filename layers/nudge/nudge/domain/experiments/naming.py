"""How an experiment version is named where arms and assignments are kept: a module of its
own, free of the trigger language's models, so that Feedback and Send (which read and
write assignments) need not load them."""

from __future__ import annotations

__all__ = ["experiment_key"]


def experiment_key(trigger_id: str, version: str) -> str:
    """One experiment version of one trigger, as people's arms and assignments are kept."""
    return f"{trigger_id}@{version}"
