"""The Send function over moto: fires from the send queue delivered by SES or a signed webhook,
at most once, under the contact policy (caps, quiet hours, suppression), or set aside."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ses.models import ses_backends
from moto.sqs.models import sqs_backends
from nudge import bootstrap
from nudge.adapters.contacts import ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore
from nudge.adapters.suppression import SuppressionStore
from nudge.config import ConfigError
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile
from nudge.domain.tokens import verify_token
from standardwebhooks import Webhook

from bench.receiver import Receiver
from local.template import Template, load_template
from tests.conftest import REPO
from tests.integration._harness import NOW, TRACKING_SECRET, WRITE_KEY, Aws, Invoke

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PUBLIC_URL = "https://links.shop.test"
FROM_EMAIL = "nudge@shop.test"
PARAMETERS = {
    "WriteKey": WRITE_KEY,
    "TrackingSecret": TRACKING_SECRET,
    "FromEmail": FROM_EMAIL,
    "PublicUrl": PUBLIC_URL,
    "WebhookSecret": WEBHOOK_SECRET,
    # Nothing listens there; the webhook tests point it at their own receiver.
    "CrmWebhookUrl": "http://127.0.0.1:9/hook",
    "WebhookAllowHosts": "127.0.0.1",
}
ADA = "u:ada"
ADA_EMAIL = "ada@example.com"
CART_ITEMS = [
    {
        "name": "Espresso Cup",
        "price": 12.5,
        "quantity": 2,
        "image_url": "https://shop.test/i/cup.png",
        "url": "https://shop.test/p/cup",
    },
    {
        "name": "Milk Jug",
        "price": 19.0,
        "quantity": 1,
        "image_url": "https://shop.test/i/jug.png",
        "url": "https://shop.test/p/jug",
    },
]


@pytest.fixture(scope="module")
def template() -> Template:
    """The template with the delivery parameters set (overrides the suite's default)."""
    return load_template(REPO / "template.yaml", PARAMETERS)


# ---- building what the queue delivers ----------------------------------------------------


def fire(
    trigger: str = "abandoned_cart",
    *,
    template: str | None = None,
    person: str = ADA,
    channel: str = "email",
    fire_id: str | None = None,
    event: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    at: datetime = NOW,
) -> dict[str, Any]:
    """A fire as Evaluate enqueues it."""
    return {
        "version": 1,
        "fireId": fire_id or f"fire-{uuid.uuid4().hex[:12]}",
        "trigger": trigger,
        "person": person,
        "userId": PersonId.parse(person).user_id,
        "anonymousId": None,
        "occurrence": f"{trigger}-1",
        "firedAt": at.isoformat().replace("+00:00", "Z"),
        "channel": channel,
        "template": template or trigger,
        "event": event or {"event": "Product Added", "properties": {"cart_id": "c1"}},
        "context": {"items": CART_ITEMS} if context is None else context,
        "attempt": 0,
        "variant": None,
        "experiment": None,
    }


def product_viewed() -> dict[str, Any]:
    return {
        "event": "Product Viewed",
        "properties": {"name": "Grinder", "url": "https://shop.test/p/grinder"},
    }


def record(
    body: dict[str, Any] | str,
    at: datetime = NOW,
    *,
    receive_count: int = 1,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One SQS record; ``at`` is its SentTimestamp, the time delivery is decided for."""
    millis = str(int(at.timestamp() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4().hex}",
        "body": body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": millis,
            "SenderId": "AROAEXAMPLE:nudge-local-Evaluate",
            "ApproximateFirstReceiveTimestamp": millis,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:nudge-local-SendQueue",
        "awsRegion": "us-east-1",
    }


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


# ---- what the account holds ---------------------------------------------------------------


def given_person(aws: Aws, person: str = ADA, **traits: Any) -> None:
    """A profile as the stream would have folded it, with these traits."""
    key = PersonId.parse(person)
    profile = Profile(person=key, user_id=key.user_id, traits=traits)
    assert EventStore(aws.dynamodb, aws.table).save_profiles([profile]) == set()


def sent_emails() -> list[EmailMessage]:
    """Every raw message SES accepted, parsed."""
    backend = ses_backends["123456789012"]["us-east-1"]
    return [
        email.message_from_string(m.raw_data, policy=email.policy.default)
        for m in backend.sent_messages
    ]


def decisions(aws: Aws, person: str = ADA) -> list[tuple[str, str, str]]:
    """(trigger, outcome, reason) of each decision recorded for the person, oldest first."""
    store = EngineStore(aws.dynamodb, aws.table, timedelta(days=30))
    recorded = store.decisions([PersonId.parse(person)])
    return [(d["trigger"], d["outcome"], d["reason"]) for d in recorded]


def outcomes(aws: Aws, person: str = ADA) -> list[str]:
    return [outcome for _, outcome, _ in decisions(aws, person)]


def schedules(aws: Aws) -> list[dict[str, Any]]:
    """The one-time schedules in the function's group, each with its target, soonest first."""
    group = aws.environment("Send")["NUDGE_SCHEDULE_GROUP"]
    names = [entry["Name"] for entry in aws.scheduler.list_schedules(GroupName=group)["Schedules"]]
    found: list[dict[str, Any]] = [
        dict(aws.scheduler.get_schedule(Name=name, GroupName=group)) for name in names
    ]
    # Recurring schedules the template itself declares are not Send's doing.
    one_time = [s for s in found if str(s["ScheduleExpression"]).startswith("at(")]
    return sorted(one_time, key=lambda schedule: str(schedule["ScheduleExpression"]))


def schedule_time(schedule: dict[str, Any]) -> datetime:
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    expression = str(schedule["ScheduleExpression"])
    assert expression.startswith("at(")
    return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Requeued:
    """A fire Send put back on its own queue, and the DelaySeconds it asked for."""

    fire: dict[str, Any]
    delay: int


def requeued(aws: Aws) -> list[Requeued]:
    """What the send queue holds, delayed or not, oldest first (read from moto's backend:
    a delayed message cannot be received before its time, which is what these tests ask)."""
    name = aws.environment("Send")["NUDGE_SEND_QUEUE_URL"].rsplit("/", 1)[-1]
    queue = sqs_backends["123456789012"]["us-east-1"].queues[name]
    return [
        Requeued(
            json.loads(message.body),
            round((message.delayed_until - (message.sent_timestamp or 0)) / 1000)
            if message.delayed_until
            else 0,
        )
        for message in queue._messages
    ]


def dead_letters(aws: Aws) -> list[dict[str, Any]]:
    url = aws.environment("Send")["NUDGE_SEND_DLQ_URL"]
    response = aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [dict(message) for message in response.get("Messages", [])]


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(cast(EmailMessage, part).get_content())


# ---- email ---------------------------------------------------------------------------------


def test_an_abandoned_cart_is_emailed_once_with_its_items_and_one_click_unsubscribe(
    aws: Aws, send: Invoke
):
    """An abandoned-cart fire for a person with an email is sent once: items, text, unsubscribe."""
    # given
    given_person(aws, email=ADA_EMAIL, first_name="Ada")
    cart = fire(fire_id="fire-cart-1")
    # when
    response = send(batch(record(cart)))
    # then
    assert failures(response) == []
    (message,) = sent_emails()
    assert (message["From"], message["To"]) == (FROM_EMAIL, ADA_EMAIL)
    assert message["X-Nudge-Fire"] == "fire-cart-1"
    html = html_of(message)
    assert "Hi Ada," in html
    clicks = re.findall(r'href="([^"]+/c/[^"]+)"', html)
    targets = [
        verify_token(link.rsplit("/", 1)[1], TRACKING_SECRET.encode())["url"] for link in clicks
    ]
    for item in CART_ITEMS:
        assert str(item["name"]) in html
        assert str(item["url"]) in targets  # each product links through the click tracker
    text = message.get_body(("plain",))
    assert text is not None
    assert "- Espresso Cup x 2: 12.5" in str(cast(EmailMessage, text).get_content())
    link = str(message["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{PUBLIC_URL}/u/")
    token = urlsplit(link).path.rsplit("/", 1)[1]
    claims = verify_token(token, TRACKING_SECRET.encode())
    assert (claims["k"], claims["e"], claims["f"]) == ("u", ADA_EMAIL, "fire-cart-1")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert outcomes(aws) == ["sent"]


def test_a_message_delivered_twice_sends_once(aws: Aws, send: Invoke):
    """SQS delivering one message twice (at least once) sends one email; the copy is a duplicate."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-1")
    send(batch(message))
    # when
    response = send(batch({**message, "receiptHandle": "another-handle"}))
    # then
    assert failures(response) == []
    assert len(sent_emails()) == 1
    assert sorted(outcomes(aws)) == ["duplicate", "sent"]


def test_five_abandoned_carts_in_one_day_send_one_email(aws: Aws, send: Invoke):
    """Five abandoned-cart fires for one person in one day send one email; four are capped."""
    # given
    given_person(aws, email=ADA_EMAIL)
    carts = [fire(fire_id=f"fire-cart-{n}") for n in range(5)]
    # when
    for n, cart in enumerate(carts):
        assert failures(send(batch(record(cart, NOW + timedelta(hours=n))))) == []
    # then
    assert len(sent_emails()) == 1
    recorded = decisions(aws)
    assert [outcome for _, outcome, _ in recorded] == ["sent"] + ["capped"] * 4
    assert {reason for _, outcome, reason in recorded if outcome == "capped"} == {
        "abandoned_cart cap of 1 a day reached"
    }


def test_no_person_gets_more_than_three_emails_a_day_across_triggers(aws: Aws, send: Invoke):
    """Four fires of four triggers in one day send three emails; the fourth hits the email cap."""
    # given
    given_person(aws, email=ADA_EMAIL, crm_status="inactive")
    fires = [
        fire("abandoned_cart"),
        fire("product_interest", event=product_viewed(), context={}),
        fire("re_engagement", context={}),
        fire("winback", template="re_engagement", context={}),
    ]
    # when
    for n, each in enumerate(fires):
        assert failures(send(batch(record(each, NOW + timedelta(minutes=10 * n))))) == []
    # then
    assert len(sent_emails()) == 3
    assert decisions(aws) == [
        ("abandoned_cart", "sent", f"sent to {ADA_EMAIL} ({_ses_id(0)})"),
        ("product_interest", "sent", f"sent to {ADA_EMAIL} ({_ses_id(1)})"),
        ("re_engagement", "sent", f"sent to {ADA_EMAIL} ({_ses_id(2)})"),
        ("winback", "capped", "email cap of 3 a day reached"),
    ]


def _ses_id(index: int) -> str:
    return f"SES {ses_backends['123456789012']['us-east-1'].sent_messages[index].id}"


def test_a_fire_in_quiet_hours_waits_for_the_morning_then_sends(aws: Aws, send: Invoke):
    """A fire at 23:00 Berlin time is not sent; it is scheduled back onto the queue for 08:00."""
    # given
    berlin = ZoneInfo("Europe/Berlin")
    given_person(aws, email=ADA_EMAIL, timezone="Europe/Berlin")
    late = datetime(2026, 11, 28, 23, 0, tzinfo=berlin)
    cart = fire(at=late)
    # when
    response = send(batch(record(cart, late)))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    assert outcomes(aws) == ["deferred"]
    (schedule,) = schedules(aws)
    assert schedule_time(schedule).astimezone(berlin) == datetime(2026, 11, 29, 8, 0, tzinfo=berlin)
    assert schedule["Target"]["Arn"] == aws.environment("Send")["NUDGE_SEND_QUEUE_ARN"]
    again = json.loads(schedule["Target"]["Input"])
    assert again == {**cart, "attempt": 1}
    # and when the schedule puts it back on the queue at 08:00
    response = send(batch(record(again, schedule_time(schedule))))
    # then
    assert failures(response) == []
    (message,) = sent_emails()
    assert message["To"] == ADA_EMAIL
    assert outcomes(aws) == ["deferred", "sent"]


def test_a_fire_with_send_at_waits_for_that_time_then_sends(aws: Aws, send: Invoke):
    """A fire for 09:30 handled at 07:00 Berlin time is scheduled back for 09:30, then sent."""
    # given
    berlin = ZoneInfo("Europe/Berlin")
    given_person(aws, email=ADA_EMAIL, timezone="Europe/Berlin")
    early = datetime(2026, 11, 28, 7, 0, tzinfo=berlin)
    cart = {**fire(at=early), "sendAt": "09:30"}
    # when
    response = send(batch(record(cart, early)))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    assert outcomes(aws) == ["deferred"]
    (schedule,) = schedules(aws)
    nine_thirty = datetime(2026, 11, 28, 9, 30, tzinfo=berlin)
    assert schedule_time(schedule).astimezone(berlin) == nine_thirty
    again = json.loads(schedule["Target"]["Input"])
    assert again == {**cart, "deliverAt": "2026-11-28T08:30:00.000Z"}
    # and when the schedule puts it back on the queue at 09:30
    response = send(batch(record(again, schedule_time(schedule))))
    # then
    assert failures(response) == []
    (message,) = sent_emails()
    assert message["To"] == ADA_EMAIL
    assert outcomes(aws) == ["deferred", "sent"]


def test_a_suppressed_address_gets_nothing(aws: Aws, send: Invoke):
    """An address on the suppression list gets no email, and the fire is recorded as suppressed."""
    # given
    given_person(aws, email=ADA_EMAIL)
    SuppressionStore(aws.dynamodb, aws.table).suppress("email", ADA_EMAIL, "unsubscribed", NOW)
    # when
    response = send(batch(record(fire())))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    assert decisions(aws) == [
        ("abandoned_cart", "suppressed", f"{ADA_EMAIL} is suppressed on email")
    ]


def test_a_person_without_an_email_is_skipped_not_failed(aws: Aws, send: Invoke):
    """A person with no email trait is skipped: nothing sent, no batch failure, no DLQ."""
    # given
    given_person(aws, first_name="Ada")
    # when
    response = send(batch(record(fire())))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    assert dead_letters(aws) == []
    assert decisions(aws) == [("abandoned_cart", "skipped", "no email trait to send to")]


def test_an_email_trait_that_would_inject_a_header_is_skipped(aws: Aws, send: Invoke):
    """An address with a line break (ada@x.io\\nBcc: ...) is not an address: nothing is sent."""
    # given
    given_person(aws, email="ada@example.com\nBcc: everyone@example.com")
    # when
    response = send(batch(record(fire())))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    assert decisions(aws) == [("abandoned_cart", "skipped", "no email trait to send to")]


@pytest.fixture
def broken_triggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A triggers folder whose templates include ``broken``, with a syntax error in its subject."""
    folder = tmp_path / "triggers"
    shutil.copytree(REPO / "triggers" / "templates", folder / "templates")
    (folder / "templates" / "broken.subject.j2").write_text("Your cart {{ items | length \n")
    (folder / "templates" / "broken.html.j2").write_text("<p>cart</p>\n")
    (folder / "templates" / "broken.txt.j2").write_text("cart\n")
    monkeypatch.setenv("NUDGE_TRIGGERS_DIR", str(folder))
    return folder


POISON = {
    "a template with a syntax error": json.dumps(fire(template="broken", fire_id="fire-poison")),
    "not JSON at all": "this is not a fire",
    "JSON cut short": '{"fireId": "fire-cut", "trigger": "abandoned_ca',
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_poison_message_is_dead_lettered_without_blocking_its_batch(
    aws: Aws, broken_triggers: Path, poison: str
):
    """A fire that can never be delivered goes to the DLQ with a reason; its batch-mate is sent."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL)
    good = fire(fire_id="fire-good")
    # when
    response = send(batch(record(poison, message_id="m-poison"), record(good)))
    # then
    assert failures(response) == []
    (dead,) = dead_letters(aws)
    assert dead["Body"] == poison
    assert dead["MessageAttributes"]["reason"]["StringValue"]
    (message,) = sent_emails()
    assert message["X-Nudge-Fire"] == "fire-good"


def test_a_broken_template_is_recorded_as_dead_lettered_with_its_reason(
    aws: Aws, broken_triggers: Path
):
    """The DLQ reason and the recorded decision name the template file that does not parse."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL)
    # when
    send(batch(record(fire(template="broken"))))
    # then
    (dead,) = dead_letters(aws)
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert "broken.subject.j2" in reason
    assert decisions(aws) == [("abandoned_cart", "dead_letter", reason)]


def test_ses_throttling_is_retried_later_and_sends_exactly_once(
    aws: Aws, send: Invoke, monkeypatch: pytest.MonkeyPatch
):
    """SES throttling the first send re-queues it a minute later; the retry sends one email."""
    # given
    given_person(aws, email=ADA_EMAIL)
    client = bootstrap.sesv2_client()
    calls: list[str] = []
    real_send = client.send_email

    def throttled_once(**request: Any) -> Any:
        calls.append(str(request["Destination"]))
        if len(calls) == 1:
            throttled: Any = {
                "Error": {"Code": "TooManyRequestsException", "Message": "rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 429},
            }
            raise ClientError(throttled, "SendEmail")
        return real_send(**request)

    monkeypatch.setattr(client, "send_email", throttled_once)
    cart = fire()
    # when
    first = send(batch(record(cart)))
    (retry,) = requeued(aws)
    later = send(batch(record(retry.fire, NOW + timedelta(seconds=retry.delay))))
    # then
    assert failures(first) == []
    assert failures(later) == []
    assert retry.delay == 60
    assert schedules(aws) == []
    assert len(calls) == 2
    assert len(sent_emails()) == 1
    assert outcomes(aws) == ["retry", "sent"]


@dataclass
class CrashOnMarkSent:
    """Which fires' mark-sent writes crashed (once: the function's next run works)."""

    crashed: list[str] = field(default_factory=list)


@pytest.fixture
def crash_on_mark_sent(monkeypatch: pytest.MonkeyPatch) -> CrashOnMarkSent:
    """ContactStore.save failing on the first write that marks a fire sent (SES has accepted)."""
    crash = CrashOnMarkSent()
    real_save = ContactStore.save

    def save(store: ContactStore, person: PersonId, state: ContactState) -> ContactState:
        marked = [fid for fid, mark in state.fires.items() if mark.startswith("sent@")]
        if marked and not crash.crashed:
            crash.crashed.append(marked[0])
            raise RuntimeError("the function crashed before marking the fire sent")
        return real_save(store, person, state)

    monkeypatch.setattr(ContactStore, "save", save)
    return crash


def test_a_crash_after_ses_accepted_with_no_receipt_yet_waits_for_one(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """SES accepted, then a crash before marking the fire sent, and SES's Send event has not
    reached Feedback by the redelivery 3 minutes later: nothing is sent; the fire goes back
    on the queue, as it was, until 10 minutes after the claim, when a receipt would have come."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    # when
    again = send(batch(record(message["body"], NOW + timedelta(minutes=3), receive_count=2)))
    # then
    assert failures(again) == []
    assert len(sent_emails()) == 1
    ((_, outcome, reason),) = decisions(aws)
    assert outcome == "awaiting_receipt"
    assert "waiting until" in reason
    (waiting,) = requeued(aws)
    body = json.loads(message["body"])
    assert (waiting.fire["fireId"], waiting.fire["attempt"]) == (body["fireId"], 0)
    assert waiting.delay == 7 * 60


def test_an_interrupted_email_with_no_receipt_after_ten_minutes_is_sent_again(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """The residual window: no receipt 10 minutes after the claim and none failed to be
    recorded, so SES never got it, or its event was lost: sent again, two emails at most."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    send(batch(record(message["body"], NOW + timedelta(minutes=3), receive_count=2)))
    # when
    later = send(batch(record(message["body"], NOW + timedelta(minutes=10))))
    # then
    assert failures(later) == []
    assert len(sent_emails()) == 2
    (_, outcome, reason) = decisions(aws)[-1]
    assert outcome == "sent"
    assert reason.endswith("(a retry after an interrupted send)")


def _a_receipt_feedback_could_not_record(aws: Aws) -> None:
    url = aws.environment("Send")["NUDGE_RECEIPT_FAILURES_URL"]
    aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"requestContext": {}}))


def test_an_interrupted_email_waits_while_feedback_fails_to_record_receipts(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """No receipt after 10 minutes, but a SES event waits in Feedback's failure queue and
    may be this email's: not sent again; it looks again in 15 minutes."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    _a_receipt_feedback_could_not_record(aws)
    # when
    later = send(batch(record(message["body"], NOW + timedelta(minutes=12), receive_count=2)))
    # then
    assert failures(later) == []
    assert len(sent_emails()) == 1
    ((_, outcome, reason),) = decisions(aws)
    assert outcome == "awaiting_receipt"
    assert "1 SES receipt(s) Feedback could not record wait in FeedbackFailureQueue" in reason
    assert [r.delay for r in requeued(aws)] == [15 * 60]


def test_an_interrupted_email_is_dead_lettered_after_a_day_of_failed_receipts(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """A day after the claim, with receipts still failing: refused with the reason, to the
    dead-letter queue, and not sent again."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    _a_receipt_feedback_could_not_record(aws)
    send(batch(record(message["body"], NOW + timedelta(minutes=12), receive_count=2)))
    # when
    last = send(batch(record(message["body"], NOW + timedelta(hours=24))))
    # then
    assert failures(last) == []
    assert len(sent_emails()) == 1
    (dead,) = dead_letters(aws)
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert "Redrive FeedbackFailureQueue, then this message" in reason
    assert outcomes(aws)[-1] == "dead_letter"


def test_a_crash_after_ses_accepted_with_its_receipt_is_not_sent_again(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """SES accepted, Send crashed before marking the fire sent, and SES's Send event reached
    Feedback: the redelivery finds the receipt, marks the fire sent and sends nothing more."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    feedback = aws.load_handler("Feedback")
    feedback(_send_event(sent_emails()[0]))
    # when
    again = send(batch(record(message["body"], NOW + timedelta(minutes=3), receive_count=2)))
    # then
    assert failures(again) == []
    assert len(sent_emails()) == 1
    ((_, outcome, reason),) = decisions(aws)
    assert outcome == "duplicate"
    assert "SES accepted it" in reason


def test_a_fire_marked_sent_from_its_receipt_stays_sent(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """After a receipt closed the crash, a third delivery of the fire is a plain duplicate."""
    # given
    given_person(aws, email=ADA_EMAIL)
    message = record(fire(), message_id="m-crash")
    send(batch(message))
    aws.load_handler("Feedback")(_send_event(sent_emails()[0]))
    send(batch(record(message["body"], NOW + timedelta(minutes=3), receive_count=2)))
    # when
    third = send(batch(record(message["body"], NOW + timedelta(minutes=6), receive_count=3)))
    # then
    assert failures(third) == []
    assert len(sent_emails()) == 1
    assert [outcome for _, outcome, _ in decisions(aws)] == ["duplicate", "duplicate"]


def _send_event(accepted: EmailMessage) -> dict[str, Any]:
    """The EventBridge event SES publishes for an accepted message: its headers included."""
    return {
        "source": "aws.ses",
        "detail-type": "Email Sent",
        "time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {
            "eventType": "Send",
            "mail": {
                "messageId": "ses-accepted",
                "headers": [{"name": k, "value": str(v)} for k, v in accepted.items()],
            },
            "send": {},
        },
    }


def test_a_first_delivery_meeting_a_fresh_claim_waits_and_sends_nothing(
    aws: Aws, send: Invoke, crash_on_mark_sent: CrashOnMarkSent
):
    """A copy delivered for the first time while another delivery holds the claim is a batch
    item failure (in flight) and sends nothing."""
    # given
    given_person(aws, email=ADA_EMAIL)
    body = json.dumps(fire())
    send(batch(record(body, message_id="m-first")))
    # when
    response = send(batch(record(body, NOW + timedelta(seconds=5), message_id="m-copy")))
    # then
    assert failures(response) == ["m-copy"]
    assert len(sent_emails()) == 1
    assert outcomes(aws) == ["in_flight"]


# ---- webhooks ------------------------------------------------------------------------------


@pytest.fixture
def crm(request: pytest.FixtureRequest, aws: Aws) -> Iterator[Receiver]:
    """A receiver answering by its script (the test's parameter), then 200, with the stack's
    CrmWebhookUrl pointing at it."""
    script = list(getattr(request, "param", []))
    receiver = Receiver(script=script, otherwise=200, path="/crm/hook").start()
    aws.template = load_template(
        REPO / "template.yaml", {**PARAMETERS, "CrmWebhookUrl": receiver.url}
    )
    yield receiver
    receiver.stop()


def vip_fire(at: datetime) -> dict[str, Any]:
    checkout = {"event": "Checkout Started", "timestamp": at.isoformat()}
    return fire("vip_checkout_call", template="vip_call", channel="webhook", event=checkout, at=at)


def test_a_vip_webhook_arrives_signed(aws: Aws, crm: Receiver):
    """A webhook fire reaches the CRM as the rendered JSON, signed per Standard Webhooks."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, name="Ada Lovelace", tier="vip")
    now = datetime.now(UTC).replace(microsecond=0)
    vip = vip_fire(now)
    # when
    response = send(batch(record(vip, now)))
    # then
    assert failures(response) == []
    (request,) = crm.received()
    assert request.status == 200
    assert request.headers["webhook-id"] == vip["fireId"]
    assert Webhook(WEBHOOK_SECRET).verify(request.body, request.headers) == {
        "type": "task",
        "subject": "Call VIP Ada Lovelace about an unfinished checkout",
        "email": ADA_EMAIL,
        "userId": "ada",
        "checkoutStartedAt": now.isoformat(),
    }
    assert outcomes(aws) == ["sent"]


def test_a_webhook_decided_days_ahead_is_signed_at_the_real_time(aws: Aws, crm: Receiver):
    """A fire decided for a business time three days ahead (the local stack's virtual clock)
    is signed with the real time of the attempt, so the receiver's own clock accepts it."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, name="Ada Lovelace", tier="vip")
    business = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    vip = vip_fire(business)
    before = int(datetime.now(UTC).timestamp())
    # when
    response = send(batch(record(vip, business)))
    # then
    after = int(datetime.now(UTC).timestamp())
    assert failures(response) == []
    (request,) = crm.received()
    assert request.status == 200
    assert before <= int(request.headers["webhook-timestamp"]) <= after
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    assert payload["checkoutStartedAt"] == business.isoformat()
    assert outcomes(aws) == ["sent"]


@pytest.mark.parametrize("crm", [[500, 500, 200]], indirect=True)
def test_a_failing_crm_gets_the_webhook_once_in_the_end_with_one_id(aws: Aws, crm: Receiver):
    """A CRM answering 500 twice then 200 gets the same webhook-id each time, delivered once."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, name="Ada Lovelace", tier="vip")
    start = datetime.now(UTC).replace(microsecond=0)
    before = int(start.timestamp())
    vip = vip_fire(start)
    at = start
    # when
    responses = [send(batch(record(vip, at)))]
    for _ in range(2):
        retry = requeued(aws)[-1]
        at += timedelta(seconds=retry.delay)
        responses.append(send(batch(record(retry.fire, at))))
    # then
    assert [failures(response) for response in responses] == [[], [], []]
    received = crm.received()
    assert [request.status for request in received] == [500, 500, 200]
    assert {request.headers["webhook-id"] for request in received} == {vip["fireId"]}
    # The retries are decided 5 s and 5 min later, but each is signed when it is really sent.
    stamps = [int(request.headers["webhook-timestamp"]) for request in received]
    assert before <= stamps[0] <= stamps[1] <= stamps[2] <= int(datetime.now(UTC).timestamp())
    last = received[-1]
    assert Webhook(WEBHOOK_SECRET).verify(last.body, last.headers)["userId"] == "ada"
    assert [(r.fire["attempt"], r.delay) for r in requeued(aws)] == [(1, 5), (2, 300)]
    assert schedules(aws) == []
    assert outcomes(aws) == ["retry", "retry", "sent"]


@pytest.mark.parametrize("crm", [[500]], indirect=True)
def test_a_retry_due_later_than_sqs_can_delay_is_a_schedule(aws: Aws, crm: Receiver):
    """The third retry, 30 minutes on, is beyond SQS's 15-minute delay: a one-time schedule
    puts the fire back on the send queue then."""
    # given
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, name="Ada Lovelace", tier="vip")
    now = datetime.now(UTC).replace(microsecond=0)
    third = {**vip_fire(now), "attempt": 2}
    # when
    response = send(batch(record(third, now)))
    # then
    assert failures(response) == []
    assert requeued(aws) == []
    (schedule,) = schedules(aws)
    assert schedule_time(schedule) == now + timedelta(minutes=30)
    assert schedule["Target"]["Arn"] == aws.environment("Send")["NUDGE_SEND_QUEUE_ARN"]
    assert json.loads(schedule["Target"]["Input"]) == {**third, "attempt": 3}
    assert outcomes(aws) == ["retry"]


def test_a_delayed_fire_is_decided_when_it_is_handed_out_not_when_it_was_sent(
    aws: Aws, send: Invoke
):
    """A fire re-queued with DelaySeconds keeps the time it was sent; the time it was first
    handed out, after its delay, is the one its delivery is decided for."""
    # given
    berlin = ZoneInfo("Europe/Berlin")
    given_person(aws, email=ADA_EMAIL, timezone="Europe/Berlin")
    sent = datetime(2026, 11, 28, 7, 59, 30, tzinfo=berlin)  # still quiet hours
    handed_out = sent + timedelta(minutes=1)  # 08:00:30, the day has begun
    message = record(fire(at=sent), sent)
    message["attributes"]["ApproximateFirstReceiveTimestamp"] = str(
        int(handed_out.timestamp() * 1000)
    )
    # when
    response = send(batch(message))
    # then
    assert failures(response) == []
    assert len(sent_emails()) == 1
    assert outcomes(aws) == ["sent"]


def test_records_the_function_has_no_time_left_for_are_handed_back_untouched(aws: Aws):
    """With too little time left for a slow attempt, Send puts each fire back on the queue
    as it was (same attempt), sends nothing and reports no failure."""
    # given
    given_person(aws, email=ADA_EMAIL)
    hurried = aws.load_handler("Send", timeout=4)
    late = fire()
    message = record(late, message_id="m-late")
    # when
    response = hurried(batch(message))
    # then
    assert failures(response) == []
    assert sent_emails() == []
    (again,) = requeued(aws)
    assert (again.fire, again.delay) == (late, 0)
    assert decisions(aws) == []


# ---- signing secrets, read from SSM ----------------------------------------------------

NEW_TRACKING_SECRET = "a-new-tracking-secret-4f1c"
NEW_WEBHOOK_SECRET = "whsec_bmV3LXdlYmhvb2stc2lnbmluZy1zZWNyZXQ="


def store_secret(aws: Aws, template_parameter: str, value: str) -> None:
    """The operator's put-parameter: the SecureString the template parameter names."""
    name = aws.template.parameters[template_parameter]
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def test_email_links_are_signed_with_the_first_secret_of_the_parameter(aws: Aws):
    """During a rotation ("new,old" in the SSM parameter) new emails carry links signed
    with the new secret, which Track verifies with the new secret alone once the old is dropped."""
    # given
    store_secret(aws, "TrackingSecretParameter", f"{NEW_TRACKING_SECRET},{TRACKING_SECRET}")
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, first_name="Ada")
    # when
    send(batch(record(fire(fire_id="fire-rotated"))))
    # then
    (message,) = sent_emails()
    token = urlsplit(str(message["List-Unsubscribe"]).strip("<>")).path.rsplit("/", 1)[1]
    assert verify_token(token, NEW_TRACKING_SECRET.encode())["f"] == "fire-rotated"


@pytest.mark.parametrize("receiver_holds", [NEW_WEBHOOK_SECRET, WEBHOOK_SECRET])
def test_during_a_webhook_secret_rotation_the_receiver_verifies_with_either(
    aws: Aws, crm: Receiver, receiver_holds: str
):
    """With "new,old" in the webhook secret parameter, Send signs every webhook with both,
    so the CRM verifies it whether it has switched to the new secret yet or not."""
    # given
    store_secret(aws, "WebhookSecretParameter", f"{NEW_WEBHOOK_SECRET},{WEBHOOK_SECRET}")
    send = aws.load_handler("Send")
    given_person(aws, email=ADA_EMAIL, name="Ada Lovelace", tier="vip")
    now = datetime.now(UTC).replace(microsecond=0)
    # when
    send(batch(record(vip_fire(now), now)))
    # then
    (request,) = crm.received()
    assert request.status == 200
    assert Webhook(receiver_holds).verify(request.body, request.headers)["userId"] == "ada"


def test_send_refuses_to_start_when_the_tracking_secret_parameter_is_missing(aws: Aws):
    """No SecureString under the name the template gives: Send stops at cold start, naming it."""
    # given
    name = aws.template.parameters["TrackingSecretParameter"]
    boto3.client("ssm").delete_parameter(Name=name)
    # when / then
    with pytest.raises(ConfigError, match=f"the SSM parameter {name} does not exist"):
        aws.load_handler("Send")
