"""End-to-end fixtures: the local stack (`python -m local`) as a real process, over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests

from bench.receiver import Receiver

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
WRITE_KEY = "dev-write-key"
TRACKING_SECRET = "e2e-tracking-secret"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
FROM_EMAIL = "shop@nudge-e2e.example"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e-crm-webhook-secret-for-nudge").decode()
# How long a hanging receiver holds a request: past the webhook sender's 5 s timeout.
HANG_SECONDS = 8.0


def basic_auth(write_key: str) -> str:
    """Segment's scheme: HTTP Basic with the write key as user name and no password."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")


class StackClient:
    """A running local stack as the tests see it: its URLs and a few calls."""

    def __init__(
        self,
        base_url: str,
        write_key: str,
        aws_endpoint: str,
        websocket_url: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.write_key = write_key
        self.aws_endpoint = aws_endpoint
        self.websocket_url = websocket_url
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return self.base_url + path

    def post(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> requests.Response:
        """POST a body (bytes as they are, str as UTF-8, anything else as JSON)."""
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode("utf-8")
        sent = {"Content-Type": "application/json"}
        if auth:
            sent["Authorization"] = basic_auth(self.write_key)
        sent.update(headers or {})
        return self.session.post(self.url(path), data=data, headers=sent, timeout=REQUEST_TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url(path), timeout=REQUEST_TIMEOUT)

    def drain(self) -> dict[str, Any]:
        response = self.session.post(self.url("/_local/drain"), timeout=REQUEST_TIMEOUT * 2)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def user(self, user_id: str) -> dict[str, Any] | None:
        """What /_local/users/{id} shows after a drain; None when it knows nobody by that id."""
        self.drain()
        response = self.get("/_local/users/" + quote(user_id, safe=""))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        view: dict[str, Any] = response.json()
        return view

    def events(self, user_id: str) -> list[dict[str, Any]]:
        view = self.user(user_id)
        return list(view["events"]) if view else []

    def now(self) -> datetime:
        """The stack's virtual clock: what every beacon is received at."""
        response = self.get("/_local/clock")
        response.raise_for_status()
        return datetime.fromisoformat(str(response.json()["now"]))

    def reset(self) -> None:
        self.session.post(self.url("/_local/reset"), timeout=REQUEST_TIMEOUT).raise_for_status()

    def connections(self, user_id: str) -> list[str]:
        """The WebSocket connections the stack has on record for the user's open pages."""
        from nudge.adapters import keys
        from nudge.domain.person import PersonId

        table = self.aws("dynamodb")
        name = next(n for n in table.list_tables()["TableNames"] if n.endswith("-Table"))
        items = table.query(
            TableName=name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :w)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.person_pk(PersonId.user(user_id))},
                ":w": {"S": keys.CONNECTION_SK_PREFIX},
            },
        )["Items"]
        return [str(item["sk"]["S"]).removeprefix(keys.CONNECTION_SK_PREFIX) for item in items]

    def aws(self, service: str) -> Any:
        """A boto3 client for the stack's moto endpoint."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            response = requests.get(base_url + "/_local/health", timeout=2)
            if response.status_code == 200:
                health: dict[str, Any] = response.json()
                return health
        except requests.RequestException:
            pass
        time.sleep(0.25)
    output = log.read_text(errors="replace")
    pytest.fail(f"local stack did not become healthy (exit code {process.poll()}):\n{output}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _run_stack(
    template: Path | None, tmp: Path, extra_env: dict[str, str] | None = None
) -> Iterator[StackClient]:
    """`python -m local` on a free port, healthy before it is yielded, stopped after."""
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "NUDGE_WRITE_KEY": WRITE_KEY,
        "NUDGE_TRACKING_SECRET": TRACKING_SECRET,
        "NUDGE_SOCKET_PORT": "0",  # the WebSocket API on a free port too
        **(extra_env or {}),
    }
    env.pop("NUDGE_TEMPLATE", None)
    if template is not None:
        env["NUDGE_TEMPLATE"] = str(template)
    log = tmp / f"stack-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(base_url, process, log)
        yield StackClient(
            base_url, WRITE_KEY, str(health["awsEndpoint"]), health.get("websocketUrl")
        )
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def stack_logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def stack(stack_logs: Path) -> Iterator[StackClient]:
    """The application's own template.yaml and shipped triggers."""
    yield from _run_stack(None, stack_logs)


@pytest.fixture(scope="session")
def demo_stack(stack_logs: Path) -> Iterator[StackClient]:
    """As `make run` serves it: the demo's triggers (product_offer after 30 s, not 120)."""
    demo_triggers = str(REPO / "local" / "demo" / "triggers")
    yield from _run_stack(None, stack_logs, {"NUDGE_TRIGGERS_DIR": demo_triggers})


@pytest.fixture(scope="session")
def budget_stack(stack_logs: Path) -> Iterator[StackClient]:
    """template.yaml with no work budget: each clock advance stops after one due moment."""
    yield from _run_stack(None, stack_logs, {"NUDGE_ADVANCE_BUDGET": "0"})


@pytest.fixture(scope="session")
def flaky_stack(stack_logs: Path) -> Iterator[StackClient]:
    """A test-only template: a stream feeding a Recorder that fails what it is told to."""
    yield from _run_stack(FIXTURES / "flaky" / "template.yaml", stack_logs)


@pytest.fixture(scope="session")
def crm_receiver() -> Iterator[Receiver]:
    """The CRM the delivery stack's webhooks go to (NUDGE_CRM_WEBHOOK_URL): it answers 204
    unless a test scripts otherwise (``Receiver.reset``)."""
    receiver = Receiver(path="/crm/tasks", hang_seconds=HANG_SECONDS)
    with receiver.serving("crm-receiver"):
        yield receiver


@pytest.fixture(scope="session")
def delivery_stack(crm_receiver: Receiver, stack_logs: Path) -> Iterator[StackClient]:
    """template.yaml with a sender, a webhook secret and the loopback CRM receiver."""
    settings = {
        "NUDGE_FROM_EMAIL": FROM_EMAIL,
        "NUDGE_CRM_WEBHOOK_URL": crm_receiver.url,
        "NUDGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    yield from _run_stack(None, stack_logs, settings)


@pytest.fixture(autouse=True)
def _fresh_data(request: pytest.FixtureRequest) -> None:
    """Each test starts from empty tables and queues in whichever stack it uses, and with a
    receiver that has seen nothing and answers 204."""
    for name in ("stack", "flaky_stack", "delivery_stack", "budget_stack"):
        if name in request.fixturenames:
            client: StackClient = request.getfixturevalue(name)
            client.reset()
    if "crm_receiver" in request.fixturenames:
        receiver: Receiver = request.getfixturevalue("crm_receiver")
        receiver.reset()
