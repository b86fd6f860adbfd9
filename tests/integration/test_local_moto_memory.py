"""What the local stack lets moto forget, so a long run stays flat (bench soak): the
model objects moto tracks for its dashboard, and the shard iterators of past poll rounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import moto.dynamodb.models.table as table_models
import pytest
from moto.core.common_models import BaseModel
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodbstreams.models import dynamodbstreams_backends

from local.runtime import FunctionPool
from local.sources import TRIMMED, StreamPoller
from local.stack import _untrack_moto_models
from local.template import ACCOUNT
from tests.integration._harness import Aws

ITEM = {"pk": {"S": "P#u:ada"}, "sk": {"S": "LINK"}, "kind": {"S": "link"}}


def _tracked(model: type[BaseModel]) -> list[BaseModel]:
    """moto's class-level list of the model's instances (set by its metaclass)."""
    tracked: list[BaseModel] = getattr(model, "instances_tracked")  # noqa: B009
    return tracked


def _poller(aws: Aws) -> StreamPoller:
    (source,) = aws.template.functions["Evaluate"].stream_sources
    return StreamPoller(
        # The filter takes only event INSERTs: the link below never reaches the function.
        function=cast(FunctionPool, None),
        source=source,
        streams=aws.streams,
        dynamodb=aws.dynamodb,
        sqs=aws.sqs,
        table_name=aws.table,
        failure_queue_url=None,
        region=aws.template.names.region,
    )


def test_poll_rounds_leave_no_shard_iterator_in_moto(aws: Aws) -> None:
    """Each round asks for a fresh iterator at its checkpoint, so the ones it was handed
    are dropped (moto would keep every one, about 1 KB each, for as long as it runs)."""
    # given
    poller = _poller(aws)
    aws.dynamodb.put_item(TableName=aws.table, Item=ITEM)
    # when
    consumed = poller.poll() + poller.poll()
    # then
    assert consumed == 1
    assert dynamodbstreams_backends[ACCOUNT][aws.template.names.region].shard_iterators == {}


def test_untracked_moto_keeps_no_item_it_no_longer_holds(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's dashboard list of every model instance stays empty: a deleted item, and
    every overwritten version, can be freed."""
    # given (the process-wide change undone after the test)
    monkeypatch.setattr(BaseModel, "__new__", BaseModel.__dict__["__new__"])
    monkeypatch.setattr(Item, "instances_tracked", _tracked(Item))
    _untrack_moto_models()
    # when
    aws.dynamodb.put_item(TableName=aws.table, Item=ITEM)
    aws.dynamodb.put_item(TableName=aws.table, Item={**ITEM, "user_id": {"S": "ada"}})
    aws.dynamodb.delete_item(TableName=aws.table, Key={"pk": ITEM["pk"], "sk": ITEM["sk"]})
    # then
    assert _tracked(Item) == []
    assert json.dumps(aws.dynamodb.scan(TableName=aws.table)["Items"]) == "[]"


def test_a_record_past_retention_and_consumed_leaves_only_its_place(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB Streams keeps a record 24 hours; once the poller is past it, moto's copy
    becomes a shared placeholder, and later records are still read in order."""
    # given a consumed record, and the stream's clock 25 hours on
    poller = _poller(aws)
    aws.dynamodb.put_item(TableName=aws.table, Item=ITEM)
    poller.poll()
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=25)
    monkeypatch.setattr(table_models, "utcnow", lambda: later)
    # when
    poller.poll()
    aws.dynamodb.put_item(TableName=aws.table, Item={**ITEM, "sk": {"S": "LINK2"}})
    consumed = poller.poll()
    # then
    table = dynamodb_backends[ACCOUNT][aws.template.names.region].get_table(aws.table)
    assert table.stream_shard is not None
    first: object = table.stream_shard.items[0]
    assert first is TRIMMED
    assert consumed == 1
