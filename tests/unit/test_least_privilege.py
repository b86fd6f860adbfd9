"""Least privilege, read from template.yaml: each function is granted exactly the actions it
calls, on exactly the resources it uses; secrets are readable only by the functions that
need them, and only by name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.test_template import FUNCTIONS, RESOURCES, TEMPLATE

Grant = tuple[str, str]  # (action, resource in short form)

_TABLE = [f"dynamodb:{action}" for action in ("BatchGetItem", "BatchWriteItem")]
_SCHEDULES = "schedules in ScheduleGroup"
_SOCKETS = "SocketApi stage @connections"
_MODELS = "ModelsBucket models/*"


def _grants(actions: list[str], resource: str) -> set[Grant]:
    return {(action, resource) for action in actions}


# What each function calls, and on what. A change here is a change to a function's reach:
# it is reviewed as such (docs/architecture.md, Security).
EXPECTED: dict[str, set[Grant]] = {
    "Ingest": _grants(_TABLE, "table"),
    "Track": _grants([*_TABLE, "dynamodb:PutItem"], "table")
    | {
        ("ssm:GetParameter", "parameter TrackingSecretParameter"),
        ("sqs:SendMessage", "TrackRetryQueue.Arn"),
    },
    "Evaluate": _grants(
        [
            *_TABLE,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        ],
        "table",
    )
    | {
        ("dynamodb:Query", "table index by_seen_hour"),
        ("scheduler:CreateSchedule", _SCHEDULES),
        ("scheduler:DeleteSchedule", _SCHEDULES),
        ("iam:PassRole", "SchedulerRole"),
        ("sqs:SendMessage", "SendQueue"),
        ("sqs:SendMessage", "StreamFailureQueue"),
        ("s3:GetObject", _MODELS),
    },
    "Send": _grants(
        [
            *_TABLE,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        ],
        "table",
    )
    | {
        ("execute-api:ManageConnections", _SOCKETS),
        ("ses:SendEmail", "*"),
        ("ses:SendRawEmail", "*"),
        ("ssm:GetParameter", "parameter TrackingSecretParameter"),
        ("ssm:GetParameter", "parameter WebhookSecretParameter"),
        ("scheduler:CreateSchedule", _SCHEDULES),
        ("iam:PassRole", "SchedulerRole"),
        ("sqs:SendMessage", "SendQueue"),
        ("sqs:SendMessage", "SendDeadLetterQueue"),
        ("sqs:GetQueueAttributes", "FeedbackFailureQueue.Arn"),
    },
    "Feedback": _grants(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], "table"),
    "Reports": {
        ("dynamodb:Query", "table"),
        ("ssm:GetParameter", "parameter AdminKeyParameter"),
    },
    "Socket": _grants(
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"],
        "table",
    )
    | {("execute-api:ManageConnections", _SOCKETS)},
    "Privacy": _grants(
        ["dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:PutItem"],
        "table",
    )
    | {
        ("scheduler:DeleteSchedule", _SCHEDULES),
        ("ssm:GetParameter", "parameter AdminKeyParameter"),
    },
    # Reads every event (a Scan) and the current models; writes a model only when not worse.
    "Train": {
        ("dynamodb:Scan", "table"),
        ("s3:GetObject", _MODELS),
        ("s3:PutObject", _MODELS),
    },
}


def _arn(service: str, rest: str) -> re.Pattern[str]:
    """An ARN the template builds with !Sub in this account and region."""
    prefix = rf"arn:\$\{{AWS::Partition\}}:{service}:\$\{{AWS::Region\}}:\$\{{AWS::AccountId\}}:"
    return re.compile(f"^{prefix}{rest}$")


_SHORT = [
    (re.compile(r"^Table\.Arn$"), "table"),
    (re.compile(r"^\$\{Table\.Arn\}/index/(\w+)$"), r"table index \1"),
    (re.compile(r"^SchedulerRole\.Arn$"), "SchedulerRole"),
    (re.compile(r"^\$\{(\w+)\.Arn\}/models/\*$"), r"\1 models/*"),
    (_arn("ssm", r"parameter\$\{(\w+)\}"), r"parameter \1"),
    (_arn("scheduler", r"schedule/\$\{(\w+)\}/\*"), r"schedules in \1"),
    (
        _arn("execute-api", r"\$\{(\w+)\}/\$\{WebSocketStage\}/POST/@connections/\*"),
        r"\1 stage @connections",
    ),
]


def _short(resource: Any) -> list[str]:
    """A statement's resources in short form; anything unrecognised stays as written, so
    it shows up in a failed comparison rather than passing unseen."""
    if isinstance(resource, list):
        return [short for item in resource for short in _short(item)]
    text = next(iter(resource.values())) if isinstance(resource, dict) else resource
    text = text if isinstance(text, str) else repr(text)
    for pattern, replacement in _SHORT:
        if pattern.match(text):
            return [pattern.sub(replacement, text)]
    return [text]


def _granted(function: str) -> set[Grant]:
    grants: set[Grant] = set()
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        if "SQSSendMessagePolicy" in policy:  # SAM's template: sqs:SendMessage* on one queue
            queue = policy["SQSSendMessagePolicy"]["QueueName"]["GetAtt"].split(".")[0]
            grants.add(("sqs:SendMessage", queue))
            continue
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                grants |= {(action, resource) for resource in _short(statement["Resource"])}
    return grants


def test_every_function_is_listed() -> None:
    """A new function cannot arrive without its grants being stated here."""
    # then
    assert sorted(EXPECTED) == FUNCTIONS


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_is_granted_exactly_what_it_calls(function: str) -> None:
    """Each function's policy is exactly its expected (action, resource) pairs."""
    # when
    granted = _granted(function)

    # then
    assert granted == EXPECTED[function]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_grant_uses_an_action_wildcard(function: str) -> None:
    """No "dynamodb:*" or "ssm:Get*": every action is named."""
    # then
    assert all("*" not in action for action, _ in _granted(function))


def test_only_sending_email_is_granted_on_any_resource() -> None:
    """Resource "*" appears only for SES's send actions (the sender identity is a parameter
    SES checks itself); everything else names its resource."""
    # when
    anywhere = {action for f in FUNCTIONS for action, resource in _granted(f) if resource == "*"}

    # then
    assert anywhere == {"ses:SendEmail", "ses:SendRawEmail"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_reads_exactly_the_secret_parameters_its_environment_names(
    function: str,
) -> None:
    """The SSM parameters a function may read are those its NUDGE_*_PARAMETER variables
    name: no function can read another's secret, and none reads one it was not given."""
    # given
    variables = RESOURCES[function]["Properties"].get("Environment", {}).get("Variables", {})
    named = {
        f"parameter {value['Ref']}"
        for name, value in variables.items()
        if name.endswith("_PARAMETER") and isinstance(value, dict)
    }

    # when
    readable = {resource for action, resource in _granted(function) if action.startswith("ssm:")}

    # then
    assert readable == named


def test_no_function_may_use_a_kms_key() -> None:
    """The SecureStrings use the AWS-managed aws/ssm key, whose use needs no IAM grant, so
    no function holds any kms: action."""
    # when
    kms = [(f, action) for f in FUNCTIONS for action, _ in _granted(f) if action.startswith("kms:")]

    # then
    assert kms == []


def test_the_signing_secrets_are_never_template_parameter_values() -> None:
    """Only names of SSM parameters are passed at deploy time, never the secrets: a
    parameter value would sit in the Lambda environment in plain text."""
    # when
    names = set(TEMPLATE["Parameters"])

    # then
    assert {"TrackingSecret", "WebhookSecret"} & names == set()
    assert {"TrackingSecretParameter", "WebhookSecretParameter", "AdminKeyParameter"} <= names
