"""Delivery: rendering speed, DynamoDB writes per delivered message, sends per second.

Three figures, each next to a baseline, in one run:

1. **Rendering.** The shipped ``abandoned_cart`` email (subject, HTML and text) with a
   10-item cart, rendered by ``nudge.domain.render.Renderer`` (Jinja2's
   SandboxedEnvironment, StrictUndefined), in renders per second: the median of several
   timed runs, after a warm-up that compiles and caches the templates. The context is the
   one ``SendService`` builds (traits, profile facts, signed unsubscribe and open links,
   ``click()`` signing a link per item). Baseline: the same three files and context in a
   plain ``jinja2.Environment`` (autoescape for ``*.html.j2``, as the Renderer does), so
   the difference is the sandbox's cost. Runs alternate, so drift hits both alike; the
   outputs are checked equal.
2. **DynamoDB per delivered message.** In-process on moto (the account of ``dynamodb.py``,
   with the delivery parameters ``tests/integration/test_send.py`` sets): the Send handler
   loaded from its CodeUri, fed SQS records in batches of its BatchSize (10). Every call
   on the client ``nudge.bootstrap`` builds is counted and priced by ``CapacityMeter``
   (failed conditional writes included). (a) N fires to N different people, one each;
   (b) one person getting fires of four triggers, 40 a day for 5 days, so the per-trigger
   cap (1 a day) and the email cap (3 a day) turn most away. Both at a daytime hour in the
   person's timezone (no quiet hours). Baseline: a minimal design, 1 ledger write + 1 cap
   update per delivered message (and 1 ledger write per message decided otherwise).
3. **Sends per second through the local stack.** ``python -m local`` as a subprocess
   (``bench.common.running_stack``); N people identified with an email trait through ``/v1/batch``,
   drained; then N abandoned-cart fires put on the send queue directly with boto3 (the
   queue whose name ends with ``SendQueue``, at the moto endpoint ``/_local/health``
   reports), timed until ``/_local/outbox`` lists all N emails (``POST /_local/drain``
   between looks). Baseline: moto's SES ``SendEmail`` alone, the same N raw messages
   (built with the Renderer and ``build_message``), one at a time with boto3 against the
   same endpoint, as the stack's one Send worker sends them.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import boto3
import requests
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from nudge import bootstrap
from nudge.adapters.email import Outgoing, build_message
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.domain.render import EmailContent, Renderer
from nudge.domain.tokens import ClickClaims, OpenClaims, UnsubscribeClaims, sign_link
from rich.console import Console

from bench.common import REPO, STACK_WRITE_KEY, Figures, median, running_stack, side_by_side
from bench.dynamodb import (
    CapacityMeter,
    Counts,
    _account,
    _load_handler,
)
from local.template import Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["run"]

TEMPLATES = REPO / "triggers" / "templates"
CART_ITEMS = 10
RENDER_RUNS = 7
RENDERS_PER_RUN = 200
RENDER_WARMUP = 20

PEOPLE = 200  # (a): one fire to each of this many people
CAPPED_DAYS = 5  # (b): one person, this many days ...
CAPPED_PER_DAY = 40  # ... of this many fires, 12 minutes apart
SEND_BATCH = 10  # the Send event source's BatchSize
# 10:00 UTC is 11:00 in Berlin: daytime, so no fire waits for quiet hours to end.
SEND_TIME = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ZONE = "Europe/Berlin"
FROM_EMAIL = "nudge@shop.test"
PUBLIC_URL = "https://links.shop.test"
TRACKING_SECRET = "bench-tracking-secret"
WRITE_KEY = "bench-write-key"

STACK_SENDS = 200  # at most 300
STACK_SECONDS = 60.0
STACK_TRACKING_SECRET = "dev-tracking-secret"  # the local stack's default
STACK_FROM_EMAIL = "nudge@example.com"  # the template's default FromEmail, which it verifies
REQUEST_TIMEOUT = 90.0
IDENTIFY_BATCH = 50

# Four triggers, cycled: (trigger, template, event, context).
_CART_EVENT = {"event": "Product Added", "properties": {"cart_id": "c1"}}
_VIEWED = {
    "event": "Product Viewed",
    "properties": {"name": "Grinder", "url": "https://shop.example.com/p/grinder"},
}


def cart(size: int = CART_ITEMS) -> list[dict[str, Any]]:
    """An abandoned cart of ``size`` board games, the fields the trigger collects."""
    return [
        {
            "name": f"Board game #{1000 + n}",
            "price": round(19.99 + n, 2),
            "quantity": 1 + n % 3,
            "image_url": f"https://shop.example.com/i/{1000 + n}.png",
            "url": f"https://shop.example.com/products/{1000 + n}",
        }
        for n in range(size)
    ]


def _fire(
    person: PersonId, trigger: str = "abandoned_cart", template: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A fire as Evaluate enqueues it (the shape of tests/integration/test_send.py)."""
    event = extra.pop("event", _CART_EVENT)
    context = extra.pop("context", {"items": cart()})
    return {
        "fireId": f"fire-{uuid.uuid4().hex[:12]}",
        "trigger": trigger,
        "person": str(person),
        "userId": person.user_id,
        "anonymousId": None,
        "occurrence": f"{trigger}-{uuid.uuid4().hex[:6]}",
        "firedAt": SEND_TIME.isoformat().replace("+00:00", "Z"),
        "channel": "email",
        "template": template or trigger,
        "event": event,
        "context": context,
    }


_TRIGGER_CYCLE: list[Callable[[PersonId], dict[str, Any]]] = [
    lambda person: _fire(person, "abandoned_cart"),
    lambda person: _fire(person, "product_interest", event=_VIEWED, context={}),
    lambda person: _fire(person, "re_engagement", context={}),
    lambda person: _fire(person, "winback", template="re_engagement", context={}),
]


# ---- 1. rendering ------------------------------------------------------------------------


def _render_context(person: PersonId, address: str, fire_id: str, base: str, key: bytes) -> Any:
    """What SendService._context gives an abandoned-cart email."""
    opened = OpenClaims(fire_id=fire_id, person=person, trigger="abandoned_cart")
    unsubscribe = UnsubscribeClaims(fire_id, person, "abandoned_cart", email=address)
    profile = Profile(person=person, user_id=person.user_id)
    return {
        "items": cart(),
        "traits": {"email": address, "first_name": "Ada", "timezone": ZONE},
        "profile": profile.facts(),
        "event": _CART_EVENT,
        "user_id": person.user_id,
        "trigger": "abandoned_cart",
        "links": {
            "unsubscribe": f"{base}/u/{sign_link(unsubscribe, key)}",
            "open_pixel": f"{base}/o/{sign_link(opened, key)}",
        },
        "click": lambda url: (
            f"{base}/c/{sign_link(ClickClaims(fire_id, person, 'abandoned_cart', url=url), key)}"
            if isinstance(url, str) and url.startswith(("https://", "http://"))
            else "#"
        ),
    }


class _PlainRenderer:
    """The baseline: the Renderer's three files in a plain, non-sandboxed Environment."""

    def __init__(self) -> None:
        self._environment = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )

    def email(self, name: str, context: Mapping[str, Any]) -> EmailContent:
        get = self._environment.get_template
        return EmailContent(
            subject=" ".join(get(f"{name}.subject.j2").render(**context).split()),
            html=get(f"{name}.html.j2").render(**context),
            text=get(f"{name}.txt.j2").render(**context),
        )


def _rendering() -> dict[str, Any]:
    context = _render_context(
        PersonId.user("ada"), "ada@example.com", "fire-bench", PUBLIC_URL, TRACKING_SECRET.encode()
    )
    sandboxed, plain = Renderer(TEMPLATES), _PlainRenderer()
    ours, theirs = (
        sandboxed.email("abandoned_cart", context),
        plain.email("abandoned_cart", context),
    )
    if ours != theirs:
        raise RuntimeError("the plain Environment rendered another message than the Renderer")
    if ours.html.count("<li>") != CART_ITEMS:
        raise RuntimeError(f"expected {CART_ITEMS} items in the HTML")

    def timed(render: Callable[[], object]) -> float:
        started = time.perf_counter()
        for _ in range(RENDERS_PER_RUN):
            render()
        return RENDERS_PER_RUN / (time.perf_counter() - started)

    def render_ours() -> object:
        return sandboxed.email("abandoned_cart", context)

    def render_theirs() -> object:
        return plain.email("abandoned_cart", context)

    for _ in range(RENDER_WARMUP):
        render_ours()
        render_theirs()

    def sign_links() -> object:  # what click() costs inside each render, in both columns
        return [context["click"](item["url"]) for item in context["items"]]

    ours_rates, theirs_rates, signing_rates = [], [], []
    for _ in range(RENDER_RUNS):  # alternating, so load changes hit both
        ours_rates.append(timed(render_ours))
        theirs_rates.append(timed(render_theirs))
        signing_rates.append(timed(sign_links))
    sizes = {
        "subject_chars": len(ours.subject),
        "html_bytes": len(ours.html.encode()),
        "text_bytes": len(ours.text.encode()),
    }
    return {
        "nudge_renders_per_second": median(ours_rates),
        "plain_renders_per_second": median(theirs_rates),
        "nudge_runs": ours_rates,
        "plain_runs": theirs_rates,
        "click_signing_us_per_render": 1e6 / median(signing_rates),
        "renders_per_run": RENDERS_PER_RUN,
        "items": CART_ITEMS,
        **sizes,
    }


# ---- 2. DynamoDB per delivered message, in-process on moto ---------------------------------


def _send_account() -> contextlib.AbstractContextManager[tuple[Template, DynamoDBClient, str]]:
    """dynamodb.py's account, with the delivery parameters (SES identity included)."""
    parameters = {
        "TrackingSecret": TRACKING_SECRET,
        "FromEmail": FROM_EMAIL,
        "PublicUrl": PUBLIC_URL,
    }
    return _account(parameters)


def _record(fire: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """One SQS record as Lambda gets it; SentTimestamp is the time delivery is decided for."""
    millis = str(int(at.timestamp() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4().hex}",
        "body": json.dumps(fire, separators=(",", ":")),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": millis,
            "SenderId": "AROAEXAMPLE:nudge-local-Evaluate",
            "ApproximateFirstReceiveTimestamp": millis,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:nudge-local-SendQueue",
        "awsRegion": "us-east-1",
    }


@dataclass
class SendRun:
    label: str
    counts: Counts
    outcomes: Counter[str]
    ses_calls: int
    seconds: float

    @property
    def delivered(self) -> int:
        return self.outcomes["sent"]

    @property
    def decided(self) -> int:
        return sum(self.outcomes.values())

    def minimal_writes(self) -> int:
        """1 ledger write + 1 cap update per delivered; 1 ledger write per other decision."""
        return 2 * self.delivered + (self.decided - self.delivered)

    def figures(self) -> dict[str, Any]:
        delivered, decided = max(1, self.delivered), max(1, self.decided)
        counts = self.counts
        return {
            "delivered": self.delivered,
            "decided": self.decided,
            "outcomes": dict(self.outcomes),
            "ses_send_email_calls": self.ses_calls,
            "requests_per_delivered": counts.requests / delivered,
            "write_requests_per_delivered": counts.write_requests / delivered,
            "read_requests_per_delivered": counts.read_requests / delivered,
            "wcu_per_delivered": counts.wcu / delivered,
            "rcu_per_delivered": counts.rcu / delivered,
            "write_requests_per_decided": counts.write_requests / decided,
            "wcu_per_decided": counts.wcu / decided,
            "requests_per_decided": counts.requests / decided,
            "minimal_writes_per_delivered": self.minimal_writes() / delivered,
            "minimal_writes_per_decided": self.minimal_writes() / decided,
            "by_operation": dict(counts.by_operation),
            "seconds": self.seconds,
        }


def _send_run(
    label: str,
    people: Mapping[PersonId, dict[str, Any]],
    fires: list[tuple[dict[str, Any], datetime]],
) -> SendRun:
    with _send_account() as (template, dynamodb, table):
        refused = EventStore(dynamodb, table).save_profiles(
            [
                Profile(person=person, user_id=person.user_id, traits=traits)
                for person, traits in people.items()
            ]
        )
        if refused:
            raise RuntimeError(f"profiles not stored: {sorted(refused)[:3]}")
        send = _load_handler(template, "Send")
        meter = CapacityMeter(bootstrap.dynamodb_client(), dynamodb)
        ses_calls = Counter[str]()

        def count_ses(model: Any, **_: Any) -> None:
            ses_calls[model.name] += 1

        bootstrap.sesv2_client().meta.events.register("after-call.sesv2.*", count_ses)
        started = time.perf_counter()
        for start in range(0, len(fires), SEND_BATCH):
            records = [_record(fire, at) for fire, at in fires[start : start + SEND_BATCH]]
            response = send({"Records": records})
            if response.get("batchItemFailures"):
                raise RuntimeError(f"Send reported failures: {response}")
        seconds = time.perf_counter() - started
        store = EngineStore(dynamodb, table, timedelta(days=30))
        outcomes = Counter(str(d.get("outcome")) for d in store.decisions(list(people)))
        return SendRun(label, meter.counts, outcomes, ses_calls["SendEmail"], seconds)


def _daytime_traits(person: PersonId) -> dict[str, Any]:
    return {"email": f"{person.value}@example.com", "timezone": ZONE}


def _many_people() -> SendRun:
    everyone = [PersonId.user(f"person-{n:04d}") for n in range(PEOPLE)]
    people = {person: _daytime_traits(person) for person in everyone}
    fires = [(_fire(person), SEND_TIME) for person in people]
    return _send_run(f"{PEOPLE} people, 1 abandoned-cart fire each", people, fires)


def _one_person() -> SendRun:
    person = PersonId.user("ada")
    fires = []
    for day in range(CAPPED_DAYS):
        for n in range(CAPPED_PER_DAY):  # 11:00 to 18:48 Berlin time
            at = SEND_TIME + timedelta(days=day, minutes=12 * n)
            fires.append((_TRIGGER_CYCLE[n % len(_TRIGGER_CYCLE)](person), at))
    return _send_run(
        f"1 person, {len(fires)} fires of 4 triggers over {CAPPED_DAYS} days (caps engaged)",
        {person: _daytime_traits(person)},
        fires,
    )


# ---- 3. sends per second through the local stack -----------------------------------------


def _daytime_zone(now: datetime) -> str:
    """A whole-hour zone where it is about 13:00 now, so no send meets quiet hours."""
    offset = (13 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset  # Etc/GMT-14 .. Etc/GMT+9
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc's signs are inverted
    hour = now.astimezone(ZoneInfo(name)).hour
    if not 8 <= hour < 21:
        raise RuntimeError(f"{name} is at {hour}:00, inside quiet hours")
    return name


def _aws(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _emails_listed(base: str, fire_ids: set[str]) -> int:
    response = requests.get(f"{base}/_local/outbox", timeout=REQUEST_TIMEOUT)
    response.raise_for_status()
    return sum(1 for entry in response.json() if entry.get("fire") in fire_ids)


def _identify(base: str, users: list[str], zone: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    session = requests.Session()
    session.auth = (STACK_WRITE_KEY, "")
    for start in range(0, len(users), IDENTIFY_BATCH):
        batch = [
            {
                "type": "identify",
                "userId": user,
                "anonymousId": f"anon-{user}",
                "messageId": f"identify-{user}",
                "timestamp": now,
                "sentAt": now,
                "traits": {"email": f"{user}@example.com", "first_name": "Ada", "timezone": zone},
            }
            for user in users[start : start + IDENTIFY_BATCH]
        ]
        response = session.post(f"{base}/v1/batch", json={"batch": batch}, timeout=30)
        response.raise_for_status()
    drained = requests.post(f"{base}/_local/drain", timeout=REQUEST_TIMEOUT)
    drained.raise_for_status()


def _send_queue(sqs: SQSClient) -> str:
    urls = sqs.list_queues().get("QueueUrls", [])
    found = [url for url in urls if url.rsplit("/", 1)[-1].endswith("SendQueue")]
    if len(found) != 1:
        raise RuntimeError(f"expected one queue named *SendQueue, found {urls}")
    return found[0]


def _raw_messages(
    users: list[str], fires: list[dict[str, Any]], base: str
) -> list[tuple[str, bytes]]:
    """The messages Send builds for these fires: rendered, then one MIME message each."""
    renderer, key = Renderer(TEMPLATES), STACK_TRACKING_SECRET.encode()
    raw = []
    for user, fire in zip(users, fires, strict=True):
        address = f"{user}@example.com"
        person = PersonId.parse(fire["person"])
        context = _render_context(person, address, fire["fireId"], base, key)
        outgoing = Outgoing(
            sender=STACK_FROM_EMAIL,
            to=address,
            content=renderer.email("abandoned_cart", context),
            unsubscribe_url=context["links"]["unsubscribe"],
            headers={"X-Nudge-Trigger": "abandoned_cart", "X-Nudge-Fire": fire["fireId"]},
        )
        raw.append((address, build_message(outgoing, time.time()).as_bytes()))
    return raw


def _ses_alone(endpoint: str, raw: list[tuple[str, bytes]]) -> dict[str, Any]:
    ses: SESV2Client = _aws("sesv2", endpoint)
    configuration_sets = ses.list_configuration_sets().get("ConfigurationSets", [])
    extra = {"ConfigurationSetName": configuration_sets[0]} if configuration_sets else {}
    started = time.perf_counter()
    for address, message in raw:
        ses.send_email(
            FromEmailAddress=STACK_FROM_EMAIL,
            Destination={"ToAddresses": [address]},
            Content={"Raw": {"Data": message}},
            **extra,  # type: ignore[arg-type]
        )
    seconds = time.perf_counter() - started
    return {"sent": len(raw), "seconds": seconds, "sends_per_second": len(raw) / seconds}


def _through_stack(count: int) -> dict[str, Any]:
    count = min(count, 300)
    with running_stack() as stack:
        health = requests.get(f"{stack.base}/_local/health", timeout=10).json()
        endpoint = str(health["awsEndpoint"])
        zone = _daytime_zone(datetime.now(UTC))
        users = [f"send-{n:04d}" for n in range(count)]
        identify_started = time.perf_counter()
        _identify(stack.base, users, zone)
        identify_seconds = time.perf_counter() - identify_started
        sqs: SQSClient = _aws("sqs", endpoint)
        queue = _send_queue(sqs)
        fires = [_fire(PersonId.user(user)) for user in users]
        fire_ids = {fire["fireId"] for fire in fires}
        started = time.perf_counter()
        for start in range(0, len(fires), 10):
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(n), "MessageBody": json.dumps(fire, separators=(",", ":"))}
                    for n, fire in enumerate(fires[start : start + 10])
                ],
            )
        enqueued = time.perf_counter() - started
        listed, looks = 0, 0
        deadline = started + STACK_SECONDS
        while time.perf_counter() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{stack.base}/_local/drain", timeout=REQUEST_TIMEOUT)
            looks += 1
            listed = _emails_listed(stack.base, fire_ids)
            if listed >= count:
                break
        seconds = time.perf_counter() - started
        raw = _raw_messages(users, fires, stack.base)
        baseline = _ses_alone(endpoint, raw)
    return {
        "count": count,
        "zone": zone,
        "identify_and_drain_seconds": identify_seconds,
        "enqueue_seconds": enqueued,
        "seconds": seconds,
        "listed": listed,
        "outbox_looks": looks,
        "sends_per_second": listed / seconds if seconds else 0.0,
        "raw_message_bytes": median([float(len(message)) for _, message in raw]),
        "ses_alone": baseline,
    }


# ---- the report ----------------------------------------------------------------------------


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _pair(ours: float, theirs: float) -> str:
    return f"{_f(ours)} | {_f(theirs)}"


def run(console: Console) -> Figures:
    rendering = _rendering()
    nudge_rate, plain_rate = (
        rendering["nudge_renders_per_second"],
        rendering["plain_renders_per_second"],
    )
    console.print(
        side_by_side(
            f"Rendering abandoned_cart (subject + HTML + text), {CART_ITEMS} items,"
            f" median of {RENDER_RUNS} runs x {RENDERS_PER_RUN}",
            ["", "Nudge: Renderer (sandboxed)", "baseline: plain jinja2 Environment"],
            [
                ["renders/s", _f(nudge_rate, 0), _f(plain_rate, 0)],
                ["µs per render", _f(1e6 / nudge_rate, 0), _f(1e6 / plain_rate, 0)],
                [
                    f"of which click() signing {CART_ITEMS} links (µs)",
                    _f(rendering["click_signing_us_per_render"], 0),
                    _f(rendering["click_signing_us_per_render"], 0),
                ],
                [
                    "slowest / fastest run (renders/s)",
                    f"{min(rendering['nudge_runs']):.0f} / {max(rendering['nudge_runs']):.0f}",
                    f"{min(rendering['plain_runs']):.0f} / {max(rendering['plain_runs']):.0f}",
                ],
            ],
        )
    )
    console.print(
        f"  sandbox cost: {nudge_rate / plain_rate:.2f}x the plain rate;"
        f" output identical (HTML {rendering['html_bytes']} B, text {rendering['text_bytes']} B)"
    )

    runs = [_many_people(), _one_person()]
    rows = []
    for each in runs:
        f = each.figures()
        rows.append(
            [
                each.label,
                f"{each.delivered} / {each.decided}",
                _pair(f["write_requests_per_delivered"], f["minimal_writes_per_delivered"]),
                _pair(f["write_requests_per_decided"], f["minimal_writes_per_decided"]),
                _f(f["wcu_per_delivered"]),
                _f(f["wcu_per_decided"]),
                _f(f["requests_per_delivered"]),
            ]
        )
    rows.append(["minimal design, per message", "", "2.00", "2.00 sent, 1.00 not", "", "", ""])
    console.print(
        side_by_side(
            "DynamoDB per message, Send handler in-process on moto (Nudge | minimal design)",
            [
                "workload",
                "delivered / decided",
                "writes / delivered",
                "writes / decided",
                "WCU / delivered",
                "WCU / decided",
                "requests / delivered",
            ],
            rows,
        )
    )
    console.print(
        "  minimal design = 1 ledger write + 1 cap update per delivered message,"
        " 1 ledger write per message decided otherwise"
    )
    for each in runs:
        console.print(
            f"  {each.label}: "
            + ", ".join(f"{name} {n}" for name, n in each.outcomes.most_common())
            + f"; SES SendEmail {each.ses_calls}; requests: "
            + ", ".join(f"{name} {n}" for name, n in sorted(each.counts.by_operation.items()))
        )

    stack = _through_stack(STACK_SENDS)
    ses = stack["ses_alone"]
    console.print(
        side_by_side(
            f"Sends through the local stack, {stack['count']} abandoned-cart fires"
            f" ({CART_ITEMS} items) put on the send queue",
            ["", "Nudge: queue → Send → SES (moto)", "baseline: moto SES SendEmail alone"],
            [
                ["sends/s", _f(stack["sends_per_second"], 1), _f(ses["sends_per_second"], 1)],
                ["emails", f"{stack['listed']} of {stack['count']}", f"{ses['sent']}"],
                ["seconds", _f(stack["seconds"], 1), _f(ses["seconds"], 1)],
                [
                    "ms per send",
                    _f(1000 / max(stack["sends_per_second"], 1e-9), 1),
                    _f(1000 / ses["sends_per_second"], 1),
                ],
            ],
        )
    )
    console.print(
        f"  enqueue {stack['enqueue_seconds']:.1f} s (in the Nudge time);"
        f" {stack['outbox_looks']} drain + outbox looks; raw message"
        f" {stack['raw_message_bytes']:.0f} B; people identified and drained in"
        f" {stack['identify_and_drain_seconds']:.1f} s; timezone {stack['zone']}"
    )
    return {
        "rendering": rendering,
        "dynamodb": {
            "many_people": runs[0].figures(),
            "one_person_capped": runs[1].figures(),
            "minimal_writes_per_delivered": 2,
        },
        "local_stack": stack,
    }
