"""Create what the template declares (tables, queues) in moto, as CloudFormation would."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import boto3

from local.template import Template

__all__ = ["create_resources", "queue_url", "table_name"]

_TABLE_ARGUMENTS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
)


def table_name(template: Template, logical_id: str) -> str:
    return template.names.physical(logical_id)


def queue_url(sqs: Any, template: Template, logical_id: str) -> str:
    return str(sqs.get_queue_url(QueueName=template.names.physical(logical_id))["QueueUrl"])


def create_resources(
    template: Template,
    dynamodb: Any,
    sqs: Any,
    scheduler: Any = None,
    sesv2: Any = None,
    ssm: Any = None,
    s3: Any = None,
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
        _capacities_as_numbers(arguments)
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
    _put_secure_strings(template, ssm or _beside(dynamodb, "ssm"))
    _create_buckets(template, s3 or _beside(dynamodb, "s3"))


# The models a fresh stack starts with: the ones shipped in the layer (models/).
SHIPPED_MODELS = "models"


def _create_buckets(template: Template, s3: Any) -> None:
    """The template's buckets, and in the models bucket (the one a function's
    NUDGE_MODELS_BUCKET names) the shipped models, as an operator uploads them after a
    first deploy: Evaluate then reads its models from S3 here as on AWS."""
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for bucket in template.buckets:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    models_buckets = {
        spec.environment["NUDGE_MODELS_BUCKET"]
        for spec in template.functions.values()
        if spec.environment.get("NUDGE_MODELS_BUCKET")
    }
    for bucket in sorted(models_buckets & set(template.buckets)):
        for artefact in sorted((template.root / SHIPPED_MODELS).glob("*.json")):
            s3.put_object(Bucket=bucket, Key=f"models/{artefact.name}", Body=artefact.read_bytes())


def _capacities_as_numbers(arguments: dict[str, Any]) -> None:
    """A provisioned table's capacities come from template parameters, which are text;
    DynamoDB's API takes numbers (CloudFormation converts them the same way)."""
    holders = [arguments, *arguments.get("GlobalSecondaryIndexes", [])]
    for holder in holders:
        throughput = holder.get("ProvisionedThroughput")
        if throughput:
            holder["ProvisionedThroughput"] = {
                name: int(value) for name, value in throughput.items()
            }


def _put_secure_strings(template: Template, ssm: Any) -> None:
    """The SecureStrings the functions read their secrets from, as the operator puts them
    before a deploy (CloudFormation cannot create SecureStrings)."""
    for name, value in template.secure_strings.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def _beside(client: Any, service: str) -> Any:
    """A client of ``service`` where ``client`` sends its requests: the local stack's moto
    server, or, for a client on AWS's own endpoint (which moto in process answers), the
    service's own."""
    endpoint = str(client.meta.endpoint_url)
    make: Any = boto3.client  # typed per service name; this one is chosen at run time
    if (urlsplit(endpoint).hostname or "").endswith(".amazonaws.com"):
        return make(service, region_name=client.meta.region_name)
    return make(
        service,
        endpoint_url=endpoint,
        region_name=client.meta.region_name,
        aws_access_key_id="local",  # moto's server takes any credentials
        aws_secret_access_key="local",
    )


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
