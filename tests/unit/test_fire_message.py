"""The fire message: one typed value for the send queue, read with its schema, and
messages written before the version field still read."""

from __future__ import annotations

import json

import pytest
from nudge.domain.messages import FireMessage, InvalidFireMessage
from nudge.domain.person import PersonId

WRITTEN_BEFORE_VERSIONS = {
    "fireId": "9717db95bb6e3895ba34d7a4",
    "trigger": "abandoned_cart",
    "person": "u:ada",
    "userId": "ada",
    "anonymousId": None,
    "occurrence": "cart_id=c1",
    "firedAt": "2026-11-29T13:54:46.000Z",
    "channel": "email",
    "template": "abandoned_cart",
    "event": {"event": "Product Added", "properties": {"cart_id": "c1"}},
    "context": {"items": [{"name": "Teapot", "price": 9.5}]},
    "attempt": 2,
}


def test_a_message_from_before_versions_reads_as_version_1() -> None:
    """A fire queued by the previous release (no version field) is read whole."""
    # given
    body = json.dumps(WRITTEN_BEFORE_VERSIONS)

    # when
    fire = FireMessage.from_json(body)

    # then
    assert fire.version == 1
    assert fire.person == PersonId.user("ada")
    assert (fire.fire_id, fire.occurrence, fire.attempt) == (
        "9717db95bb6e3895ba34d7a4",
        "cart_id=c1",
        2,
    )
    assert fire.context["items"][0]["name"] == "Teapot"


def test_the_wire_form_keeps_the_old_keys_and_adds_the_version() -> None:
    """to_record writes the camelCase keys senders and receivers always used, plus version
    and the (empty) experiment variant."""
    # given
    fire = FireMessage.from_json(json.dumps(WRITTEN_BEFORE_VERSIONS))

    # when
    record = fire.to_record()

    # then
    assert record == {
        **WRITTEN_BEFORE_VERSIONS,
        "version": 1,
        "variant": None,
        "experiment": None,
    }


def test_a_message_round_trips_through_json() -> None:
    """Reading what to_json wrote gives the same message."""
    # given
    fire = FireMessage.from_json(json.dumps(WRITTEN_BEFORE_VERSIONS))

    # when / then
    assert FireMessage.from_json(fire.to_json()) == fire


def test_a_retry_is_the_same_fire_one_attempt_on() -> None:
    """retried() changes the attempt and nothing else."""
    # given
    fire = FireMessage.from_json(json.dumps(WRITTEN_BEFORE_VERSIONS))

    # when
    again = fire.retried()

    # then
    assert again.attempt == 3
    assert again.model_copy(update={"attempt": 2}) == fire


def _without(name: str) -> dict[str, object]:
    return {key: value for key, value in WRITTEN_BEFORE_VERSIONS.items() if key != name}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not a fire", "the body is not JSON"),
        ('{"fireId": "f", "trigger": "abandoned_ca', "the body is not JSON"),
        ("[1, 2]", "body"),
        (json.dumps({**WRITTEN_BEFORE_VERSIONS, "version": 2}), "version 2"),
        (
            json.dumps({k: v for k, v in WRITTEN_BEFORE_VERSIONS.items() if k != "trigger"}),
            "trigger missing",
        ),
        (json.dumps({**WRITTEN_BEFORE_VERSIONS, "person": "ada"}), "person"),
        (json.dumps({**WRITTEN_BEFORE_VERSIONS, "channel": "sms"}), "channel"),
        (json.dumps({**WRITTEN_BEFORE_VERSIONS, "attempt": -1}), "attempt"),
        (json.dumps({**WRITTEN_BEFORE_VERSIONS, "fireId": ""}), "fireId"),
    ],
    ids=[
        "not JSON",
        "cut short",
        "an array",
        "a newer version",
        "no trigger",
        "a person that is not one",
        "an unknown channel",
        "a negative attempt",
        "an empty fireId",
    ],
)
def test_a_message_that_is_not_a_fire_is_refused_naming_the_field(body: str, reason: str) -> None:
    """Anything but a fire this code can deliver is refused, and the reason names why."""
    # given / when
    with pytest.raises(InvalidFireMessage) as caught:
        FireMessage.from_json(body)

    # then
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"), [("sendAt", "25:00"), ("sendAt", "noon"), ("sendFallback", "9:30")]
)
def test_a_send_time_that_is_no_time_of_day_is_refused_naming_the_field(
    field: str, value: str
) -> None:
    """A queue message with a send time Send could not wait for is refused (and dead-lettered
    with the reason) rather than failing on every delivery."""
    # given
    body = json.dumps({**WRITTEN_BEFORE_VERSIONS, field: value})
    # when
    with pytest.raises(InvalidFireMessage) as caught:
        FireMessage.from_json(body)
    # then
    assert field in str(caught.value)
