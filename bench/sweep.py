"""DynamoDB requests for one busy hour of the inactivity sweep, against reading per person.

In-process on moto (the account of ``dynamodb.py``), Evaluate loaded with only
``triggers/re_engagement.yaml``. The table is seeded with ``PEOPLE`` profiles last seen in
one hour (through ``EventStore.save_profiles``, which writes their ``seen_hour``): every
``LINKED_EVERY``-th person also has an anonymous partition, linked to them, seen in the
same hour. Everyone is quiet, inactive in the CRM and had a short last session, so all of
them fire. Then the Evaluate handler is invoked as the InactivitySweep schedule would, at
the first run that reads that hour; its DynamoDB requests are counted with ``after-call``
hooks, by operation.

The baseline reads each partition the index lists on its own, as a sweep without batching
would: GetItem of the profile; for an anonymous partition GetItem of its link and of the
user's profile; GetItem of every other identity's profile. Its decisions and fires would
cost what Nudge's do, so only reads are compared.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge import bootstrap
from nudge.adapters import keys
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.domain.triggers.engine import SWEEP_EVERY, hour_of
from rich.console import Console

from bench.common import REPO, Figures, side_by_side
from bench.dynamodb import _account, _load_handler

__all__ = ["run"]

PEOPLE = 1_000
LINKED_EVERY = 3  # one person in three also browsed anonymously before logging in
SEEN = datetime(2026, 11, 2, 10, 17, tzinfo=UTC)
QUIET = timedelta(days=7)  # re_engagement's
READS = ("GetItem", "BatchGetItem", "Query")


def _seed(store: EventStore, client: Any, table: str) -> None:
    profiles = []
    for number in range(PEOPLE):
        user = f"user-{number}"
        anonymous = (f"anon-{number}",) if number % LINKED_EVERY == 0 else ()
        profiles.append(
            Profile(
                person=PersonId.user(user),
                user_id=user,
                anonymous_ids=anonymous,
                traits={"email": f"{user}@example.com", "crm_status": "inactive"},
                last_seen=SEEN.isoformat(),
                last_session_pages=2,
                session_pages=2,
            )
        )
        for anon in anonymous:
            profiles.append(Profile(person=PersonId.anonymous(anon), last_seen=SEEN.isoformat()))
            link = {**keys.link_key(anon), "kind": keys.LINK_KIND, "user_id": user}
            client.put_item(TableName=table, Item={k: {"S": v} for k, v in link.items()})
    refused = store.save_profiles(profiles)
    if refused:
        raise RuntimeError(f"profiles not saved: {len(refused)}")


def _naive_reads(store: EventStore, client: Any, table: str, counter: Counter[str]) -> int:
    """The per-person sweep's reads; returns the people it resolved."""

    def get(key: dict[str, str]) -> dict[str, Any] | None:
        counter["GetItem"] += 1
        item = client.get_item(
            TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
        ).get("Item")
        return dict(item) if item else None

    counter["Query"] += 1  # the same index query as Nudge's
    people = set()
    for partition in store.persons_seen_in(hour_of(SEEN)):
        person = partition
        if partition.is_anonymous:
            link = get(keys.link_key(partition.value))
            person = PersonId.user(link["user_id"]["S"]) if link else partition
        profile = get(keys.profile_key(person))
        anonymous = (
            [a["S"] for a in profile.get("anonymous_ids", {}).get("L", [])] if profile else []
        )
        for other in {PersonId.anonymous(anon) for anon in anonymous} | {partition} - {person}:
            get(keys.profile_key(other))
        people.add(person)
    return len(people)


def run(console: Console) -> Figures:
    folder = Path(tempfile.mkdtemp(prefix="nudge-bench-sweep-"))
    try:
        shutil.copy(REPO / "triggers" / "re_engagement.yaml", folder)
        shutil.copytree(REPO / "triggers" / "templates", folder / "templates")
        with _account() as (template, dynamodb, table):
            os.environ["NUDGE_TRIGGERS_DIR"] = str(folder)
            evaluate = _load_handler(template, "Evaluate")
            store = bootstrap.event_store()
            _seed(store, dynamodb, table)
            nudge: Counter[str] = Counter()
            client = bootstrap.dynamodb_client()
            client.meta.events.register(
                "after-call.dynamodb.*", lambda model, **_: nudge.update([model.name])
            )
            at = hour_of(SEEN) + QUIET + SWEEP_EVERY
            started = time.perf_counter()
            response = evaluate(
                {"source": "nudge.sweep", "scheduledTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            )
            seconds = time.perf_counter() - started
            fired = response["decisions"].count("fired")
            naive: Counter[str] = Counter()
            people = _naive_reads(store, dynamodb, table, naive)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if fired != PEOPLE or people != PEOPLE:
        raise RuntimeError(f"the sweep fired {fired} and resolved {people} of {PEOPLE}")
    nudge_reads = sum(nudge[op] for op in READS)
    naive_reads = sum(naive[op] for op in READS)
    partitions = PEOPLE + len(range(0, PEOPLE, LINKED_EVERY))
    console.print(
        side_by_side(
            f"One busy hour of the inactivity sweep: {PEOPLE:,} people ({partitions:,}"
            f" partitions in the index), all firing (Nudge | per-person reads)",
            ["figure", "Nudge", "per person"],
            [
                ["read requests", f"{nudge_reads:,}", f"{naive_reads:,}"],
                [
                    "read requests per person",
                    f"{nudge_reads / PEOPLE:.3f}",
                    f"{naive_reads / PEOPLE:.3f}",
                ],
                ["reads by operation", _ops(nudge, READS), _ops(naive, READS)],
            ],
        )
    )
    writes = {op: n for op, n in nudge.items() if op not in READS}
    console.print(
        f"  Nudge's writes for the {fired:,} fires (ledger, fire, enqueue mark, decisions):"
        f" {_ops(Counter(writes), tuple(sorted(writes)))}; the sweep took {seconds:.1f} s"
        " in-process on moto",
        highlight=False,
    )
    return {
        "people": PEOPLE,
        "partitions": partitions,
        "fired": fired,
        "nudge": dict(nudge),
        "naive_reads": dict(naive),
        "seconds": seconds,
    }


def _ops(counter: Counter[str], names: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {counter[name]:,}" for name in names if counter[name])
