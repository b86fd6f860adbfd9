"""`send.at` over real HTTP on the local stack: a message for 09:30 reaches the outbox at 09:30
on the person's clock, and one for their best hour at the hour their past visits cluster in.
The waits are one-time schedules the local stack fires on its virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import FROM_EMAIL, StackClient, _run_stack
from tests.e2e.shop import advance_to, emails, identify, new_id, send, track, zone_where

pytestmark = pytest.mark.e2e

TRIGGERS = {
    "thanks_at_0930.yaml": """\
id: thanks_at_0930
when: {event: Order Completed}
send: {channel: email, template: re_engagement, at: "09:30"}
""",
    "renewal_best_hour.yaml": """\
id: renewal_best_hour
when: {event: Subscription Renewed}
send: {channel: email, template: re_engagement, at: best, within: 24h, fallback: "10:00"}
""",
}


@pytest.fixture(scope="module")
def send_time_stack(
    stack_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackClient]:
    folder = tmp_path_factory.mktemp("send-time-triggers")
    (folder / "templates").symlink_to(REPO / "triggers" / "templates")
    for name, text in TRIGGERS.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = {"NUDGE_TRIGGERS_DIR": str(folder), "NUDGE_FROM_EMAIL": FROM_EMAIL}
    yield from _run_stack(None, stack_logs, settings)


def _local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def test_a_message_for_0930_reaches_the_outbox_at_0930_on_the_persons_clock(
    send_time_stack: StackClient,
) -> None:
    # given
    stack, user = send_time_stack, new_id("buyer")
    zone = zone_where(stack.now(), 7)  # 07:xx on their clock now
    identify(stack, user, email=f"{user}@example.com", timezone=zone)
    track(stack, user, "Order Completed", {"order_id": new_id("order")})
    due = datetime.combine(_local(stack.now(), zone).date(), time(9, 30), tzinfo=ZoneInfo(zone))
    # when
    advance_to(stack, due - timedelta(minutes=1))
    before = [e for e in emails(stack) if e["to"] == [f"{user}@example.com"]]
    advance_to(stack, due + timedelta(minutes=1))
    # then
    assert before == []
    (email,) = [e for e in emails(stack) if e["to"] == [f"{user}@example.com"]]
    sent = datetime.strptime(email["time"], "%a, %d %b %Y %H:%M:%S %z")
    assert _local(sent, zone).strftime("%H:%M") == "09:30"


def test_a_best_hour_message_lands_in_the_hour_the_person_visits(
    send_time_stack: StackClient,
) -> None:
    """Ten evenings of visits at 19:00 on their clock: a renewal at 10:00 (itself a visit at
    10:00) waits for 19:00."""
    # given
    stack, user = send_time_stack, new_id("member")
    zone = zone_where(stack.now(), 10)
    today = _local(stack.now(), zone).date()
    signed_up = datetime.combine(today - timedelta(days=11), time(19), ZoneInfo(zone))
    send(
        stack,
        "identify",
        {
            "userId": user,
            "traits": {"email": f"{user}@example.com", "timezone": zone},
            "timestamp": signed_up.isoformat(),
        },
    )
    for days_ago in range(10, 0, -1):
        evening = datetime.combine(today - timedelta(days=days_ago), time(19, 5), ZoneInfo(zone))
        visit = {"userId": user, "name": "Home", "timestamp": evening.isoformat()}
        send(stack, "page", visit)
    track(stack, user, "Subscription Renewed", {"plan": "pro"})
    seven = datetime.combine(today, time(19), tzinfo=ZoneInfo(zone))
    # when
    advance_to(stack, seven - timedelta(minutes=1))
    before = [e for e in emails(stack) if e["to"] == [f"{user}@example.com"]]
    advance_to(stack, seven + timedelta(minutes=1))
    # then
    assert before == []
    (email,) = [e for e in emails(stack) if e["to"] == [f"{user}@example.com"]]
    sent = datetime.strptime(email["time"], "%a, %d %b %Y %H:%M:%S %z")
    assert _local(sent, zone).hour == 19
