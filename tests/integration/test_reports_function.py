"""The Reports function on moto: the admin key read from SSM at a cold start, the two GET
routes answering with the counters' reports, every refusal a JSON {code, message, field};
and `nudge report --json` printing what the service builds from the same table."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from nudge import bootstrap
from nudge.adapters.experiments import ExperimentStore
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder
from nudge.domain.person import PersonId
from nudge.domain.triggers.loader import load_triggers
from nudge.entrypoints.cli import main

from tests.conftest import REPO
from tests.integration._harness import (
    BASIC_AUTH,
    NOW,
    WRITE_KEY,
    Aws,
    Invoke,
    basic_auth,
    json_body,
)

TRIGGERS = REPO / "triggers"
# Not the local stack's dev-admin-key: a key the function can only have read from SSM.
ADMIN_KEY = "test-admin-key-3f9c"
ADMIN_AUTH = f"Bearer {ADMIN_KEY}"
EARLIER_VERSION = "0123456789ab"


def _current_version() -> str:
    (cart,) = [t for t in load_triggers(TRIGGERS).triggers if t.id == "abandoned_cart"]
    assert cart.experiment is not None
    return cart.experiment.version


@pytest.fixture
def reports(aws: Aws) -> Invoke:
    """A cold start of Reports after the operator has put the admin key where the
    function's environment names it."""
    parameter = aws.environment("Reports")["NUDGE_ADMIN_KEY_PARAMETER"]
    boto3.client("ssm").put_parameter(Name=parameter, Value=ADMIN_KEY, Type="SecureString")
    return aws.load_handler("Reports")


def report_request(
    trigger_id: str | None = None,
    *,
    auth: str | None = ADMIN_AUTH,
    query: dict[str, str] | None = None,
    at: datetime = NOW,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) GET of the list route, or of one trigger's."""
    path = "/v1/reports/triggers" + ("" if trigger_id is None else f"/{trigger_id}")
    route_key = "GET /v1/reports/triggers" + ("" if trigger_id is None else "/{id}")
    headers = {"accept": "application/json", "user-agent": "curl/8.11.0"}
    if auth is not None:
        headers["authorization"] = auth
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "&".join(f"{name}={value}" for name, value in (query or {}).items()),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "testapi",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": headers["user-agent"],
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if trigger_id is not None:
        event["pathParameters"] = {"id": trigger_id}
    if query:
        event["queryStringParameters"] = dict(query)
    return event


def _count_a_few(aws: Aws, version: str) -> None:
    """Under ``version`` of abandoned_cart: two shoppers assigned to h24 (one sent an email,
    then buying for 50.0) and one held out."""
    store = ExperimentStore(aws.dynamodb, aws.table)
    since = NOW - timedelta(hours=3)
    for who, arm in (("ada", "h24"), ("bob", "h24"), ("cy", "holdout")):
        assignment = Assignment(
            "abandoned_cart", version, arm, since, since + timedelta(days=7), "Order Completed"
        )
        assert store.assign(PersonId.user(who), assignment)
        if who == "ada":
            under = CountedUnder("abandoned_cart", version, arm)
            assert store.count_fire("fire-ada", "sent", under, since + timedelta(hours=1))
            assert store.convert(PersonId.user(who), assignment, 7, 50.0, NOW)


def _service_report(aws: Aws, trigger_id: str, today: date) -> Any:
    """What the service builds from the same table, as JSON would carry it."""
    report = bootstrap.reporting(aws.dynamodb, aws.table, TRIGGERS).trigger(trigger_id, today)
    return json.loads(json.dumps(report))


def _arm(report: dict[str, Any], arm: str) -> dict[str, Any]:
    return next(row for row in report["variants"] if row["id"] == arm)


# ---- answers --------------------------------------------------------------------------------


def test_a_trigger_with_counts_gets_the_report_its_counters_give(aws: Aws, reports: Invoke):
    """200 with the report the service builds from the table's counters, on the request's day."""
    # given
    _count_a_few(aws, _current_version())
    # when
    response = reports(report_request("abandoned_cart"))
    # then
    assert response["statusCode"] == 200
    body = json_body(response)
    assert body == _service_report(aws, "abandoned_cart", NOW.date())
    h24 = _arm(body, "h24")
    assert (h24["assigned"], h24["sent"], h24["converted"], h24["revenue"]) == (2, 1, 1, 50.0)
    assert _arm(body, "holdout")["assigned"] == 1
    assert body["as_of"] == NOW.date().isoformat()


def test_a_trigger_nothing_was_counted_for_gets_a_report_of_zeros(reports: Invoke):
    """No counters yet: 200, every arm listed with nothing assigned and no daily series."""
    # when
    response = reports(report_request("abandoned_cart"))
    # then
    assert response["statusCode"] == 200
    body = json_body(response)
    assert [(row["id"], row["assigned"]) for row in body["variants"]] == [
        ("holdout", 0),
        ("h24", 0),
        ("h48", 0),
    ]
    assert body["daily"] == []


def test_a_report_is_never_cached(reports: Invoke):
    """Reports change with every count: the answer says no-store."""
    # when
    response = reports(report_request("abandoned_cart"))
    # then
    assert response["headers"]["Cache-Control"] == "no-store"


def test_an_earlier_version_is_reported_when_the_query_names_it(aws: Aws, reports: Invoke):
    """?version= reads that version's counters, not the current one's."""
    # given
    _count_a_few(aws, EARLIER_VERSION)
    # when
    response = reports(report_request("abandoned_cart", query={"version": EARLIER_VERSION}))
    # then
    assert response["statusCode"] == 200
    body = json_body(response)
    assert body["version"] == EARLIER_VERSION
    assert [(row["id"], row["assigned"]) for row in body["variants"]] == [
        ("holdout", 1),
        ("h24", 2),
    ]


def test_the_list_route_reports_every_shipped_trigger(reports: Invoke):
    """GET /v1/reports/triggers: {"triggers": [...]}, one report per shipped trigger, in id
    order."""
    # given
    shipped = sorted(trigger.id for trigger in load_triggers(TRIGGERS).triggers)
    # when
    response = reports(report_request())
    # then
    assert response["statusCode"] == 200
    body = json_body(response)
    assert list(body) == ["triggers"]
    assert [report["trigger"] for report in body["triggers"]] == shipped


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        None,
        f"Bearer {WRITE_KEY}",
        BASIC_AUTH,
        basic_auth(ADMIN_KEY),
        "Bearer ",
        "Bearer not-the-admin-key",
        ADMIN_KEY,
    ],
    ids=[
        "no-header",
        "bearer-write-key",
        "basic-write-key",
        "basic-admin-key",
        "bearer-empty",
        "bearer-wrong-key",
        "key-without-scheme",
    ],
)
def test_a_request_without_the_admin_key_as_bearer_is_unauthorized(
    reports: Invoke, auth: str | None
):
    """401 naming the Authorization header, with a Bearer challenge, unless the request
    carries the admin key as a Bearer token."""
    # when
    response = reports(report_request("abandoned_cart", auth=auth))
    # then
    assert response["statusCode"] == 401
    assert response["headers"]["WWW-Authenticate"] == "Bearer"
    body = json_body(response)
    assert set(body) == {"code", "message", "field"}
    assert (body["code"], body["field"]) == ("unauthorized", "Authorization")


def test_the_list_route_without_the_admin_key_is_unauthorized(reports: Invoke):
    """The list route holds every trigger's results: 401 with the write key."""
    # when
    response = reports(report_request(auth=f"Bearer {WRITE_KEY}"))
    # then
    assert response["statusCode"] == 401
    assert json_body(response)["field"] == "Authorization"


def test_an_unknown_trigger_without_the_admin_key_is_unauthorized_not_not_found(
    reports: Invoke,
):
    """The key is checked first: a caller without it learns nothing of which triggers exist."""
    # when
    response = reports(report_request("no_such_trigger", auth=None))
    # then
    assert response["statusCode"] == 401
    assert "abandoned_cart" not in response["body"]


def test_an_unknown_trigger_is_not_found_naming_the_id(reports: Invoke):
    """404 with {code, message, field}: field id, the id in the message."""
    # when
    response = reports(report_request("no_such_trigger"))
    # then
    assert response["statusCode"] == 404
    body = json_body(response)
    assert set(body) == {"code", "message", "field"}
    assert (body["code"], body["field"]) == ("not_found", "id")
    assert "no_such_trigger" in body["message"]


def test_a_malformed_version_is_a_bad_request_naming_the_version(reports: Invoke):
    """?version=bad: 400 with {code, message, field}, field version."""
    # when
    response = reports(report_request("abandoned_cart", query={"version": "bad"}))
    # then
    assert response["statusCode"] == 400
    body = json_body(response)
    assert set(body) == {"code", "message", "field"}
    assert (body["code"], body["field"]) == ("invalid_request", "version")


# ---- nudge report ---------------------------------------------------------------------------


def test_nudge_report_json_prints_the_report_the_service_builds(
    aws: Aws, capsys: pytest.CaptureFixture[str]
):
    """`nudge report abandoned_cart --json` against the table prints the service's report of
    the same counters, for today (UTC)."""
    # given
    _count_a_few(aws, _current_version())
    # when
    before = datetime.now(UTC).date()
    status = main(
        ["report", "abandoned_cart", "--json", "--table", aws.table, "--triggers", str(TRIGGERS)]
    )
    after = datetime.now(UTC).date()
    # then
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed in [_service_report(aws, "abandoned_cart", day) for day in {before, after}]
    assert _arm(printed, "h24")["converted"] == 1
