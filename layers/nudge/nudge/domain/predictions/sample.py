"""Training on a sample of people: at most ``size`` of them, the same ones whatever order their
events are read in, each with every event they have.

Bottom-k sampling by a hash of the person's id: the people kept are those whose ids hash
lowest. The bar only falls as people are read, so anyone in the final sample was in it from
their first event on, and their history is whole; anyone pushed out leaves with all the
events kept for them. Memory stays bounded by the sample, however long the stream (a deployed
table, read by the Train function within Lambda's memory). Pure: ids in, decisions out.
"""

from __future__ import annotations

import hashlib
import heapq

__all__ = ["TRAINING_PEOPLE", "PeopleSample"]

# How many people a model is trained on by default, from the CLI and on AWS alike. At the
# simulator's 113 events a person that is about 1.1 million events, which the Train
# function's 3,008 MB holds (bench/train_scale.py measures the peak).
TRAINING_PEOPLE = 10_000


class PeopleSample:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a sample holds at least one person")
        self.size = size
        self.seen: set[str] = set()  # everyone read, kept or not: how many there were
        self._kept: set[str] = set()
        self._highest: list[tuple[int, str]] = []  # the kept, as a max-heap (negated hashes)

    def admit(self, person: str) -> tuple[bool, str | None]:
        """Whether ``person``'s event is kept, and who was pushed out to make room (their
        events are to be dropped), if anyone."""
        self.seen.add(person)
        if person in self._kept:
            return True, None
        rank = _rank(person)
        if len(self._kept) < self.size:
            self._keep(person, rank)
            return True, None
        highest = -self._highest[0][0]
        if rank >= highest:
            return False, None
        _, out = heapq.heappop(self._highest)
        self._kept.discard(out)
        self._keep(person, rank)
        return True, out

    @property
    def kept(self) -> frozenset[str]:
        return frozenset(self._kept)

    def _keep(self, person: str, rank: int) -> None:
        self._kept.add(person)
        heapq.heappush(self._highest, (-rank, person))


def _rank(person: str) -> int:
    """A stable, evenly spread number for an id (Python's own hash changes per process)."""
    return int.from_bytes(hashlib.blake2b(person.encode(), digest_size=8).digest(), "big")
