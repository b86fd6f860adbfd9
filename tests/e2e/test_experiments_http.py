"""The shipped abandoned-cart experiment, end to end: 24 h against 48 h reminders and a 10 %
holdout, through the beacon API, the stepped clock, delivery, the email's open pixel and the
reports API. The report's numbers are checked against counts made here, independently: the
arm each shopper's id hashes to, the purchases this test sent and the emails in the outbox.

Forty shoppers fill a cart at the same moment. By their number:
- 0 mod 4 buy three hours later (inside both variants' waits: no email, converted);
- 1 mod 4 buy three days later (after either email, inside the 7-day goal window: converted);
- 2 mod 4 buy eight days later (after the window: not converted);
- 3 mod 4 never buy.
Every fifth shopper fills a second cart two hours after the first (a re-entry: same arm, no
new assignment while the first is open).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from nudge.domain.person import PersonId
from nudge.domain.triggers.experiment import assign
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger

from tests.e2e.conftest import REPO, WRITE_KEY, StackClient
from tests.e2e.shop import (
    DAY,
    HOUR,
    add_to_cart,
    advance,
    decisions,
    emails,
    identify,
    new_id,
    track,
)

pytestmark = pytest.mark.e2e

ADMIN_KEY = "dev-admin-key"  # the local stack's default NUDGE_ADMIN_KEY
SHOPPERS = 40
REPORT = "/v1/reports/triggers/abandoned_cart"


def _trigger() -> Trigger:
    return next(t for t in load_triggers(REPO / "triggers").triggers if t.id == "abandoned_cart")


@dataclass(frozen=True)
class Shopper:
    number: int
    user_id: str
    arm: str

    @property
    def converts(self) -> bool:
        return self.number % 4 in (0, 1)

    @property
    def revenue(self) -> float:
        return 10.0 + self.number


@dataclass(frozen=True)
class Run:
    """What the run produced, read before any other test resets the stack's tables."""

    shoppers: list[Shopper]
    report: dict[str, Any]
    sent_by_arm: Counter[str]
    opened_arm: str
    second_cart_arms: set[str | None]
    every_report: Any  # GET /v1/reports/triggers
    page: tuple[int, str, str]  # /_local/report: status, content type, text
    printed: subprocess.CompletedProcess[str]  # nudge report abandoned_cart --json


def _admin_get(stack: StackClient, path: str, key: str | None = ADMIN_KEY) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return stack.session.get(stack.url(path), headers=headers, timeout=30)


def _buy(stack: StackClient, shopper: Shopper) -> None:
    cart = f"cart-{shopper.user_id}"
    properties = {"cart_id": cart, "order_id": f"o-{cart}", "revenue": shopper.revenue}
    track(stack, shopper.user_id, "Order Completed", properties)


def _shop(stack: StackClient) -> list[Shopper]:
    trigger = _trigger()
    assert trigger.experiment is not None
    shoppers = []
    for number in range(SHOPPERS):
        user_id = new_id(f"ab{number}")
        arm = assign(trigger.id, trigger.experiment, PersonId.user(user_id))
        shoppers.append(Shopper(number, user_id, arm))
        identify(stack, user_id, email=f"{user_id}@example.com")
        add_to_cart(stack, user_id, f"cart-{user_id}", f"sku-{number}", 20.0)
    return shoppers


def _open_one_email(stack: StackClient) -> str:
    """Follows the open pixel of the first email; returns the arm it was sent in."""
    first = emails(stack)[0]
    pixel = re.search(r'src="[^"]*(/o/[A-Za-z0-9_-]+)"', str(first["html"]))
    assert pixel is not None, "every email carries an open pixel"
    assert stack.get(pixel.group(1)).status_code == 200
    return str(first["headers"]["X-Nudge-Variant"])


@pytest.fixture(scope="module")
def run(stack: StackClient) -> Run:
    stack.reset()
    shoppers = _shop(stack)
    advance(stack, 2 * HOUR)
    for shopper in shoppers[::5]:
        add_to_cart(stack, shopper.user_id, f"second-{shopper.user_id}", "sku-x", 5.0)
    advance(stack, 1 * HOUR)
    for shopper in shoppers:
        if shopper.number % 4 == 0:
            _buy(stack, shopper)
    advance(stack, 3 * DAY - 3 * HOUR)
    for shopper in shoppers:
        if shopper.number % 4 == 1:
            _buy(stack, shopper)
    opened_arm = _open_one_email(stack)
    advance(stack, 5 * DAY)
    for shopper in shoppers:
        if shopper.number % 4 == 2:
            _buy(stack, shopper)
    advance(stack, HOUR)
    stack.drain()
    sent = Counter(str(email["headers"].get("X-Nudge-Variant")) for email in emails(stack))
    response = _admin_get(stack, REPORT)
    assert response.status_code == 200, response.text
    every = _admin_get(stack, "/v1/reports/triggers")
    assert every.status_code == 200, every.text
    page = stack.get("/_local/report")
    return Run(
        shoppers=shoppers,
        report=response.json(),
        sent_by_arm=sent,
        opened_arm=opened_arm,
        second_cart_arms={
            d.get("arm") for d in decisions(stack, shoppers[5].user_id, "abandoned_cart")
        },
        every_report=every.json(),
        page=(page.status_code, page.headers["Content-Type"], page.text),
        printed=_nudge_report(stack),
    )


def _nudge_report(stack: StackClient) -> subprocess.CompletedProcess[str]:
    """`nudge report abandoned_cart --json`, as an operator runs it against the table."""
    table = next(name for name in stack.aws("dynamodb").list_tables()["TableNames"])
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    command = [sys.executable, "-m", "nudge.entrypoints.cli", "report", "abandoned_cart"]
    return subprocess.run(
        [*command, "--json", "--table", table, "--triggers", str(REPO / "triggers")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def _variant(run: Run, arm: str) -> dict[str, Any]:
    return next(v for v in run.report["variants"] if v["id"] == arm)


def _in(run: Run, arm: str) -> list[Shopper]:
    return [shopper for shopper in run.shoppers if shopper.arm == arm]


@pytest.mark.parametrize("arm", ["holdout", "h24", "h48"])
def test_each_arm_reports_its_shoppers_assigned_once(run: Run, arm: str) -> None:
    assert _variant(run, arm)["assigned"] == len(_in(run, arm))


@pytest.mark.parametrize("arm", ["holdout", "h24", "h48"])
def test_purchases_inside_the_window_convert_and_later_ones_do_not(run: Run, arm: str) -> None:
    converted = [shopper for shopper in _in(run, arm) if shopper.converts]
    assert _variant(run, arm)["converted"] == len(converted)
    assert _variant(run, arm)["revenue"] == pytest.approx(sum(s.revenue for s in converted))


@pytest.mark.parametrize("arm", ["holdout", "h24", "h48"])
def test_sends_in_the_report_are_the_emails_in_the_outbox(run: Run, arm: str) -> None:
    assert _variant(run, arm)["sent"] == run.sent_by_arm.get(arm, 0)


def test_the_holdout_is_never_emailed(run: Run) -> None:
    assert run.sent_by_arm.get("holdout", 0) == 0
    assert _in(run, "holdout"), "forty shoppers put some in the 10 % holdout"


def test_shoppers_who_never_bought_in_time_were_emailed_in_both_variants(run: Run) -> None:
    late = [s for s in run.shoppers if s.arm != "holdout" and s.number % 4 != 0]
    assert sum(run.sent_by_arm.get(arm, 0) for arm in ("h24", "h48")) >= len(late)


def test_the_opened_email_counts_in_the_arm_it_was_sent_in(run: Run) -> None:
    opened = {v["id"]: v["opened"] for v in run.report["variants"]}
    assert opened == {arm: int(arm == run.opened_arm) for arm in opened}


def test_a_second_cart_keeps_the_shoppers_arm(run: Run) -> None:
    assert run.second_cart_arms == {run.shoppers[5].arm}


def test_each_variant_is_compared_with_the_holdout(run: Run) -> None:
    comparisons = {c["variant"]: c for c in run.report["comparisons"]}
    assert set(comparisons) == {"h24", "h48"}
    assert {c["baseline"] for c in comparisons.values()} == {"holdout"}
    for comparison in comparisons.values():
        assert comparison["sequential"]["verdict"] in (
            "keep_running",
            "better",
            "worse",
            "no_difference",
        )


def test_the_report_is_json_without_nan(run: Run) -> None:
    json.dumps(run.report, allow_nan=False)
    assert run.report["trigger"] == "abandoned_cart"
    assert run.report["goal"]["event"] == "Order Completed"
    assert run.report["goal"]["within"] == "7d"


def test_the_list_route_reports_every_shipped_trigger(run: Run) -> None:
    reported = {report["trigger"] for report in run.every_report["triggers"]}
    assert {"abandoned_cart", "product_interest", "re_engagement"} <= reported


def test_the_local_report_page_is_one_html_file_with_charts(run: Run) -> None:
    status, content_type, text = run.page
    assert status == 200
    assert content_type.startswith("text/html")
    assert "abandoned_cart" in text
    assert "<svg" in text


def test_nudge_report_prints_the_same_numbers_from_the_table(run: Run) -> None:
    assert run.printed.returncode == 0, run.printed.stderr
    assert json.loads(run.printed.stdout)["variants"] == run.report["variants"]


# ---- bad requests -------------------------------------------------------------------------


def test_a_report_without_the_admin_key_is_401(stack: StackClient) -> None:
    response = _admin_get(stack, REPORT, key=None)
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"


def test_a_report_with_the_write_key_is_401(stack: StackClient) -> None:
    response = _admin_get(stack, REPORT, key=WRITE_KEY)
    assert response.status_code == 401
    assert "admin key" in response.json()["message"]


def test_a_report_of_an_unknown_trigger_is_404_naming_it(stack: StackClient) -> None:
    response = _admin_get(stack, "/v1/reports/triggers/no_such_trigger")
    assert response.status_code == 404
    assert "no_such_trigger" in response.json()["message"]


def test_a_report_of_a_malformed_version_is_400(stack: StackClient) -> None:
    response = _admin_get(stack, REPORT + "?version=not-a-version")
    assert response.status_code == 400
    assert response.json()["field"] == "version"


def test_a_trigger_without_an_experiment_reports_plain_counts(stack: StackClient) -> None:
    response = _admin_get(stack, "/v1/reports/triggers/re_engagement")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["comparisons"] == []
    assert [variant["id"] for variant in body["variants"]] == ["-"]
