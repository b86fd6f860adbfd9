"""Create what the template declares (tables, queues) in moto, as CloudFormation would."""

from __future__ import annotations

import json
from typing import Any

from local.template import Template

__all__ = ["create_resources", "queue_url", "table_name"]

_TABLE_ARGUMENTS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)


def table_name(template: Template, logical_id: str) -> str:
    return template.names.physical(logical_id)


def queue_url(sqs: Any, template: Template, logical_id: str) -> str:
    return str(sqs.get_queue_url(QueueName=template.names.physical(logical_id))["QueueUrl"])


def create_resources(
    template: Template, dynamodb: Any, sqs: Any, scheduler: Any = None, sesv2: Any = None
) -> None:
    # Queues first: a queue's redrive policy names its dead-letter queue's ARN.
    for queue in sorted(
        template.queues.values(), key=lambda spec: "RedrivePolicy" in spec.properties
    ):
        sqs.create_queue(
            QueueName=template.names.physical(queue.logical_id),
            Attributes=_queue_attributes(queue.properties),
        )
    for table in template.tables.values():
        arguments = {
            name: table.properties[name] for name in _TABLE_ARGUMENTS if name in table.properties
        }
        if "StreamSpecification" in arguments:
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                **arguments["StreamSpecification"],
            }
        arguments.setdefault("BillingMode", "PAY_PER_REQUEST")
        name = template.names.physical(table.logical_id)
        dynamodb.create_table(TableName=name, **arguments)
        ttl = table.properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    for identity in template.email_identities if sesv2 is not None else ():
        sesv2.create_email_identity(EmailIdentity=identity)  # moto verifies it at once
    for configuration_set in template.email_configuration_sets if sesv2 is not None else ():
        # Reset calls this again; moto's "already exists" is not SES's AlreadyExistsException.
        if configuration_set not in sesv2.list_configuration_sets()["ConfigurationSets"]:
            sesv2.create_configuration_set(ConfigurationSetName=configuration_set)
    for group in template.schedule_groups if scheduler is not None else ():
        existing = {entry["Name"] for entry in scheduler.list_schedule_groups()["ScheduleGroups"]}
        if group not in existing:
            scheduler.create_schedule_group(Name=group)
    for logical_id, properties in template.schedules.items() if scheduler is not None else ():
        _create_schedule(scheduler, template.names.physical(logical_id), properties)


def resolve_queue_urls(environment: dict[str, str], sqs: Any) -> dict[str, str]:
    """!Ref of a queue is its URL, which only exists once moto has created the queue."""
    resolved = {}
    for name, value in environment.items():
        if value.startswith("{queue-url:") and value.endswith("}"):
            value = str(sqs.get_queue_url(QueueName=value[len("{queue-url:") : -1])["QueueUrl"])
        resolved[name] = value
    return resolved


def _queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if name in properties:
            attributes[name] = str(properties[name])
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
    return attributes


def _create_schedule(scheduler: Any, name: str, properties: dict[str, Any]) -> None:
    """A schedule the template declares (the recurring sweep), as CloudFormation makes it."""
    group = str(properties.get("GroupName", "default"))
    existing = scheduler.list_schedules(GroupName=group)["Schedules"]
    if any(entry["Name"] == name for entry in existing):
        return
    arguments = {
        key: properties[key]
        for key in ("ScheduleExpression", "FlexibleTimeWindow", "Target", "State", "Description")
        if key in properties
    }
    scheduler.create_schedule(Name=name, GroupName=group, **arguments)
