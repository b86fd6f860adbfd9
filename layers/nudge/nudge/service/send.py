"""Send: deliver a fire once, to the right address, at a decent hour, or say why not.

Order of work, and why:
1. find the address and check suppression; render the whole message, so a broken
   template never uses up anyone's quota (it goes to the DLQ);
2. claim the send in the person's contact record (caps, cooldown, quiet hours and
   duplicates decided together, written with a version check);
3. deliver; 4. mark it sent.
A crash between 3 and 4 leaves the fire claimed: the queue's redelivery cannot tell
whether SES got the email, so it looks for SES's receipt first (its Send event, recorded
by Feedback) and sends again only without one, once a receipt would have arrived and while
none has failed to be recorded (domain/interrupted.py, docs/delivery.md).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.engagement import BEST_HOUR_FALLBACK, BEST_HOUR_WITHIN, best_hour
from nudge.domain.experiments.counts import NO_EXPERIMENT, CountedUnder
from nudge.domain.in_app import InAppMessage, frame_size_problem
from nudge.domain.interrupted import AwaitReceipt, after_interruption
from nudge.domain.messages import (
    FIRE_HEADER,
    FIRE_TAG,
    FireMessage,
    InAppDisplay,
    InvalidFireMessage,
)
from nudge.domain.outcomes import DeliveryOutcome
from nudge.domain.person import PersonId
from nudge.domain.policy import (
    Claimed,
    ContactState,
    Deferred,
    Denied,
    InFlight,
    Policy,
    decide,
    mark_failed,
    mark_interrupted,
    mark_sent,
)
from nudge.domain.profile import Profile
from nudge.domain.render import Renderer, RenderError, render_context
from nudge.domain.send_time import PersonZone, next_clock_time, zone_of
from nudge.domain.timefmt import iso
from nudge.domain.triggers.actions import Decision  # the data alone, not the engine
from nudge.service.delivery_ports import (
    Mailer,
    Outgoing,
    ReceiptFailures,
    Receipts,
    WebhookPoster,
)
from nudge.service.in_app import InAppService
from nudge.service.ports import (
    MAX_DELAY,
    AudienceHours,
    ContactRecords,
    DecisionRecords,
    ExperimentRecords,
    FireQueue,
    Forbidden,
    ProfileReader,
    Refused,
    Scheduler,
    SuppressionList,
    Unavailable,
    VersionConflict,
)

__all__ = ["Delivery", "Poison", "SendService", "SendSettings", "queue_delay"]

# Webhook retries after a failure: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h; then the DLQ.
# A retry due within SQS's longest delay (15 min) goes back on the send queue with
# DelaySeconds, so 5 s means 5 s; a later one is a one-time schedule (Scheduler needs
# about a minute of lead time, which is nothing next to 30 min). Both outlive the process.
WEBHOOK_BACKOFF = (5, 300, 1800, 7200, 18000, 36000)
# A fire that names no expiry (written before in-app fires carried one) waits a day.
IN_APP_EXPIRES_SECONDS = 86_400
# SES throttling or a 5xx: a minute, then longer; after the last, the DLQ.
EMAIL_BACKOFF = (60, 300, 1800, 7200, 18000)
_CONFLICT_RETRIES = 5
_UNMARKED = (
    f"; the contact record was not marked {{mark}}: {_CONFLICT_RETRIES} version conflicts in a"
    " row (today's counts may be short by this fire)"
)


_NO_ADDRESS = {
    "email": "no email trait to send to",
    "webhook": "no webhook configured (CrmWebhookUrl and WebhookSecret)",
    "in_app": "no WebSocket API configured (NUDGE_SOCKET_ENDPOINT)",
}
# Suppression lists hold addresses a person asked not to be sent to (bounces, complaints,
# unsubscribes); a message on a page the person has open reaches no address.
_SUPPRESSIBLE = frozenset({"email", "webhook"})


class Poison(Exception):
    """This fire can never be delivered as it is (a template error, say): DLQ it."""


@dataclass(frozen=True)
class SendSettings:
    from_email: str
    public_url: str
    tracking_key: bytes
    crm_webhook_url: str | None
    send_queue_arn: str
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class Delivery:
    outcome: DeliveryOutcome
    reason: str
    retry_in: float | None = None  # seconds, when delivery should be tried again
    waiting_until: str | None = None  # the `send.at` moment the fire now waits for
    attempted: bool = True  # False: put back as it is, its attempts not counted


class SendService:
    def __init__(
        self,
        *,
        events: ProfileReader,
        contacts: ContactRecords,
        suppression: SuppressionList,
        receipts: Receipts,
        failed_receipts: ReceiptFailures,
        decisions: DecisionRecords,
        renderer: Renderer,
        email: Mailer,
        webhook: WebhookPoster | None,
        reminders: Scheduler,
        queue: FireQueue,
        experiments: ExperimentRecords,
        settings: SendSettings,
        in_app: InAppService | None = None,
        audience: AudienceHours | None = None,
    ) -> None:
        self._events = events
        self._contacts = contacts
        self._suppression = suppression
        self._receipts = receipts
        self._failed_receipts = failed_receipts
        self._decisions = decisions
        self._renderer = renderer
        self._email = email
        self._webhook = webhook
        self._reminders = reminders
        self._queue = queue
        self._experiments = experiments
        self._settings = settings
        self._in_app = in_app
        self._audience = audience

    def deliver(self, fire: FireMessage, now: datetime, *, redelivered: bool = False) -> Delivery:
        person = fire.person
        # A profile expired by now (not deleted by TTL yet) is none: no address, no zone.
        profile = self._events.load_profiles([person], now).get(person) or Profile(person=person)
        delivery = self._deliver(fire, profile, now, redelivered)
        self._record(fire, delivery, now)
        if delivery.retry_in is not None:
            # A wait for `send.at` or for a receipt is no attempt; a quiet-hours deferral or
            # a retry is one.
            waits = delivery.waiting_until
            again = fire.waiting_until(waits) if waits is not None else fire.retried()
            self._requeue(fire, now, delivery.retry_in, again if delivery.attempted else fire)
        return delivery

    def _deliver(
        self, fire: FireMessage, profile: Profile, now: datetime, redelivered: bool
    ) -> Delivery:
        channel = fire.channel
        where = zone_of(
            profile.traits.get("timezone") or fire.timezone,
            self._settings.policy.default_timezone,
        )
        waiting = self._wait_for_send_time(fire, profile, where, now)
        if waiting is not None:
            return waiting
        address = self._address(channel, profile)
        if address is None:
            return Delivery(
                "skipped", _NO_ADDRESS.get(channel, f"the {channel} channel is not built yet")
            )
        if channel in _SUPPRESSIBLE and self._suppression.is_suppressed(channel, address):
            return Delivery("suppressed", f"{address} is suppressed on {channel}")
        message = self._render(fire, profile, address, now)
        if isinstance(message, InAppMessage) and message.expires_at <= now:
            return Delivery("skipped", f"expired at {iso(message.expires_at)} before delivery")
        zone = where.zone
        for _ in range(_CONFLICT_RETRIES):
            state = self._contacts.load(fire.person)
            verdict = decide(
                state,
                fire_id=fire.fire_id,
                trigger=fire.cap_key,
                channel=channel,
                now=now,
                zone=zone,
                policy=self._settings.policy,
                redelivered=redelivered,
            )
            if isinstance(verdict, Denied):
                return Delivery(verdict.outcome, verdict.reason)
            if isinstance(verdict, Deferred):
                return Delivery("deferred", verdict.reason, (verdict.until - now).total_seconds())
            if isinstance(verdict, InFlight):
                return Delivery("in_flight", verdict.reason)
            if verdict.interrupted_at is not None and channel == "email":
                settled = self._after_interruption(fire, verdict.interrupted_at, now)
                if settled is not None:
                    return settled
            try:
                claimed = self._contacts.save(fire.person, verdict.state)
            except VersionConflict:
                continue
            return self._send_claimed(fire, channel, address, message, claimed, verdict, now)
        return Delivery("retry", "the contact record kept changing; trying again", 5)

    def _send_claimed(
        self,
        fire: FireMessage,
        channel: str,
        address: str,
        message: Any,
        claimed: Any,
        verdict: Claimed,
        now: datetime,
    ) -> Delivery:
        if channel == "email":
            accepted = self._accepted_before(fire, verdict, now)
            if accepted is not None:
                return accepted
            try:
                provider_id = self._email.send(message, now.timestamp())
            except Unavailable as error:
                note = self._mark_failed(fire.person, fire.fire_id, now)
                if fire.attempt >= len(EMAIL_BACKOFF):
                    raise Poison(f"SES kept refusing: {error}{note}") from None
                return Delivery("retry", f"{error}{note}", EMAIL_BACKOFF[fire.attempt])
            except (Refused, Forbidden) as error:
                # SES will not take this message (rejected, sending paused, an unverified
                # sender): retrying resends nothing useful, so it goes to the DLQ with why.
                note = self._mark_failed(fire.person, fire.fire_id, now)
                raise Poison(f"SES refused it: {error}{note}") from None
            reason = f"sent to {address} (SES {provider_id})"
        elif channel == "in_app":
            assert self._in_app is not None
            try:
                reason = self._in_app.deliver(fire.person, message, now)
            except Unavailable as error:
                note = self._mark_failed(fire.person, fire.fire_id, now)
                if fire.attempt >= len(EMAIL_BACKOFF):
                    raise Poison(f"in-app delivery kept failing: {error}{note}") from None
                return Delivery("retry", f"{error}{note}", EMAIL_BACKOFF[fire.attempt])
        else:
            assert self._webhook is not None
            result = self._webhook.send(address, fire.fire_id, message)
            if not result.delivered:
                if result.retryable and fire.attempt < len(WEBHOOK_BACKOFF):
                    note = self._mark_failed(fire.person, fire.fire_id, now)
                    return Delivery(
                        "retry", f"{result.reason}{note}", WEBHOOK_BACKOFF[fire.attempt]
                    )
                raise Poison(f"webhook not delivered: {result.reason}")
            reason = f"webhook delivered to {address} ({result.status})"
        if verdict.retry:
            reason += " (a retry after an interrupted send)"
        reason += self._mark_sent(fire, now)
        return Delivery("sent", reason)

    def _accepted_before(
        self, fire: FireMessage, verdict: Claimed, now: datetime
    ) -> Delivery | None:
        """On a retry, SES's receipt (its Send event, recorded by Feedback) tells an attempt
        that died after SES accepted from one that died before: only the second resends.
        An interrupted claim's receipt was looked for already (``_after_interruption``)."""
        if not verdict.retry or verdict.interrupted_at is not None:
            return None
        return self._accepted(fire, now)

    def _accepted(self, fire: FireMessage, now: datetime) -> Delivery | None:
        receipt = self._receipts.find(fire.fire_id)
        if receipt is None:
            return None
        note = self._mark_sent(fire, now)
        return Delivery(
            "duplicate",
            f"SES accepted it at {receipt.at} (SES {receipt.message_id}) before the last"
            f" attempt was interrupted: not sent again{note}",
        )

    def _after_interruption(
        self, fire: FireMessage, claimed_at: datetime, now: datetime
    ) -> Delivery | None:
        """An email whose last attempt died holding its claim: not sent again if SES's
        receipt shows it accepted it; put back to wait while the receipt may still come or
        may be among those Feedback failed to record; None to send it again."""
        accepted = self._accepted(fire, now)
        if accepted is not None:
            return accepted
        verdict = after_interruption(claimed_at, now, self._failed_receipts.waiting)
        if verdict is None:
            return None
        if not isinstance(verdict, AwaitReceipt):
            raise Poison(verdict.reason)
        if self._mark(fire.person, lambda state: mark_interrupted(state, fire.fire_id, claimed_at)):
            wait = (verdict.until - now).total_seconds()
            return Delivery("awaiting_receipt", verdict.reason, wait, attempted=False)
        return Delivery("retry", "the contact record kept changing; trying again", 5)

    def _mark_sent(self, fire: FireMessage, now: datetime) -> str:
        """Counts the fire sent for the report, then marks it sent in the contact record;
        returns what the decision's reason must add if it could not mark it. Counting comes
        first and is idempotent: if it fails, the redelivered fire finds the send claimed
        and not marked, checks SES's receipt (a webhook goes again, with the same
        ``webhook-id`` for the receiver to drop) and counts then."""
        under = CountedUnder(
            fire.trigger, fire.experiment or NO_EXPERIMENT, fire.variant or NO_EXPERIMENT
        )
        self._experiments.count_fire(fire.fire_id, "sent", under, now)
        if self._mark(fire.person, lambda state: mark_sent(state, fire.fire_id, fire.cap_key, now)):
            return ""
        return _UNMARKED.format(mark="sent")

    def _mark_failed(self, person: PersonId, fire_id: str, now: datetime) -> str:
        """Releases the claim, so the requeued attempt is not taken for a concurrent copy;
        returns what the decision's reason must add if it could not."""
        if self._mark(person, lambda state: mark_failed(state, fire_id, now)):
            return ""
        return _UNMARKED.format(mark="failed")

    def _mark(self, person: PersonId, change: Callable[[ContactState], ContactState]) -> bool:
        """Applies ``change`` to the contact record; False when other writers kept winning
        (the caller says so in the decision it records: nothing is given up silently)."""
        for _ in range(_CONFLICT_RETRIES):
            state = self._contacts.load(person)
            changed = change(state)
            if changed == state:  # already so (a copy marked it, or a later look): no write
                return True
            try:
                self._contacts.save(person, changed)
                return True
            except VersionConflict:
                continue
        return False

    def _address(self, channel: str, profile: Profile) -> str | None:
        if channel == "email":
            email = profile.traits.get("email")
            if not isinstance(email, str):
                return None
            email = email.strip()
            # One address, nothing that could become a second header line or recipient.
            if "@" not in email or any(c.isspace() or ord(c) < 32 or c in ",;<>" for c in email):
                return None
            return email
        if channel == "webhook" and self._webhook is not None:
            return self._settings.crm_webhook_url  # None too when no URL is configured
        if channel == "in_app" and self._in_app is not None:
            return str(profile.person)  # the person's open pages, wherever they are
        return None

    def _render(self, fire: FireMessage, profile: Profile, address: str, now: datetime) -> Any:
        settings = self._settings
        context = render_context(
            fire, profile, address, settings.public_url, settings.tracking_key, sent_at=now
        )
        try:
            if fire.channel == "email":
                content = self._renderer.email(fire.template, context)
                return Outgoing(
                    sender=self._settings.from_email,
                    to=address,
                    content=content,
                    unsubscribe_url=context["links"]["unsubscribe"],
                    headers={
                        "X-Nudge-Trigger": fire.trigger,
                        FIRE_HEADER: fire.fire_id,
                        **({"X-Nudge-Variant": fire.variant} if fire.variant else {}),
                    },
                    tags={FIRE_TAG: fire.fire_id},
                )
            if fire.channel == "in_app":
                return self._in_app_message(fire, context)
            return self._renderer.webhook(fire.template, context)
        except RenderError as error:
            raise Poison(error.reason) from None

    def _in_app_message(self, fire: FireMessage, context: dict[str, Any]) -> InAppMessage:
        """The message as the page gets it; refused whole when API Gateway would refuse
        to post it (over 128 KB), as a template error is: it goes to the DLQ, with why."""
        fired = datetime.fromisoformat(fire.fired_at)
        message = InAppMessage(
            fire_id=fire.fire_id,
            trigger=fire.trigger,
            html=self._renderer.in_app(fire.template, context),
            display=fire.display or InAppDisplay(),
            expires_at=fired + timedelta(seconds=fire.expires or IN_APP_EXPIRES_SECONDS),
        )
        problem = frame_size_problem(message.frame())
        if problem is not None:
            raise RenderError(problem, file=f"{fire.template}.in_app.html.j2")
        return message

    def _wait_for_send_time(
        self, fire: FireMessage, profile: Profile, where: PersonZone, now: datetime
    ) -> Delivery | None:
        """A deferral until the fire's `send.at` on the person's clock (a time of day, or
        their best hour), or None when it is due. Worked out once, on the first delivery,
        and carried by the waiting fire: a later change of the person's timezone or habits
        does not move a message already waiting."""
        if fire.send_at is None:
            return None
        if fire.deliver_at is not None:
            due = datetime.fromisoformat(fire.deliver_at)
            return _waiting(due, now, f"waits for {fire.send_at}, until {iso(due)}")
        note = f" ({where.note})" if where.note else ""
        if fire.send_at == "best":
            best = best_hour(
                now,
                profile.traits.get("timezone") or fire.timezone,
                self._settings.policy.default_timezone,
                profile.engaged_hours,
                self._audience.hours(now) if self._audience is not None else {},
                timedelta(seconds=fire.send_within) if fire.send_within else BEST_HOUR_WITHIN,
                fire.send_fallback or BEST_HOUR_FALLBACK,
            )
            why = f"waits for the {best.reason}, until {iso(best.at)}{note}"
            return _waiting(best.at, now, why)
        due = next_clock_time(now, where.zone, fire.send_at)
        why = f"waits for {fire.send_at} in {where.zone.key}, until {iso(due)}{note}"
        return _waiting(due, now, why)

    def _requeue(
        self, fire: FireMessage, now: datetime, seconds: float, again: FireMessage
    ) -> None:
        """Later, not lost: ``again`` (the fire one attempt along, or waiting for its
        `send.at`) goes back on the send queue, delayed by SQS itself when that is soon
        enough, else by a one-time schedule that puts it there when due. The schedule's name
        comes from the fire and what it waits for, so a redelivered copy arms the same one."""
        delay = queue_delay(seconds)
        if delay is not None:
            self._queue.send(again, delay_seconds=delay)
            return
        due = now + timedelta(seconds=seconds)
        waits_for = again.deliver_at if again.attempt == fire.attempt else again.attempt
        digest = hashlib.sha256(f"{fire.fire_id}|{waits_for}".encode()).hexdigest()[:24]
        self._reminders.arm(
            f"send-{digest}", due, self._settings.send_queue_arn, again.to_record(), now
        )

    def hand_back(self, fire: FireMessage) -> None:
        """Puts a fire back on the queue untouched, for a later invocation: this one has no
        time left for it. Not a retry (its attempt stays), and a copy of it is harmless:
        the contact record lets one delivery through."""
        self._queue.send(fire)

    @property
    def longest_attempt(self) -> float:
        """The most one delivery can wait on the network: a webhook's whole timeout."""
        return self._webhook.timeout if self._webhook is not None else 0.0

    def record_dead_letter(self, fire: FireMessage, reason: str, now: datetime) -> None:
        self._record(fire, Delivery("dead_letter", reason), now)

    def _record(self, fire: FireMessage, delivery: Delivery, now: datetime) -> None:
        decision = Decision(
            trigger=fire.trigger,
            person=fire.person,
            outcome=delivery.outcome,
            reason=delivery.reason,
            at=now,
            occurrence=str(fire.occurrence),
            arm=fire.variant,  # delivery's records carry the arm too, as the engine's do
        )
        self._decisions.save_decisions([decision])


def queue_delay(seconds: float) -> int | None:
    """The DelaySeconds that brings a fire back after ``seconds`` (rounded up: never early),
    or None when that is beyond SQS's 15 minutes and a schedule must do it."""
    delay = math.ceil(max(seconds, 0))
    return delay if delay <= MAX_DELAY else None


def parse_fire(body: str) -> FireMessage:
    """The fire a message carries; Poison when it is not one (never delivered as it is)."""
    try:
        return FireMessage.from_json(body)
    except InvalidFireMessage as error:
        raise Poison(f"not a fire: {error}") from None


def _waiting(due: datetime, now: datetime, why: str) -> Delivery | None:
    if due <= now:
        return None
    return Delivery("deferred", why, (due - now).total_seconds(), waiting_until=iso(due))
