"""One engine: for random event sequences the live path (Ingest, the stream, Evaluate and its
schedules on moto), the backtest and a plain reading of abandoned_cart agree on every fire."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from nudge.domain.triggers.loader import load_triggers
from nudge.service.backtest import backtest, read_events

from local.resources import create_resources, table_name
from local.template import Template
from tests.conftest import REPO
from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon, clear_bootstrap_caches

TRIGGER = "abandoned_cart"
WAIT = timedelta(hours=24)  # abandoned_cart: unless Order Completed within 24h
TAIL = timedelta(hours=48)  # how long the clock runs on after the last event
CARTS = ["c1", "c2"]

# (user, occurrence, fire time): who fires, for what, when.
Fires = list[tuple[str, str, datetime]]


# ---- random histories ---------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One message as a client sends it, received at ``at`` (a resend keeps its message)."""

    at: datetime
    message: dict[str, Any]
    resend: bool = False


def _track(user: str, name: str, message_id: str, at: datetime, cart: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {} if cart is None else {"cart_id": cart}
    if name == "Product Added":
        properties.update(product_id=f"sku-{message_id}", name=f"Product {message_id}", price=10.0)
    return {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


@st.composite
def histories(draw: st.DrawFn) -> list[Sent]:
    """1 to 3 users with an email, then up to 12 adds, orders and resends in time order."""
    users = [f"user{n}" for n in range(draw(st.integers(min_value=1, max_value=3)))]
    sent = [
        Sent(
            NOW,
            {
                "type": "identify",
                "userId": user,
                "messageId": f"identify-{user}",
                "timestamp": NOW.isoformat(),
                "traits": {"email": f"{user}@example.com"},
            },
        )
        for user in users
    ]
    clock = NOW
    # Gaps in minutes: often short (events that meet inside one 24h window), up to 30h.
    gaps = st.one_of(st.integers(0, 3 * 60), st.integers(0, 30 * 60))
    steps = draw(st.lists(gaps, min_size=1, max_size=12))
    for number, gap in enumerate(steps):
        clock += timedelta(minutes=gap)
        kind = draw(st.sampled_from(["add", "add", "order", "resend"]))
        if kind == "resend" and number > 0:
            earlier = draw(st.sampled_from(sent[len(users) :]))
            sent.append(Sent(clock, earlier.message, resend=True))
            continue
        user = draw(st.sampled_from(users))
        cart = draw(st.sampled_from([*CARTS, None]))
        name = "Order Completed" if kind == "order" else "Product Added"
        sent.append(Sent(clock, _track(user, name, f"m{number}", clock, cart)))
    return sent


# ---- the rule as a person states it ---------------------------------------------------


def reference(sent: list[Sent]) -> Fires:
    """abandoned_cart over the whole history, without the engine.

    Each Product Added starts a timer due 24h after it, unless its occurrence (the cart, or
    the add itself when it has no cart_id) already has an undecided timer: the first stands.
    A timer is decided when an Order Completed for its cart (or for no cart; any order, when
    the add had no cart) follows it, or at its due time: it then fires unless such an order
    was made at or after the add's timestamp and before the due time (one at the due time
    comes after the fire), and unless the occurrence already fired once (re-entry every_time).
    """
    history = [item.message for item in sent if not item.resend]  # a resend is the same message
    orders = [m for m in history if m.get("event") == "Order Completed"]

    def cancels(order: dict[str, Any], add: dict[str, Any]) -> bool:
        ours, theirs = order["properties"].get("cart_id"), add["properties"].get("cart_id")
        return order["userId"] == add["userId"] and (ours is None or theirs in (None, ours))

    pending: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
    fired: Fires = []

    def settle(until: datetime) -> None:
        for key, (due, add) in sorted(pending.items(), key=lambda item: item[1][0]):
            if due > until:
                continue
            del pending[key]
            start = datetime.fromisoformat(add["timestamp"])
            made = [datetime.fromisoformat(o["timestamp"]) for o in orders if cancels(o, add)]
            already = any((user, occurrence) == key for user, occurrence, _ in fired)
            if not already and not any(start <= moment < due for moment in made):
                fired.append((*key, due))

    for message in history:
        if message["type"] != "track":
            continue
        moment = datetime.fromisoformat(message["timestamp"])
        settle(moment)
        if message["event"] == "Order Completed":
            for key, (_, add) in list(pending.items()):
                if cancels(message, add):
                    del pending[key]
        else:
            cart = message["properties"].get("cart_id")
            occurrence = f"cart_id={cart}" if cart else f"event={message['messageId']}"
            pending.setdefault((message["userId"], occurrence), (moment + WAIT, message))
    settle(sent[-1].at + TAIL)
    return sorted(fired)


# ---- the live path: Ingest, the stream, Evaluate, the schedules ---------------------------


@contextmanager
def _account(template: Template, session: boto3.Session) -> Iterator[Aws]:
    """A fresh mocked account per example, built as the ``aws`` fixture builds one."""
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        scheduler = boto3.client("scheduler")
        create_resources(template, dynamodb, sqs, scheduler)
        (table_id,) = template.tables
        clear_bootstrap_caches()
        try:
            yield Aws(
                template=template,
                dynamodb=dynamodb,
                streams=boto3.client("dynamodbstreams"),
                sqs=sqs,
                scheduler=scheduler,
                table=table_name(template, table_id),
                monkeypatch=monkeypatch,
            )
        finally:
            clear_bootstrap_caches()


@dataclass
class Live:
    aws: Aws
    ingest: Invoke
    evaluate: Invoke
    stream: Stream
    group: str
    done: set[str]

    @classmethod
    def start(cls, aws: Aws) -> Live:
        ingest = aws.load_handler("Ingest")
        evaluate = aws.load_handler("Evaluate")
        group = aws.environment("Evaluate")["NUDGE_SCHEDULE_GROUP"]
        return cls(aws, ingest, evaluate, Stream.of(aws, evaluate), group, set())

    def send(self, item: Sent) -> None:
        """Ingest receives the message at its time; Evaluate sees the new records then."""
        response = self.ingest(beacon("batch", {"batch": [item.message]}, at=item.at))
        assert response["statusCode"] == 200, response
        records = self.stream.read()
        for record in records:
            record["dynamodb"]["ApproximateCreationDateTime"] = int(item.at.timestamp())
        responses = self.stream.deliver(records)
        assert all(r == {"batchItemFailures": []} for r in responses), responses

    def run_clock(self, until: datetime) -> None:
        """Every schedule due by ``until`` invoked at its due time, earliest first."""
        while due := self._due(until):
            name, moment, raw = due[0]
            stamped = raw.replace(
                "<aws.scheduler.scheduled-time>", moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            self.evaluate(json.loads(stamped))
            self.done.add(name)

    def _due(self, until: datetime) -> list[tuple[str, datetime, str]]:
        found = []
        for summary in self.aws.scheduler.list_schedules(GroupName=self.group)["Schedules"]:
            name = summary["Name"]
            if name in self.done:
                continue
            schedule = self.aws.scheduler.get_schedule(Name=name, GroupName=self.group)
            raw = schedule["Target"]["Input"]
            if "due" not in json.loads(raw):
                continue  # the recurring inactivity sweep, not a timer
            due = datetime.fromisoformat(json.loads(raw)["due"])
            if due <= until:
                found.append((name, due, raw))
        return sorted(found, key=lambda item: (item[1], item[0]))

    def fires(self) -> Fires:
        url = self.aws.environment("Evaluate")["NUDGE_SEND_QUEUE_URL"]
        fires: Fires = []
        while True:
            received = self.aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            if not received.get("Messages"):
                return sorted(fires)
            for message in received["Messages"]:
                fire = json.loads(message["Body"])
                if fire["trigger"] == TRIGGER:
                    moment = datetime.fromisoformat(fire["firedAt"])
                    fires.append((fire["userId"], fire["occurrence"], moment))


def live(template: Template, session: boto3.Session, sent: list[Sent]) -> Fires:
    with _account(template, session) as aws:
        world = Live.start(aws)
        for item in sent:
            world.run_clock(item.at)
            world.send(item)
        world.run_clock(sent[-1].at + TAIL)
        return world.fires()


def backtested(sent: list[Sent]) -> dict[str, int]:
    """The backtest's fires per day, over the messages the table holds (each stored once)."""
    lines = [json.dumps(item.message) for item in sent if not item.resend]
    events, skipped = read_events(lines)
    assert skipped == []
    shipped = load_triggers(REPO / "triggers")
    triggers = [trigger for trigger in shipped.triggers if trigger.id == TRIGGER]
    report = backtest(events, triggers).triggers[TRIGGER]
    return dict(report.per_day)


def per_day(fires: Fires, until: datetime) -> dict[str, int]:
    return dict(Counter(moment.date().isoformat() for _, _, moment in fires if moment <= until))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sent=histories())
def test_live_path_backtest_and_reference_agree_on_abandoned_cart_fires(
    template: Template, boto_session: boto3.Session, sent: list[Sent]
):
    """The stream-and-scheduler path fires exactly what the rule says, and the backtest agrees."""
    # given
    expected = reference(sent)
    # when
    fired = live(template, boto_session, sent)
    replayed = backtested(sent)
    # then
    assert fired == expected
    last = max(datetime.fromisoformat(item.message["timestamp"]) for item in sent)
    assert replayed == per_day(expected, until=last)
