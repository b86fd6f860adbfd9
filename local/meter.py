"""What the local stack's traffic would cost on AWS, counted at the fake AWS itself.

A WSGI middleware in front of moto sees every AWS request any code makes (the functions'
and the stack's own emulation of Lambda's pollers and Scheduler), so nothing depends on the
handlers' own hooks. DynamoDB requests are priced the way DynamoDB bills on-demand tables:

- a write costs 1 write unit per started 1 KB of the larger of the item before and after
  it; a delete costs the deleted item's size; a conditional write that is refused still
  costs the existing item's size (at least 1 unit);
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
- a write in a transaction costs twice that;
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
- every secondary index whose key the write touches is written too: a new index entry
  costs its size, a removed one its size, a changed index key both (a delete and a put);
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations
- a read costs 1 read unit per started 4 KB, half for an eventually consistent one; a
  Query or Scan is priced on the total size of the items it *reads* (before its filter),
  rounded up once per request; a GetItem of a missing key still costs 1;
- item size = attribute names plus values in UTF-8 bytes (numbers about one byte per two
  significant digits, plus one; lists and maps 3 bytes plus 1 per element).
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html

Sizes before and after a write are read from moto with internal calls straight to its WSGI
app (not metered). The moto request recorder is the cross-check: the same requests, seen by
moto's own code (``bench/cost.py`` compares the two).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INTERNAL_HEADER", "PUMP_HEADER", "AwsMeter", "item_size", "read_units", "write_units"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_DYNAMODB_TARGET = "DynamoDB_20120810"
_KEY_NAMES = ("pk", "sk")  # the template's table key (local/resources.py creates it)
# The header the stack's own clients (its pollers, its Scheduler) send, as the platform's.
PUMP_HEADER = "x-nudge-local-pump"
_PUMP_ENVIRON = "HTTP_" + PUMP_HEADER.upper().replace("-", "_")
# Marks the meter's own reads of item sizes, which moto's request recorder also sees.
INTERNAL_HEADER = "x-nudge-meter-internal"
_INTERNAL_ENVIRON = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")
_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")
# What a Query or Scan is re-run without to find what it read: filters and projections
# narrow what is returned, not what is read and billed.
_NOT_IN_READ = frozenset(
    {
        "FilterExpression",
        "ProjectionExpression",
        "Select",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
    }
)


# ---- DynamoDB's size and capacity rules ----------------------------------------------------


def _number_size(text: str) -> int:
    """Numbers: about one byte per two significant digits, plus one."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return len(digits) // 2 + 1 + (1 if text.startswith("-") else 0)


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(text).encode()) for text in inner)
    if kind == "NS":
        return sum(_number_size(str(text)) for text in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(blob)) for blob in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(v) for name, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values, in bytes."""
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


# ---- the counts --------------------------------------------------------------------------


@dataclass
class DynamoDBUnits:
    write_units: float = 0.0
    read_units: float = 0.0
    refused_writes: int = 0  # conditional writes DynamoDB refused, and billed
    write_units_by_kind: Counter[str] = field(default_factory=Counter)
    index_write_units: float = 0.0
    # Item sizes of what was written, by kind: (items, bytes), for "how big is an event".
    written_items: Counter[str] = field(default_factory=Counter)
    written_bytes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "writeUnits": self.write_units,
            "readUnits": self.read_units,
            "refusedWrites": self.refused_writes,
            "indexWriteUnits": self.index_write_units,
            "writeUnitsByKind": dict(self.write_units_by_kind),
            "writtenItems": dict(self.written_items),
            "writtenBytes": dict(self.written_bytes),
        }


@dataclass
class LambdaUsage:
    invocations: int = 0
    billed_ms: int = 0
    memory_mb: int = 128

    def as_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "billedMs": self.billed_ms,
            "memoryMb": self.memory_mb,
        }


class AwsMeter:
    """Counts what the local stack asks of AWS; ``snapshot()`` is what /_local/meter shows."""

    def __init__(self, account: str = "123456789012") -> None:
        self._lock = threading.Lock()
        self.account = account  # moto's account, whose backend holds the items
        self.indexes: dict[str, list[str]] = {}  # table -> its index keys, as DescribeTable says
        self.clear()

    def clear(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            # (caller, service, operation) -> requests; caller is "functions" or "platform"
            self.requests: Counter[tuple[str, str, str]] = Counter()
            self.dynamodb = DynamoDBUnits()
            self.functions: dict[str, LambdaUsage] = {}
            self.api_requests = 0
            self.socket_messages = 0
            self.socket_connection_minutes = 0.0
            self.scheduled_invocations = 0

    # ---- what the rest of the stack reports ----------------------------------------------

    def invocation(self, function: str, memory_mb: int, duration_ms: float) -> None:
        """A Lambda invocation: Lambda bills its duration rounded up to the millisecond."""
        with self._lock:
            usage = self.functions.setdefault(function, LambdaUsage(memory_mb=memory_mb))
            usage.invocations += 1
            usage.billed_ms += max(1, math.ceil(duration_ms))

    def api_request(self) -> None:
        with self._lock:
            self.api_requests += 1

    def socket_message(self, size: int) -> None:
        """A WebSocket message either way, metered in 32 KB increments."""
        with self._lock:
            self.socket_messages += max(1, math.ceil(size / 32768))

    def socket_connection(self, seconds: float) -> None:
        with self._lock:
            self.socket_connection_minutes += max(1.0, math.ceil(seconds / 60))

    def scheduled_invocation(self) -> None:
        with self._lock:
            self.scheduled_invocations += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests: dict[str, dict[str, dict[str, int]]] = {}
            for (caller, service, operation), count in sorted(self.requests.items()):
                requests.setdefault(caller, {}).setdefault(service, {})[operation] = count
            return {
                "requests": requests,
                "dynamodb": self.dynamodb.as_dict(),
                "lambda": {name: usage.as_dict() for name, usage in self.functions.items()},
                "apiGatewayRequests": self.api_requests,
                "webSocketMessages": self.socket_messages,
                "webSocketConnectionMinutes": self.socket_connection_minutes,
                "schedulerInvocations": self.scheduled_invocations,
            }

    # ---- the middleware --------------------------------------------------------------------

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """moto's WSGI app, metered."""

        def metered(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            service = _service(environ)
            caller = "platform" if _PUMP_ENVIRON in environ else "functions"
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            operation = target.partition(".")[2] if target else _query_action(environ)
            # The platform's own DynamoDB calls (the stream poller, /_local's views) are
            # counted but not priced: on AWS they are Lambda's or this tool's, not Nudge's.
            if caller == "platform" or not target.startswith(_DYNAMODB_TARGET + "."):
                with self._lock:
                    self.requests[(caller, service, operation or _rest_call(service, environ))] += 1
                return app(environ, start_response)
            return _DynamoDBCall(self, app, environ, operation).run(start_response)

        return metered


def _scope(environ: Mapping[str, Any]) -> list[str]:
    """A signed request's credential scope: key id, date, region, service, aws4_request."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    return authorization.partition("Credential=")[2].split(",")[0].split("/")


def _service(environ: Mapping[str, Any]) -> str:
    """The service a signed request is for: the credential scope names it."""
    scope = _scope(environ)
    return scope[3] if len(scope) > 3 else "unsigned"


def _rest_call(service: str, environ: Mapping[str, Any]) -> str:
    """A REST call by method and resource: ``POST /schedules`` for CreateSchedule (the
    schedule's name, the path's last part, left out), ``POST /v2/email/outbound-emails``."""
    parts = [part for part in str(environ.get("PATH_INFO", "")).split("/") if part]
    kept = parts[:1] if service == "scheduler" else parts[:3]
    return f"{environ.get('REQUEST_METHOD', '')} /{'/'.join(kept)}"


def _query_action(environ: Mapping[str, Any]) -> str:
    query = str(environ.get("QUERY_STRING", ""))
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "Action":
            return value
    return ""


class _DynamoDBCall:
    """One DynamoDB request: sizes read before it, the call, sizes after it, the bill."""

    def __init__(
        self, meter: AwsMeter, app: WsgiApp, environ: dict[str, Any], operation: str
    ) -> None:
        self.meter = meter
        self.app = app
        self.environ = environ
        self.operation = operation
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""
        self.request: dict[str, Any] = json.loads(self.body or b"{}")

    def run(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        writes = self._writes()
        before = [self._item(table, key) for table, key, _ in writes]
        status, headers, body = self._call(self.operation, self.body, internal=False)
        start_response(status, headers)
        answer = json.loads(body or b"{}")
        refused = not status.startswith("200")
        with self.meter._lock:
            self.meter.requests[("functions", "dynamodb", self.operation)] += 1
        units = DynamoDBUnits()
        if refused and not _conditional_refusal(answer):
            return [body]  # throttled or invalid: DynamoDB bills nothing
        for (table, key, _), old in zip(writes, before, strict=True):
            new = None if refused else self._item(table, key)
            self._bill_write(units, table, old, new, refused)
        if not refused:
            units.read_units += self._read_units(answer)
        self._add(units)
        return [body]

    # ---- internal calls to moto (not metered) ----------------------------------------

    def _call(
        self, operation: str, body: bytes, internal: bool = True
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["HTTP_X_AMZ_TARGET"] = f"{_DYNAMODB_TARGET}.{operation}"
        if internal:  # so moto's recorder can tell the meter's own reads
            environ[_INTERNAL_ENVIRON] = "1"
        answer: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], *_: Any) -> Callable[..., Any]:
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, start)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return answer["status"], answer["headers"], payload

    def _internal(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        status, _, body = self._call(operation, json.dumps(request).encode())
        result: dict[str, Any] = json.loads(body or b"{}")
        return result if status.startswith("200") else {}

    def _item(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item as moto holds it now, read from moto's backend in this process: a
        WSGI round trip per written item would slow every function the meter watches."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        region = _scope(self.environ)[2] if len(_scope(self.environ)) > 2 else "us-east-1"
        try:
            found = (
                dynamodb_backends[self.meter.account][region]
                .get_table(table)
                .get_item(
                    DynamoType(dict(key["pk"])),
                    DynamoType(dict(key["sk"])) if "sk" in key else None,
                )
            )
        except Exception:  # no such table or key shape: nothing there to size
            return None
        if found is None:
            return None
        attributes: dict[str, Any] = found.to_json()["Attributes"]
        return attributes

    def _indexes(self, table: str) -> list[str]:
        """The attribute names that key the table's secondary indexes (one list per index);
        read once per table (a reset recreates tables with the same indexes)."""
        known = self.meter.indexes.get(table)
        if known is not None:
            return known
        described = self._internal("DescribeTable", {"TableName": table}).get("Table", {})
        names: list[str] = []
        for index in described.get("GlobalSecondaryIndexes", []) + described.get(
            "LocalSecondaryIndexes", []
        ):
            names.append(",".join(part["AttributeName"] for part in index["KeySchema"]))
        self.meter.indexes[table] = names
        return names

    # ---- what is written and read -----------------------------------------------------

    def _writes(self) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key, factor) of every item the request writes; factor 2 in a transaction."""
        request, operation = self.request, self.operation
        if operation == "PutItem":
            return [(request["TableName"], _key_of(request["Item"]), 1)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(request["TableName"], request["Key"], 1)]
        if operation == "BatchWriteItem":
            return [
                (
                    table,
                    _key_of(write["PutRequest"]["Item"])
                    if "PutRequest" in write
                    else write["DeleteRequest"]["Key"],
                    1,
                )
                for table, batch in request["RequestItems"].items()
                for write in batch
            ]
        if operation == "TransactWriteItems":
            writes = []
            for entry in request["TransactItems"]:
                ((kind, action),) = entry.items()
                if kind == "ConditionCheck":
                    continue
                key = _key_of(action["Item"]) if kind == "Put" else action["Key"]
                writes.append((action["TableName"], key, 2))
            return writes
        return []

    def _bill_write(
        self,
        units: DynamoDBUnits,
        table: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        refused: bool,
    ) -> None:
        factor = 2 if self.operation == "TransactWriteItems" else 1
        kind = _kind(new) or _kind(old) or "other"
        if refused:
            units.refused_writes += 1
            cost = factor * write_units(item_size(old))
        else:
            cost = factor * write_units(max(item_size(old), item_size(new)))
            if new:
                units.written_items[kind] += 1
                units.written_bytes[kind] += item_size(new)
            index_cost = factor * self._index_units(table, old, new)
            if index_cost:
                units.index_write_units += index_cost
                units.write_units_by_kind["index"] += index_cost
                units.write_units += index_cost
        units.write_units += cost
        units.write_units_by_kind[kind] += cost

    def _index_units(
        self, table: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> int:
        total = 0
        for index in self._indexes(table):
            attributes = index.split(",")
            before = _index_entry(old, attributes)
            after = _index_entry(new, attributes)
            if before == after:
                continue  # keys-only: an unchanged index key writes nothing to the index
            total += write_units(item_size(before)) if before else 0
            total += write_units(item_size(after)) if after else 0
        return total

    def _read_units(self, answer: Mapping[str, Any]) -> float:
        request, operation = self.request, self.operation
        consistent = bool(request.get("ConsistentRead"))
        if operation == "GetItem":
            # A projection trims the answer, not the bill: the whole item is read.
            item = answer.get("Item")
            if item and "ProjectionExpression" in request:
                item = self._item(request["TableName"], request["Key"])
            return read_units(item_size(item), consistent)
        if operation == "BatchGetItem":
            total = 0.0
            for table, wanted in request["RequestItems"].items():
                strong = bool(wanted.get("ConsistentRead"))
                found = answer.get("Responses", {}).get(table, [])
                unprocessed = len(answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
                missing = len(wanted["Keys"]) - len(found) - unprocessed
                total += sum(read_units(item_size(item), strong) for item in found)
                total += missing * read_units(0, strong)
            return total
        if operation in ("Query", "Scan"):
            return read_units(self._read_size(), consistent)
        if operation == "TransactGetItems":
            return sum(
                2 * read_units(item_size(response.get("Item")))
                for response in answer.get("Responses", [])
            )
        return 0.0

    def _read_size(self) -> int:
        """What a Query or Scan read: the same request without its filter and projection,
        since DynamoDB bills the items read, not the ones returned."""
        tokens = set(_PLACEHOLDER.findall(str(self.request.get("KeyConditionExpression", ""))))
        unfiltered = {
            name: value for name, value in self.request.items() if name not in _NOT_IN_READ
        }
        for placeholders in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            used = {
                name: value
                for name, value in self.request.get(placeholders, {}).items()
                if name in tokens
            }
            if used:
                unfiltered[placeholders] = used
        cleaned = unfiltered
        found = self._internal(self.operation, cleaned)
        return sum(item_size(item) for item in found.get("Items", []))

    def _add(self, units: DynamoDBUnits) -> None:
        with self.meter._lock:
            total = self.meter.dynamodb
            total.write_units += units.write_units
            total.read_units += units.read_units
            total.refused_writes += units.refused_writes
            total.index_write_units += units.index_write_units
            total.write_units_by_kind.update(units.write_units_by_kind)
            total.written_items.update(units.written_items)
            total.written_bytes.update(units.written_bytes)


def _key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in _KEY_NAMES if name in item}


def _kind(item: Mapping[str, Any] | None) -> str | None:
    value = (item or {}).get("kind", {})
    return str(value["S"]) if "S" in value else None


def _index_entry(item: Mapping[str, Any] | None, attributes: list[str]) -> dict[str, Any] | None:
    """A keys-only index entry: the index's key and the table's key, or None when the item
    lacks the index key (a sparse index holds no entry for it)."""
    if not item or any(name not in item for name in attributes):
        return None
    return {name: item[name] for name in (*attributes, *_KEY_NAMES) if name in item}


def _conditional_refusal(answer: Mapping[str, Any]) -> bool:
    kind = str(answer.get("__type", ""))
    return kind.endswith("ConditionalCheckFailedException") or kind.endswith(
        "TransactionCanceledException"
    )
