"""SendService's in_app channel on the in-memory fakes, with the shipped product_offer
template: kept and pushed to the person's open pages, never suppressed or held for quiet
hours, capped per day like any channel, poison when it cannot render or would not fit in
a WebSocket message, skipped once expired or when no WebSocket API is configured, retried
when the table said later."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nudge.domain.in_app import MAX_FRAME_BYTES
from nudge.domain.messages import FireMessage, InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.policy import Policy
from nudge.domain.profile import Profile
from nudge.domain.render import Renderer
from nudge.service.in_app import InAppService
from nudge.service.send import EMAIL_BACKOFF, Delivery, Poison, SendService, SendSettings

from tests.conftest import REPO
from tests.fakes import (
    FakeMailer,
    FakeQueue,
    FakeScheduler,
    InMemoryContacts,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryInAppInbox,
    InMemoryPeople,
    InMemoryReceipts,
    InMemorySuppressionList,
    RecordingSockets,
    ScriptedWebhook,
    StuckReceipts,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
ADA = PersonId.user("ada")
SETTINGS = SendSettings(
    from_email="nudge@shop.test",
    public_url="https://links.shop.test",
    tracking_key=b"dev-tracking-secret",
    crm_webhook_url=None,
    send_queue_arn="arn:aws:sqs:us-east-1:123456789012:nudge-SendQueue",
)
OFFER_DISPLAY = {"delay": 5.0, "scroll": 50.0, "exclude": ["/checkout*"]}


class WatchedSuppressionList(InMemorySuppressionList):
    """The suppression list, counting the channels Send asks it about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def is_suppressed(self, channel: str, address: str) -> bool:
        self.asked.append(channel)
        return super().is_suppressed(channel, address)


@dataclass
class World:
    """Send with an in-app service, and everything they talk to, held in memory."""

    people: InMemoryPeople = field(default_factory=InMemoryPeople)
    contacts: InMemoryContacts = field(default_factory=InMemoryContacts)
    suppression: WatchedSuppressionList = field(default_factory=WatchedSuppressionList)
    records: InMemoryEngineStore = field(default_factory=InMemoryEngineStore)
    scheduler: FakeScheduler = field(default_factory=FakeScheduler)
    queue: FakeQueue = field(default_factory=FakeQueue)
    inbox: InMemoryInAppInbox = field(default_factory=InMemoryInAppInbox)
    sockets: RecordingSockets = field(default_factory=RecordingSockets)
    templates: Path = REPO / "triggers" / "templates"
    settings: SendSettings = SETTINGS
    with_in_app: bool = True

    @cached_property  # built on first use, so a test may change templates or settings first
    def service(self) -> SendService:
        return SendService(
            events=self.people,
            contacts=self.contacts,
            suppression=self.suppression,
            receipts=InMemoryReceipts(),
            failed_receipts=StuckReceipts(),
            decisions=self.records,
            renderer=Renderer(self.templates),
            email=FakeMailer(),
            webhook=ScriptedWebhook(),
            reminders=self.scheduler,
            queue=self.queue,
            experiments=InMemoryExperiments(),
            settings=self.settings,
            in_app=(
                InAppService(inbox=self.inbox, sockets=self.sockets) if self.with_in_app else None
            ),
        )

    def deliver(self, fire: FireMessage, at: datetime = NOW) -> Delivery:
        return self.service.deliver(fire, at)

    def given_person(self, **traits: Any) -> None:
        self.people.save_profiles([Profile(person=ADA, user_id="ada", traits=traits)])

    def given_open_page(self, connection: str, at: datetime = NOW) -> None:
        self.inbox.connect(ADA, connection, at, at + timedelta(hours=2))

    def given_templates(self, tmp_path: Path, **files: str) -> None:
        """The shipped templates and these files, ``name`` as ``name.in_app.html.j2``."""
        self.templates = tmp_path / "templates"
        shutil.copytree(REPO / "triggers" / "templates", self.templates)
        for name, text in files.items():
            (self.templates / f"{name}.in_app.html.j2").write_text(text, encoding="utf-8")


@pytest.fixture
def world() -> World:
    world = World()
    world.given_person(first_name="Ada", email="ada@example.com")
    return world


def offer_fire(at: datetime = NOW, **fields: Any) -> FireMessage:
    """A product_offer fire as Evaluate queues it; keyword arguments replace fields."""
    return FireMessage.model_validate(
        {
            "fireId": f"fire-{uuid.uuid4().hex[:12]}",
            "trigger": "product_offer",
            "person": str(ADA),
            "userId": "ada",
            "occurrence": "product_id=p1",
            "firedAt": at.isoformat(),
            "channel": "in_app",
            "template": "product_offer",
            "event": {
                "event": "Page Engaged",
                "properties": {"product_id": "p1", "name": "Espresso Cup", "active_seconds": 120},
            },
            "display": OFFER_DISPLAY,
            "expires": 86_400,
            **fields,
        }
    )


def test_an_in_app_fire_is_pushed_to_the_open_pages_and_recorded_sent(world: World) -> None:
    """With two pages open, the fire is kept and pushed to both; the outcome is sent and
    the reason names the pages."""
    # given
    world.given_open_page("tab-1")
    world.given_open_page("tab-2")
    fire = offer_fire()

    # when
    delivery = world.deliver(fire)

    # then
    reason = "pushed to 2 open page(s); kept until one shows it or 2026-11-29T10:00:00.000Z"
    assert delivery == Delivery("sent", reason)
    assert world.records.decisions[-1].outcome == "sent"
    assert [to for to, _ in world.sockets.posts] == ["tab-1", "tab-2"]
    assert world.contacts.load(ADA).fires[fire.fire_id].startswith("sent@")


def test_the_pushed_message_is_the_rendered_template_with_the_fires_rules(world: World) -> None:
    """The page gets the product_offer card rendered for the person, with the fire's
    display rules and an expiry of fired-at plus the fire's expires."""
    # given
    world.given_open_page("tab-1")
    fire = offer_fire(expires=3600)

    # when
    world.deliver(fire)

    # then
    (frame,) = world.sockets.frames("tab-1")
    assert (frame["type"], frame["fireId"], frame["trigger"]) == (
        "message",
        fire.fire_id,
        "product_offer",
    )
    assert "Still thinking about Espresso Cup?" in frame["html"]
    assert ", Ada." in frame["html"]
    assert frame["display"] == {**OFFER_DISPLAY, "match": "any"}
    assert frame["expiresAt"] == "2026-11-28T11:00:00.000Z"


def test_with_no_page_open_the_message_waits_and_counts_as_sent(world: World) -> None:
    """Nobody has a page open: the message is kept for their next page and the fire is
    sent, the reason saying until when it waits."""
    # given: no open page
    fire = offer_fire()

    # when
    delivery = world.deliver(fire)

    # then
    assert delivery == Delivery(
        "sent", "no page open: kept for the next page until 2026-11-29T10:00:00.000Z"
    )
    assert [m.fire_id for m in world.inbox.pending([ADA], NOW)] == [fire.fire_id]


def test_a_fire_without_display_or_expires_waits_a_day_with_no_rules(world: World) -> None:
    """A fire queued before in-app fires carried display and expires waits a day, with
    the default rules."""
    # given
    fire = offer_fire(display=None, expires=None)

    # when
    world.deliver(fire)

    # then
    (message,) = world.inbox.pending([ADA], NOW)
    assert message.display == InAppDisplay()
    assert message.expires_at == NOW + timedelta(days=1)


def test_the_suppression_list_is_not_consulted_for_in_app(world: World) -> None:
    """Suppression lists hold addresses; an in-app message reaches none, so Send never
    asks, and a person suppressed under their id still gets it."""
    # given
    world.suppression.suppress("in_app", str(ADA), "unsubscribed", NOW)

    # when
    delivery = world.deliver(offer_fire())

    # then
    assert delivery.outcome == "sent"
    assert world.suppression.asked == []


def test_quiet_hours_do_not_defer_in_app(world: World) -> None:
    """At 23:00 in Berlin an in-app message is delivered at once: it only appears on a
    page the person has open."""
    # given
    world.given_person(timezone="Europe/Berlin")
    late = datetime(2026, 11, 28, 23, 0, tzinfo=BERLIN)
    world.given_open_page("tab-1", late)

    # when
    delivery = world.deliver(offer_fire(late), late)

    # then
    assert delivery.outcome == "sent"
    assert world.scheduler.schedules == {}
    assert world.queue.messages == []
    assert len(world.sockets.posts) == 1


def test_the_daily_in_app_cap_applies(world: World) -> None:
    """With a cap of 2 in-app messages a day, a third fire that day is capped and kept for
    no page."""
    # given
    policy = Policy(per_trigger_per_day=10, per_channel_per_day={"in_app": 2})
    world.settings = replace(SETTINGS, policy=policy)
    world.deliver(offer_fire())
    world.deliver(offer_fire(), NOW + timedelta(hours=1))
    third = offer_fire(NOW + timedelta(hours=2))

    # when
    delivery = world.deliver(third, NOW + timedelta(hours=2))

    # then
    assert delivery == Delivery("capped", "in_app cap of 2 a day reached")
    assert third.fire_id not in {m.fire_id for m in world.inbox.pending([ADA], NOW)}


def test_a_template_that_fails_to_render_is_poison(world: World, tmp_path: Path) -> None:
    """A template reaching for a variable the fire does not have can never be shown:
    Poison naming the file, nothing kept, claimed or posted."""
    # given
    world.given_templates(tmp_path, broken="<p>{{ cart.total }}</p>")
    world.given_open_page("tab-1")

    # when
    with pytest.raises(Poison, match=r"broken\.in_app\.html\.j2"):
        world.deliver(offer_fire(template="broken"))

    # then
    assert world.inbox.messages == {}
    assert world.sockets.posts == []
    assert world.contacts.records == {}


def test_a_message_over_128_kb_is_poison_naming_the_limit(world: World, tmp_path: Path) -> None:
    """A rendered message whose frame would exceed API Gateway's 128 KB is Poison saying
    its size and the limit; nothing is kept or posted."""
    # given
    world.given_templates(tmp_path, huge="<p>" + "x" * MAX_FRAME_BYTES + "</p>")
    world.given_open_page("tab-1")

    # when
    with pytest.raises(Poison) as refused:
        world.deliver(offer_fire(template="huge"))

    # then
    assert "a WebSocket message carries at most 131,072 (API Gateway's limit)" in str(refused.value)
    assert world.inbox.messages == {}
    assert world.sockets.posts == []


def test_a_message_just_under_the_limit_is_delivered(world: World, tmp_path: Path) -> None:
    """A rendered message whose frame fits in 128 KB is delivered whole."""
    # given
    world.given_templates(tmp_path, big="<p>" + "x" * (MAX_FRAME_BYTES - 1024) + "</p>")

    # when
    delivery = world.deliver(offer_fire(template="big"))

    # then
    assert delivery.outcome == "sent"


def test_a_fire_whose_expiry_passed_is_skipped(world: World) -> None:
    """A fire delivered after fired-at plus expires (held in a queue that long) is skipped,
    saying when it expired; nothing is kept or counted."""
    # given
    fire = offer_fire(NOW - timedelta(hours=2), expires=3600)

    # when
    delivery = world.deliver(fire)

    # then
    assert delivery == Delivery("skipped", "expired at 2026-11-28T09:00:00.000Z before delivery")
    assert world.inbox.messages == {}
    assert world.contacts.records == {}


def test_an_unavailable_inbox_retries_the_fire_a_minute_on(world: World) -> None:
    """The table saying later (throttling) puts the fire back on the queue after the first
    backoff step, and releases the claim."""
    # given
    world.inbox.answer_unavailable()
    fire = offer_fire()

    # when
    delivery = world.deliver(fire)

    # then
    assert (delivery.outcome, delivery.retry_in) == ("retry", EMAIL_BACKOFF[0])
    (queued,) = world.queue.messages
    assert (queued.fire, queued.delay_seconds) == (fire.retried(), EMAIL_BACKOFF[0])
    assert world.contacts.load(ADA).fires[fire.fire_id].startswith("failed@")


def test_the_retry_after_an_unavailable_inbox_is_delivered(world: World) -> None:
    """The requeued fire, handed out a minute later, is kept and counted once."""
    # given
    world.inbox.answer_unavailable()
    world.deliver(offer_fire())
    (queued,) = world.queue.messages

    # when
    delivery = world.deliver(queued.fire, NOW + timedelta(minutes=1))

    # then
    assert delivery.outcome == "sent"
    assert world.contacts.load(ADA).per_channel == {"in_app": 1}


def test_an_inbox_unavailable_on_the_last_attempt_is_poison(world: World) -> None:
    """After the last backoff step, the table saying later once more makes the fire Poison."""
    # given
    world.inbox.answer_unavailable()

    # when / then
    with pytest.raises(Poison, match="in-app delivery kept failing"):
        world.deliver(offer_fire(attempt=len(EMAIL_BACKOFF)))


def test_without_a_websocket_api_an_in_app_fire_is_skipped(world: World) -> None:
    """No in-app service configured (no NUDGE_SOCKET_ENDPOINT): skipped, saying so."""
    # given
    world.with_in_app = False

    # when
    delivery = world.deliver(offer_fire())

    # then
    assert delivery == Delivery("skipped", "no WebSocket API configured (NUDGE_SOCKET_ENDPOINT)")
    assert world.contacts.records == {}
