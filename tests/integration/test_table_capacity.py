"""The table's billing mode (template.yaml's TableBillingMode): on demand by default; with
PROVISIONED, the table and its index get capacities, auto scaling tracks a utilization on
each of their four dimensions, and the local stack creates the table the same way."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from local.template import load_template
from tests.conftest import REPO
from tests.integration._harness import mocked_account
from tests.unit.test_template import RESOURCES

BASE = {"WriteKey": "integration-write-key"}
PROVISIONED = {
    **BASE,
    "TableBillingMode": "PROVISIONED",
    "TableMinWriteCapacity": "7",
    "TableMinReadCapacity": "3",
}


def _table(overrides: dict[str, str]) -> dict[str, Any]:
    template = load_template(REPO / "template.yaml", overrides)
    (table,) = template.tables.values()
    return table.properties


def test_the_table_is_on_demand_by_default_with_no_capacities() -> None:
    # given / when
    table = _table(BASE)
    # then
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in table
    assert all("ProvisionedThroughput" not in index for index in table["GlobalSecondaryIndexes"])


def test_a_provisioned_table_and_its_index_start_at_the_minimum_capacities() -> None:
    # given / when
    table = _table(PROVISIONED)
    # then
    minimum = {"ReadCapacityUnits": "3", "WriteCapacityUnits": "7"}
    assert table["BillingMode"] == "PROVISIONED"
    assert table["ProvisionedThroughput"] == minimum
    assert [index["ProvisionedThroughput"] for index in table["GlobalSecondaryIndexes"]] == [
        minimum
    ]


@pytest.mark.parametrize(
    ("dimension", "metric"),
    [
        ("dynamodb:table:WriteCapacityUnits", "DynamoDBWriteCapacityUtilization"),
        ("dynamodb:table:ReadCapacityUnits", "DynamoDBReadCapacityUtilization"),
        ("dynamodb:index:WriteCapacityUnits", "DynamoDBWriteCapacityUtilization"),
        ("dynamodb:index:ReadCapacityUnits", "DynamoDBReadCapacityUtilization"),
    ],
)
def test_every_provisioned_dimension_is_scaled_to_the_target_utilization(
    dimension: str, metric: str
) -> None:
    """A dimension left unscaled would stay at its minimum and throttle."""
    # given
    targets = {
        name: resource
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        and resource["Properties"]["ScalableDimension"] == dimension
    }
    # when
    ((target_name, target),) = targets.items()
    (policy,) = [
        resource
        for resource in RESOURCES.values()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        and resource["Properties"]["ScalingTargetId"] == {"Ref": target_name}
    ]
    # then
    assert target["Condition"] == policy["Condition"] == "IsProvisioned"
    kind = "Write" if "Write" in dimension else "Read"
    assert target["Properties"]["MinCapacity"] == {"Ref": f"TableMin{kind}Capacity"}
    assert target["Properties"]["MaxCapacity"] == {"Ref": f"TableMax{kind}Capacity"}
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == {"Ref": "TableTargetUtilization"}
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == metric


def test_the_index_scaling_names_the_tables_index() -> None:
    # given
    index_ids = {
        resource["Properties"]["ResourceId"]["Sub"]
        for resource in RESOURCES.values()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        and ":index:" in resource["Properties"]["ScalableDimension"]
    }
    # when
    (index,) = RESOURCES["Table"]["Properties"]["GlobalSecondaryIndexes"]
    # then
    assert index_ids == {f"table/${{Table}}/index/{index['IndexName']}"}


def test_the_local_stack_creates_a_provisioned_table_with_its_capacities() -> None:
    # given
    template = load_template(REPO / "template.yaml", PROVISIONED)
    # when
    with mocked_account(template, boto3.Session()) as aws:
        described = aws.dynamodb.describe_table(TableName=aws.table)["Table"]
    # then
    assert described["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    throughput = described["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 7)
