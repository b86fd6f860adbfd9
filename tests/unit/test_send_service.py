"""SendService on the in-memory fakes, with the shipped templates: sent, deferred for quiet
hours, capped, suppressed, retried after SES or a webhook said later, poison, and a contact
record that kept changing said so in the decision (the cases of
tests/integration/test_send.py, without moto)."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile, expiry, profile_kept
from nudge.domain.render import Renderer
from nudge.domain.timefmt import hour_of, iso
from nudge.service.delivery_ports import WebhookResult
from nudge.service.ports import Refused
from nudge.service.send import (
    EMAIL_BACKOFF,
    WEBHOOK_BACKOFF,
    Delivery,
    Poison,
    SendService,
    SendSettings,
)

from tests.conftest import REPO
from tests.fakes import (
    FakeMailer,
    FakeQueue,
    FakeScheduler,
    InMemoryContacts,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryPeople,
    InMemoryReceipts,
    InMemorySuppressionList,
    ScriptedWebhook,
    StuckReceipts,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
ADA = PersonId.user("ada")
ADA_EMAIL = "ada@example.com"
CRM_URL = "https://crm.shop.test/hook"
SETTINGS = SendSettings(
    from_email="nudge@shop.test",
    public_url="https://links.shop.test",
    tracking_key=b"dev-tracking-secret",
    crm_webhook_url=CRM_URL,
    send_queue_arn="arn:aws:sqs:us-east-1:123456789012:nudge-SendQueue",
)
CUP = {"name": "Espresso Cup", "price": 12.5, "quantity": 2}
CART_ITEMS = [{**CUP, "image_url": "https://shop.test/i/cup.png", "url": "https://shop.test/p/cup"}]


@dataclass
class World:
    """Send and everything it talks to, held in memory."""

    people: InMemoryPeople = field(default_factory=InMemoryPeople)
    contacts: InMemoryContacts = field(default_factory=InMemoryContacts)
    suppression: InMemorySuppressionList = field(default_factory=InMemorySuppressionList)
    receipts: InMemoryReceipts = field(default_factory=InMemoryReceipts)
    failed_receipts: StuckReceipts = field(default_factory=StuckReceipts)
    records: InMemoryEngineStore = field(default_factory=InMemoryEngineStore)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    webhook: ScriptedWebhook = field(default_factory=ScriptedWebhook)
    scheduler: FakeScheduler = field(default_factory=FakeScheduler)
    queue: FakeQueue = field(default_factory=FakeQueue)
    experiments: InMemoryExperiments = field(default_factory=InMemoryExperiments)
    templates: Path = REPO / "triggers" / "templates"

    @cached_property  # built on first use, so a test may point it at other templates first
    def service(self) -> SendService:
        return SendService(
            events=self.people,
            contacts=self.contacts,
            suppression=self.suppression,
            receipts=self.receipts,
            failed_receipts=self.failed_receipts,
            decisions=self.records,
            renderer=Renderer(self.templates),
            email=self.mailer,
            webhook=self.webhook,
            reminders=self.scheduler,
            queue=self.queue,
            experiments=self.experiments,
            settings=SETTINGS,
        )

    def deliver(self, fire: FireMessage, at: datetime = NOW, **options: Any) -> Delivery:
        return self.service.deliver(fire, at, **options)

    def given_person(self, **traits: Any) -> None:
        """ada's profile as the stream would have folded it, with these traits."""
        self.people.save_profiles([Profile(person=ADA, user_id="ada", traits=traits)])

    def recorded(self) -> list[tuple[str, str]]:
        """(outcome, reason) of each decision Send recorded, in order."""
        return [(d.outcome, d.reason) for d in self.records.decisions]


@pytest.fixture
def world() -> World:
    world = World()
    world.given_person(email=ADA_EMAIL, first_name="Ada", name="Ada Lovelace", tier="vip")
    return world


def cart_fire(at: datetime = NOW, **fields: Any) -> FireMessage:
    """An abandoned-cart fire as Evaluate queues it; keyword arguments replace fields."""
    return FireMessage.model_validate(
        {
            "fireId": f"fire-{uuid.uuid4().hex[:12]}",
            "trigger": "abandoned_cart",
            "person": str(ADA),
            "userId": "ada",
            "occurrence": "cart_id=c1",
            "firedAt": at.isoformat(),
            "channel": "email",
            "template": "abandoned_cart",
            "event": {"event": "Product Added", "properties": {"cart_id": "c1"}},
            "context": {"items": CART_ITEMS},
            **fields,
        }
    )


def vip_fire(at: datetime = NOW) -> FireMessage:
    checkout = {"event": "Checkout Started", "timestamp": at.isoformat()}
    return cart_fire(
        at,
        trigger="vip_checkout_call",
        channel="webhook",
        template="vip_call",
        event=checkout,
        occurrence="vip_checkout_call-1",
    )


# ---- email ---------------------------------------------------------------------------------


def test_a_cart_fire_is_emailed_to_the_person(world: World) -> None:
    """A fire for a person with an email sends one email there and records it sent."""
    # given
    fire = cart_fire()

    # when
    delivery = world.deliver(fire)

    # then
    (email,) = world.mailer.sent
    assert (email.to, email.headers["X-Nudge-Fire"]) == (ADA_EMAIL, fire.fire_id)
    assert delivery == Delivery("sent", f"sent to {ADA_EMAIL} (SES ses-1)")
    assert world.recorded() == [("sent", f"sent to {ADA_EMAIL} (SES ses-1)")]


def test_a_fire_in_quiet_hours_is_scheduled_back_for_the_morning(world: World) -> None:
    """At 23:00 in Berlin nothing is sent; the fire is scheduled back onto the queue at 08:00."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    late = datetime(2026, 11, 28, 23, 0, tzinfo=BERLIN)
    fire = cart_fire(late)

    # when
    delivery = world.deliver(fire, late)

    # then
    assert delivery.outcome == "deferred"
    assert world.mailer.sent == []
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == datetime(2026, 11, 29, 8, 0, tzinfo=BERLIN)
    assert armed.target_arn == SETTINGS.send_queue_arn
    assert armed.payload == fire.retried().to_record()


# ---- send.at: the person's own time of day ------------------------------------------------


def test_a_fire_with_send_at_waits_for_that_time_in_the_persons_zone(world: World) -> None:
    """At 07:00 in Berlin, a fire for 09:30 is not sent: a schedule puts it back at 09:30."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)
    fire = cart_fire(early, sendAt="09:30")
    # when
    delivery = world.deliver(fire, early)
    # then
    due = datetime(2026, 11, 28, 9, 30, tzinfo=BERLIN)
    assert (delivery.outcome, world.mailer.sent) == ("deferred", [])
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == due
    assert armed.payload == fire.waiting_until("2026-11-28T08:30:00.000Z").to_record()
    assert world.recorded() == [
        ("deferred", "waits for 09:30 in Europe/Berlin, until 2026-11-28T08:30:00.000Z")
    ]


def test_a_waiting_fire_is_not_an_attempt(world: World) -> None:
    """The wait spends none of the retries a failed delivery may need later."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)
    # when
    world.deliver(cart_fire(early, sendAt="09:30"), early)
    # then
    (armed,) = world.scheduler.schedules.values()
    assert armed.payload["attempt"] == 0


def test_a_fire_past_its_time_today_waits_for_tomorrow(world: World) -> None:
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    later = datetime(2026, 11, 28, 11, 0, tzinfo=BERLIN)
    # when
    world.deliver(cart_fire(later, sendAt="09:30"), later)
    # then
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == datetime(2026, 11, 29, 9, 30, tzinfo=BERLIN)


def test_the_waiting_fire_is_sent_when_it_comes_back_at_its_time(world: World) -> None:
    """Back at 09:30 (the schedule's input), it goes like any fire: sent once."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)
    world.deliver(cart_fire(early, sendAt="09:30"), early)
    (armed,) = world.scheduler.schedules.values()
    back = FireMessage.model_validate(armed.payload)
    # when
    delivery = world.deliver(back, armed.due)
    # then
    assert delivery.outcome == "sent"
    assert [outgoing.to for outgoing in world.mailer.sent] == [ADA_EMAIL]


def test_a_waiting_fire_keeps_its_moment_when_the_timezone_changes(world: World) -> None:
    """Worked out once: a fire that comes back early (a timezone changed since) waits again
    for the same moment, not for 09:30 in the new zone."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)
    world.deliver(cart_fire(early, sendAt="09:30"), early)
    (armed,) = world.scheduler.schedules.values()
    back = FireMessage.model_validate(armed.payload)
    world.given_person(email=ADA_EMAIL, timezone="Asia/Tokyo")
    # when
    delivery = world.deliver(back, armed.due - timedelta(minutes=10))
    # then
    assert delivery.outcome == "deferred"
    assert world.queue.messages[-1].fire.deliver_at == "2026-11-28T08:30:00.000Z"
    assert world.queue.messages[-1].delay_seconds == 600


def test_a_person_with_an_invalid_timezone_waits_in_the_accounts_and_the_decision_says_so(
    world: World,
) -> None:
    # given
    world.given_person(email=ADA_EMAIL, timezone="Mars/Olympus_Mons")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    # when
    world.deliver(cart_fire(early, sendAt="09:30"), early)
    # then
    assert world.recorded() == [
        (
            "deferred",
            "waits for 09:30 in UTC, until 2026-11-28T09:30:00.000Z"
            " (timezone 'Mars/Olympus_Mons' is not an IANA zone; UTC used)",
        )
    ]


def test_a_send_at_inside_quiet_hours_still_waits_for_their_end(world: World) -> None:
    """At 06:00 it is due, but quiet hours (21:00-08:00) hold it to 08:00."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    evening = datetime(2026, 11, 28, 20, 0, tzinfo=BERLIN)
    world.deliver(cart_fire(evening, sendAt="06:00"), evening)
    (armed,) = world.scheduler.schedules.values()
    back = FireMessage.model_validate(armed.payload)
    # when
    delivery = world.deliver(back, armed.due)
    # then
    assert (delivery.outcome, world.mailer.sent) == ("deferred", [])
    assert "quiet hours" in delivery.reason
    assert datetime(2026, 11, 29, 8, 0, tzinfo=BERLIN) in [
        schedule.due for schedule in world.scheduler.schedules.values()
    ]


def test_a_best_hour_fire_waits_for_the_hour_the_person_engages_most(world: World) -> None:
    """Ada opens and clicks on Saturday evenings in Berlin: a fire at 10:00 waits for 19:00."""
    # given
    saturday_19_berlin = 5 * 24 + 19
    world.people.save_profiles(
        [
            Profile(
                person=ADA,
                user_id="ada",
                traits={"email": ADA_EMAIL, "timezone": "Europe/Berlin"},
                engaged_hours={saturday_19_berlin: 12},
            )
        ]
    )
    morning = datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN)  # a Saturday
    fire = cart_fire(morning, sendAt="best", sendWithin=86400, sendFallback="10:00")
    # when
    delivery = world.deliver(fire, morning)
    # then
    assert delivery.outcome == "deferred"
    assert delivery.reason.startswith("waits for the best hour Saturday 19:00 in Europe/Berlin")
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == datetime(2026, 11, 28, 19, 0, tzinfo=BERLIN)


def test_a_best_hour_fire_without_history_waits_for_the_fallback(world: World) -> None:
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)
    fire = cart_fire(early, sendAt="best", sendWithin=86400, sendFallback="10:00")
    # when
    world.deliver(fire, early)
    # then
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN)


def test_a_fire_minutes_before_the_morning_waits_on_the_queue(world: World) -> None:
    """Five minutes before quiet hours end, the fire goes back on the queue with that delay."""
    # given
    world.given_person(email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 55, tzinfo=BERLIN)

    # when
    world.deliver(cart_fire(early), early)

    # then
    (queued,) = world.queue.messages
    assert (queued.fire.attempt, queued.delay_seconds) == (1, 300)
    assert world.scheduler.schedules == {}


def test_a_second_cart_the_same_day_is_capped(world: World) -> None:
    """abandoned_cart emails a person once a day: the second fire is capped, not sent."""
    # given
    world.deliver(cart_fire())

    # when
    delivery = world.deliver(cart_fire(), NOW + timedelta(hours=1))

    # then
    assert delivery == Delivery("capped", "abandoned_cart cap of 1 a day reached")
    assert len(world.mailer.sent) == 1


def test_a_suppressed_address_gets_nothing(world: World) -> None:
    """An address on the suppression list gets no email; the fire is recorded as suppressed."""
    # given
    world.suppression.suppress("email", ADA_EMAIL, "unsubscribed", NOW)

    # when
    delivery = world.deliver(cart_fire())

    # then
    assert delivery == Delivery("suppressed", f"{ADA_EMAIL} is suppressed on email")
    assert world.mailer.sent == []


def test_a_profile_past_its_expiry_gives_no_address_to_send_to() -> None:
    """A profile whose expires_at has come, still stored (TTL has not run yet), is no one's:
    the email is skipped for want of an address, as once the profile is deleted."""
    # given
    kept = profile_kept(timedelta(days=90))
    world = World(people=InMemoryPeople(profile_kept=kept))
    ada = Profile(person=ADA, user_id="ada", last_seen=iso(NOW), traits={"email": ADA_EMAIL})
    world.people.save_profiles([ada])
    expires = expiry(hour_of(NOW), kept)

    # when
    just_before = world.deliver(cart_fire(), expires - timedelta(seconds=1))
    at_expiry = world.deliver(cart_fire(), expires)

    # then
    assert just_before.outcome == "sent"
    assert at_expiry == Delivery("skipped", "no email trait to send to")
    assert len(world.mailer.sent) == 1


def test_ses_saying_later_requeues_the_fire_a_minute_on(world: World) -> None:
    """SES throttling the send puts the fire back on the queue after the first backoff step."""
    # given
    world.mailer.answer_unavailable()
    fire = cart_fire()

    # when
    delivery = world.deliver(fire)

    # then
    assert (delivery.outcome, delivery.retry_in) == ("retry", EMAIL_BACKOFF[0])
    (queued,) = world.queue.messages
    assert (queued.fire, queued.delay_seconds) == (fire.retried(), 60)


def test_ses_saying_later_releases_the_claim(world: World) -> None:
    """After SES said later, the contact record marks the fire failed, not claimed, so the
    requeued attempt is not taken for a concurrent copy."""
    # given
    world.mailer.answer_unavailable()
    fire = cart_fire()

    # when
    world.deliver(fire)

    # then
    assert world.contacts.load(ADA).fires[fire.fire_id].startswith("failed@")


def test_the_retry_after_ses_said_later_is_sent(world: World) -> None:
    """The requeued fire, handed out a minute later, is sent once."""
    # given
    world.mailer.answer_unavailable()
    world.deliver(cart_fire())
    (queued,) = world.queue.messages

    # when
    delivery = world.deliver(queued.fire, NOW + timedelta(seconds=queued.delay_seconds))

    # then
    assert delivery.outcome == "sent"
    assert len(world.mailer.sent) == 1


def test_an_email_ses_accepted_before_a_crash_is_not_sent_again(world: World) -> None:
    """A redelivered fire left claimed by a crash, with SES's receipt on record, is a
    duplicate: marked sent, nothing sent again."""
    # given
    fire = cart_fire()
    claimed = ContactState(fires={fire.fire_id: f"claimed@{NOW.isoformat()}"})
    world.contacts.save(ADA, claimed)
    world.receipts.record(fire.fire_id, "ses-accepted", NOW)

    # when
    delivery = world.deliver(fire, NOW + timedelta(minutes=3), redelivered=True)

    # then
    assert delivery.outcome == "duplicate"
    assert world.mailer.sent == []
    assert world.contacts.load(ADA).fires[fire.fire_id].startswith("sent@")


def test_a_broken_template_is_poison(world: World, tmp_path: Path) -> None:
    """A template that does not parse can never be sent: Poison naming the file, nothing
    claimed or sent."""
    # given
    world.templates = tmp_path / "templates"
    shutil.copytree(REPO / "triggers" / "templates", world.templates)
    (world.templates / "broken.subject.j2").write_text("Your cart {{ items | length \n")

    # when
    with pytest.raises(Poison, match=r"broken\.subject\.j2"):
        world.deliver(cart_fire(template="broken"))

    # then
    assert world.mailer.sent == []
    assert world.contacts.records == {}


def test_a_record_that_kept_changing_is_named_in_the_decision(world: World) -> None:
    """When other writers win every race to mark the fire sent, the email still counts as
    sent and the recorded reason says the contact record was not marked."""
    # given
    world.contacts.keep_changing_after(saves=1)  # the claim is written, then never again

    # when
    world.deliver(cart_fire())

    # then
    ((outcome, reason),) = world.recorded()
    assert outcome == "sent"
    assert reason.endswith(
        "; the contact record was not marked sent: 5 version conflicts in a row"
        " (today's counts may be short by this fire)"
    )


# ---- webhooks ------------------------------------------------------------------------------


def test_a_vip_fire_is_posted_to_the_crm(world: World) -> None:
    """A webhook fire is posted once to the CRM URL, with the fire id as its webhook id."""
    # given
    fire = vip_fire()

    # when
    delivery = world.deliver(fire)

    # then
    ((url, message_id, payload),) = world.webhook.posts
    assert (url, message_id, payload["userId"]) == (CRM_URL, fire.fire_id, "ada")
    assert delivery.outcome == "sent"


def test_a_crm_answering_500_is_retried_five_seconds_later(world: World) -> None:
    """A retryable webhook failure puts the fire back on the queue after 5 s."""
    # given
    world.webhook.script.append(WebhookResult(False, 500, True, "the CRM answered 500"))
    fire = vip_fire()

    # when
    delivery = world.deliver(fire)

    # then
    assert delivery == Delivery("retry", "the CRM answered 500", WEBHOOK_BACKOFF[0])
    (queued,) = world.queue.messages
    assert (queued.fire, queued.delay_seconds) == (fire.retried(), 5)


def test_ses_refusing_the_message_for_good_dead_letters_it_and_releases_the_claim(
    world: World,
) -> None:
    """SES rejecting the message (not a passing state) makes the fire Poison, with SES's
    reason, and the contact record no longer holds it as claimed."""
    # given
    world.mailer.refuse_for_good(Refused("SES send_email: MessageRejected"))
    fire = cart_fire()

    # when
    with pytest.raises(Poison, match="SES refused it: SES send_email: MessageRejected"):
        world.deliver(fire)

    # then
    assert world.contacts.load(ADA).fires[fire.fire_id].startswith("failed@")
    assert world.mailer.sent == []
