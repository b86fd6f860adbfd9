"""A function's cold start with the cyclic garbage collector paused.

Importing a handler leaves 80,000 to 110,000 objects the collector tracks (modules, classes,
pydantic's validators, boto3's service models), nearly all of them kept for the life of the
process, yet the collector walks them again and again as they pile up: 150 to 200
collections per cold start, 45 to 85 ms of it on the bench's machine (bench/README.md,
"Handler import time"). A handler module imports this module first, which pauses the
collector, and calls ``ready()`` once its module-level objects are built.

``ready()`` does not simply start the collector again: every object of the cold start would
then sit in the youngest generation, and the first collection, in the first event, would walk
them all. ``gc.freeze()`` moves them to the permanent generation instead, which no collection
walks: they live as long as the process anyway. A full collection after the cold start
went from 57-114 ms to 0.1 ms on the bench's (busy) machine. The price: what the cold start
left as cyclic garbage is frozen too and never collected, about half a megabyte more resident
memory after the import (bench/README.md, "Handler import time").
"""

from __future__ import annotations

import gc

__all__ = ["ready"]

# Only a collector this module paused is frozen and started again by ready(): a process that
# imports several handlers (the tests) freezes once, and one that runs without the collector
# keeps it off.
_paused = gc.isenabled()
gc.disable()


def ready() -> None:
    """The handler module is built: keep what it built out of every collection, and collect
    what invocations allocate as usual."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
