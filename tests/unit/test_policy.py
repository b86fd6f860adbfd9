"""The contact policy: caps, cooldowns, quiet hours in the person's zone, duplicates, claims."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudge.domain.policy import (
    Claimed,
    ContactState,
    Deferred,
    Denied,
    InFlight,
    Policy,
    decide,
    mark_interrupted,
    mark_sent,
    person_zone,
)

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
POLICY = Policy(
    per_trigger_per_day=1,
    per_channel_per_day={"email": 3},
    quiet_start=time(21, 0),
    quiet_end=time(8, 0),
)


def _decide(state: ContactState, fire: str = "f1", trigger: str = "cart", **overrides: object):
    arguments = {"now": NOON, "zone": UTC_ZONE, "policy": POLICY, "channel": "email"}
    arguments.update(overrides)
    return decide(state, fire_id=fire, trigger=trigger, **arguments)  # type: ignore[arg-type]


def _sent(state: ContactState, fire: str, trigger: str, at: datetime = NOON) -> ContactState:
    verdict = _decide(state, fire, trigger, now=at)
    assert isinstance(verdict, Claimed)
    return mark_sent(verdict.state, fire, trigger, at)


def test_a_first_fire_is_claimed_and_counted() -> None:
    """A person with no history may be sent to; the claim counts toward today's caps."""
    # given
    state = ContactState()

    # when
    verdict = _decide(state)

    # then
    assert isinstance(verdict, Claimed)
    assert verdict.state.per_channel == {"email": 1}
    assert verdict.state.per_trigger == {"cart": 1}
    assert verdict.state.fires["f1"].startswith("claimed@")


def test_a_fire_already_sent_is_a_duplicate() -> None:
    """The same fire delivered twice by the queue is sent once."""
    # given
    state = _sent(ContactState(), "f1", "cart")

    # when
    verdict = _decide(state)

    # then
    assert isinstance(verdict, Denied)
    assert verdict.outcome == "duplicate"


def test_a_claim_seen_on_first_delivery_means_another_copy_is_sending() -> None:
    """A concurrent copy of the message waits instead of sending too."""
    # given
    claimed = _decide(ContactState())
    assert isinstance(claimed, Claimed)

    # when
    verdict = _decide(claimed.state, redelivered=False)

    # then
    assert isinstance(verdict, InFlight)


def test_a_claim_seen_on_redelivery_is_retried_without_counting_again() -> None:
    """An attempt that died after claiming is sent again, and its quota is not counted twice."""
    # given
    claimed = _decide(ContactState())
    assert isinstance(claimed, Claimed)

    # when
    verdict = _decide(claimed.state, redelivered=True)

    # then
    assert isinstance(verdict, Claimed)
    assert verdict.retry is True
    assert verdict.state.per_channel == {"email": 1}


def test_a_claim_seen_on_redelivery_says_when_the_dead_attempt_claimed_it() -> None:
    """The redelivery learns when the interrupted attempt claimed the send: SES may have
    accepted its email, and how long ago tells whether a receipt would be in by now."""
    # given
    claimed = _decide(ContactState())
    assert isinstance(claimed, Claimed)

    # when
    verdict = _decide(claimed.state, now=NOON + timedelta(minutes=3), redelivered=True)

    # then
    assert isinstance(verdict, Claimed)
    assert verdict.interrupted_at == NOON


def test_a_fire_waiting_for_its_receipt_keeps_the_claims_time_on_a_new_copy() -> None:
    """The copy put back to wait for a receipt is a new message (not a redelivery): it is
    not taken for a concurrent copy, and the wait still runs from the first claim."""
    # given
    waiting = mark_interrupted(ContactState(), "f1", NOON)

    # when
    verdict = _decide(waiting, now=NOON + timedelta(minutes=10))

    # then
    assert isinstance(verdict, Claimed)
    assert (verdict.retry, verdict.interrupted_at) == (True, NOON)


def test_a_fire_sent_meanwhile_is_not_marked_interrupted() -> None:
    """A copy that sent the fire while another waited for its receipt: sent stands, so no
    later copy sends it again."""
    # given
    sent = _sent(ContactState(), "f1", "cart")

    # when
    state = mark_interrupted(sent, "f1", NOON - timedelta(minutes=5))

    # then
    assert state.fires["f1"].startswith("sent@")


def test_a_first_claim_is_no_interrupted_attempt() -> None:
    """A fire nobody claimed before has no dead attempt to wait for."""
    # when
    verdict = _decide(ContactState())

    # then
    assert isinstance(verdict, Claimed)
    assert verdict.interrupted_at is None


def test_the_per_trigger_cap_allows_one_a_day() -> None:
    """Five abandoned carts in a day give one email."""
    # given
    state = _sent(ContactState(), "f1", "cart")

    # when
    verdict = _decide(state, fire="f2")

    # then
    assert isinstance(verdict, Denied)
    assert verdict.outcome == "capped"
    assert "cart cap of 1" in verdict.reason


def test_the_channel_cap_stops_the_fourth_email_of_the_day() -> None:
    """No one gets more than three emails a day, whatever the triggers."""
    # given
    state = ContactState()
    for number, trigger in enumerate(["a", "b", "c"]):
        state = _sent(state, f"f{number}", trigger)

    # when
    verdict = _decide(state, fire="f9", trigger="d")

    # then
    assert isinstance(verdict, Denied)
    assert "email cap of 3" in verdict.reason


def test_counters_start_again_on_the_persons_next_day() -> None:
    """Caps are per local day: tomorrow the same trigger may send again."""
    # given
    state = _sent(ContactState(), "f1", "cart")

    # when
    verdict = _decide(state, fire="f2", now=NOON + timedelta(days=1))

    # then
    assert isinstance(verdict, Claimed)


def test_a_cooldown_holds_across_days() -> None:
    """A cooldown longer than a day still applies after the counters reset."""
    # given
    policy = Policy(cooldown=timedelta(days=3))
    state = _sent(ContactState(), "f1", "cart")

    # when
    verdict = _decide(state, fire="f2", now=NOON + timedelta(days=2), policy=policy)

    # then
    assert isinstance(verdict, Denied)
    assert verdict.outcome == "cooldown"


def test_quiet_hours_defer_to_their_end_in_the_persons_zone() -> None:
    """22:30 in Berlin is quiet: the email is deferred to 08:00 Berlin time, not dropped."""
    # given
    berlin = ZoneInfo("Europe/Berlin")
    late = datetime(2026, 11, 28, 22, 30, tzinfo=berlin)

    # when
    verdict = _decide(ContactState(), now=late.astimezone(UTC), zone=berlin)

    # then
    assert isinstance(verdict, Deferred)
    assert verdict.until == datetime(2026, 11, 29, 8, 0, tzinfo=berlin)


def test_early_morning_is_quiet_until_eight_the_same_day() -> None:
    """06:00 local defers to 08:00 that morning."""
    # given
    tokyo = ZoneInfo("Asia/Tokyo")
    early = datetime(2026, 11, 28, 6, 0, tzinfo=tokyo)

    # when
    verdict = _decide(ContactState(), now=early.astimezone(UTC), zone=tokyo)

    # then
    assert isinstance(verdict, Deferred)
    assert verdict.until == datetime(2026, 11, 28, 8, 0, tzinfo=tokyo)


def test_webhooks_ignore_quiet_hours() -> None:
    """A CRM webhook is not a message to a person: quiet hours do not hold it back."""
    # given
    night = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)

    # when
    verdict = _decide(ContactState(), now=night, channel="webhook")

    # then
    assert isinstance(verdict, Claimed)


def test_an_unknown_timezone_falls_back_to_the_default() -> None:
    """A trait naming no real zone does not block delivery."""
    # given / when
    zone = person_zone("Mars/Olympus_Mons", Policy(default_timezone="Europe/Paris"))

    # then
    assert zone.key == "Europe/Paris"
