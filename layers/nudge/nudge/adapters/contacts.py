"""The contact policy's record per person, written only if nobody wrote it since it was read."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, put_if, to_attributes
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.service.ports import VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["ContactStore", "VersionConflict"]


class ContactStore:
    """One record per person, written only on the version it was read at."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, person: PersonId) -> ContactState:
        with aws_call("reading a contact record"):
            response = self._client.get_item(
                TableName=self._table,
                Key=to_attributes(keys.contact_key(person)),
                ConsistentRead=True,
            )
        if "Item" not in response:
            return ContactState()
        item = from_attributes(response["Item"])
        state = json.loads(item["state"])
        return ContactState(
            day=state.get("day", ""),
            per_channel=state.get("per_channel", {}),
            per_trigger=state.get("per_trigger", {}),
            last_sent=state.get("last_sent", {}),
            fires=state.get("fires", {}),
            version=int(item.get("version", 0)),
        )

    def save(self, person: PersonId, state: ContactState) -> ContactState:
        """Writes ``state`` if the stored version is still the one it was decided on."""
        document = {
            "day": state.day,
            "per_channel": state.per_channel,
            "per_trigger": state.per_trigger,
            "last_sent": state.last_sent,
            "fires": state.fires,
        }
        item: dict[str, Any] = {
            **keys.contact_key(person),
            "kind": keys.CONTACT_KIND,
            "state": json.dumps(document, separators=(",", ":")),
            "version": state.version + 1,
            **_expiry(state),
        }
        if state.version == 0:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "version = :seen", {":seen": {"N": str(state.version)}}
        if not put_if(self._client, self._table, item, condition, values):
            raise VersionConflict(str(person))
        return ContactState(
            day=state.day,
            per_channel=state.per_channel,
            per_trigger=state.per_trigger,
            last_sent=state.last_sent,
            fires=state.fires,
            version=state.version + 1,
        )


# A contact record is needed while its counts, cooldowns and fire marks can still decide a
# send: the marks go after 3 days (policy.MEMORY), a cooldown is at most the longest
# documented one (30 days). Past that the record only holds history, so it expires.
CONTACT_KEPT = timedelta(days=31)


def _expiry(state: ContactState) -> dict[str, int]:
    """``expires_at`` from the latest moment the record mentions; none if it mentions none."""
    moments = [
        *state.last_sent.values(),
        *(mark.partition("@")[2] for mark in state.fires.values()),
    ]
    parsed = [_parsed(moment) for moment in moments if moment]
    latest = max((moment for moment in parsed if moment is not None), default=None)
    return {} if latest is None else {"expires_at": int((latest + CONTACT_KEPT).timestamp())}


def _parsed(moment: str) -> datetime | None:
    try:
        return datetime.fromisoformat(moment)
    except ValueError:
        return None
