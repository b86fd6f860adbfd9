"""template.yaml's monitoring and the Reports function: every function and every dead-letter
queue is watched, every alarm can notify, the dashboard's body is valid JSON that names what
exists, and the reports routes sit on the HTTP API beside Ingest's catch-all."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from local.template import load_template
from tests.conftest import REPO


class _CfnLoader(yaml.SafeLoader):
    """template.yaml with its short-form intrinsics read as {name: argument}."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _intrinsic)

TEMPLATE: dict[str, Any] = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r.get("Properties", {}) for name, r in RESOURCES.items() if r["Type"] == kind}


FUNCTIONS = sorted(_of_type("AWS::Serverless::Function"))
ALARMS = _of_type("AWS::CloudWatch::Alarm")


def _walk(node: Any) -> Any:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


def _dead_letter_queues() -> set[str]:
    """Every queue the template sends failures to: a redrive policy's target, a stream's or
    an asynchronous invocation's on-failure destination, a schedule's dead-letter config."""
    targets = []
    for node in _walk(RESOURCES):
        if isinstance(node, dict):
            targets += [node.get("RedrivePolicy", {}).get("deadLetterTargetArn")]
            targets += [node.get("OnFailure", {}).get("Destination")]
            targets += [node.get("DeadLetterConfig", {}).get("Arn")]
    return {
        target["GetAtt"].removesuffix(".Arn")
        for target in targets
        if isinstance(target, dict) and str(target.get("GetAtt", "")).endswith(".Arn")
    }


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name]
    return value


def _alarms_on(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm
        for alarm in ALARMS.values()
        if alarm.get("Namespace") == namespace and alarm.get("MetricName") == metric
    ]


def _dashboard() -> dict[str, Any]:
    """The dashboard's body with each ${...} of its !Sub replaced by a placeholder."""
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([^}!]+)\}", r"<\1>", body))
    return parsed


def _widget(title_start: str) -> dict[str, Any]:
    widget: dict[str, Any]
    (widget,) = [
        w["properties"]
        for w in _dashboard()["widgets"]
        if w["properties"].get("title", "").startswith(title_start)
    ]
    return widget


def _drawn(widget: dict[str, Any], namespace: str, metric: str) -> list[str]:
    """The dimension values a widget's plain metric rows draw for namespace and metric,
    following the dashboard's shorthands: "..." repeats the previous row but for the fields
    after it, "." repeats the previous row's field in its place."""
    values: list[str] = []
    previous: list[Any] = []
    for row in widget["metrics"]:
        fields = [field for field in row if not isinstance(field, dict)]
        if fields and fields[0] == "...":
            fields = previous[: len(previous) - len(fields) + 1] + fields[1:]
        fields = [previous[i] if field == "." else field for i, field in enumerate(fields)]
        previous = fields
        if fields[:2] == [namespace, metric]:
            values.append(fields[-1])
    return values


def test_every_function_has_an_errors_alarm() -> None:
    """Each function's failed invocations raise an alarm."""
    # when
    watched = {_dimension(a, "FunctionName")["Ref"] for a in _alarms_on("AWS/Lambda", "Errors")}
    # then
    assert watched == set(FUNCTIONS)


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    """A message waiting in any queue that failures land in raises an alarm at once."""
    # given
    queues = _dead_letter_queues()
    # when
    depth = _alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    # then
    assert queues == {
        "SendDeadLetterQueue",
        "StreamFailureQueue",
        "FeedbackFailureQueue",
        "TrackRetryDeadLetterQueue",
    }
    assert {_dimension(a, "QueueName")["GetAtt"] for a in depth} == {
        f"{queue}.QueueName" for queue in queues
    }
    for alarm in depth:
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["Statistic"] == "Maximum"


def test_the_iterator_age_alarm_is_five_minutes_behind_for_three_periods() -> None:
    """Evaluate falling more than 5 minutes behind the stream for 15 minutes is an alarm."""
    # when
    (alarm,) = _alarms_on("AWS/Lambda", "IteratorAge")
    # then
    assert _dimension(alarm, "FunctionName") == {"Ref": "Evaluate"}
    assert (alarm["Threshold"], alarm["Period"], alarm["EvaluationPeriods"]) == (300_000, 300, 3)
    assert alarm["Statistic"] == "Maximum"


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic_when_one_is_given(name: str) -> None:
    """With AlarmTopicArn set, an alarm notifies it going into alarm and back to OK; empty,
    the actions are left out rather than set to an empty ARN."""
    # given
    notify = {"If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    alarm = ALARMS[name]
    # then
    assert alarm["AlarmActions"] == notify
    assert alarm["OKActions"] == notify
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "docs/operations.md" in alarm["AlarmDescription"]


def test_the_alarm_topic_is_optional() -> None:
    """AlarmTopicArn defaults to empty, and its condition is whether it was given."""
    # then
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmTopic"] == {
        "Not": [{"Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def test_the_dashboard_body_names_only_what_the_template_has() -> None:
    """Once substituted the body is JSON, and each ${...} is a resource, its attribute or a
    pseudo parameter, so CloudFormation can resolve it."""
    # given
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    # when
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    # then
    assert _dashboard()["widgets"]
    for name in names:
        assert name.startswith("AWS::") or name.split(".", 1)[0] in RESOURCES, name


def test_the_dashboard_draws_every_function_and_dead_letter_queue() -> None:
    """Errors and throttles of all functions, and the depth of all dead-letter queues."""
    # given
    functions = [f"<{name}>" for name in FUNCTIONS]
    queues = {f"<{queue}.QueueName>" for queue in _dead_letter_queues()}
    # then
    assert sorted(_drawn(_widget("Lambda errors"), "AWS/Lambda", "Errors")) == functions
    assert sorted(_drawn(_widget("Lambda throttles"), "AWS/Lambda", "Throttles")) == functions
    assert _drawn(_widget("Evaluate: stream iterator age"), "AWS/Lambda", "IteratorAge") == [
        "<Evaluate>"
    ]
    dead_letters = _widget("Dead-letter queues")
    assert set(_drawn(dead_letters, "AWS/SQS", "ApproximateNumberOfMessagesVisible")) == queues


def test_the_dashboard_draws_ingest_volume_and_refusals() -> None:
    """Events accepted and requests refused, as Ingest counts them (service dimension)."""
    # when
    ingest = _widget("Ingest")
    # then
    assert _drawn(ingest, "Nudge", "EventsAccepted") == ["ingest"]
    assert _drawn(ingest, "Nudge", "RequestsRefused") == ["ingest"]


def test_the_reports_function_serves_its_routes_with_the_admin_key_parameter() -> None:
    """GET /v1/reports/triggers[/{id}] on the HTTP API, the SSM parameter named by
    AdminKeyParameter, readable by the function and by nothing broader."""
    # given
    reports = RESOURCES["Reports"]["Properties"]
    # when
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in reports["Events"].values()
        if event["Type"] == "HttpApi" and event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    }
    statements = [s for policy in reports["Policies"] for s in policy["Statement"]]
    # then
    assert routes == {("GET", "/v1/reports/triggers"), ("GET", "/v1/reports/triggers/{id}")}
    assert (reports["CodeUri"], reports["Handler"]) == ("functions/reports", "app.handler")
    assert reports["Environment"]["Variables"]["NUDGE_ADMIN_KEY_PARAMETER"] == {
        "Ref": "AdminKeyParameter"
    }
    assert reports["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "reports"
    assert TEMPLATE["Parameters"]["AdminKeyParameter"]["Default"] == "/nudge/admin-key"
    assert {"Action": "ssm:GetParameter", "Effect": "Allow"}.items() <= statements[1].items()
    assert statements[1]["Resource"] == {
        "Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
        ":parameter${AdminKeyParameter}"
    }
    assert statements[0] == {
        "Effect": "Allow",
        "Action": "dynamodb:Query",
        "Resource": {"GetAtt": "Table.Arn"},
    }


def test_the_local_stack_reads_the_reports_function_and_its_routes() -> None:
    """The local stack builds Reports from the same template, with its two routes and the
    table name every function gets from Globals."""
    # when
    template = load_template(REPO / "template.yaml", {"WriteKey": "k", "TrackingSecret": "s"})
    reports = template.functions["Reports"]
    # then
    assert set(reports.http_routes) == {
        ("GET", "/v1/reports/triggers"),
        ("GET", "/v1/reports/triggers/{id}"),
    }
    assert reports.environment["NUDGE_TABLE_NAME"] == template.names.physical("Table")
    assert reports.environment["NUDGE_ADMIN_KEY_PARAMETER"] == "/nudge/admin-key"
