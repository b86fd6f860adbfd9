"""A webhook receiver on 127.0.0.1, for the benches and the tests: the CRM that Send's
webhooks reach when nothing real is there.

It records every request it is sent and answers each with the next answer of its script,
then with ``otherwise``: a status, a redirect, or no answer at all (``HANG``, ``CLOSE``,
``RESET``), the ways a receiver fails that a sender must tell apart. The benches
(``fault_world``, ``load``) and the tests (integration and e2e) all use this one, so a
misbehaviour means the same wherever it is measured. It lives in ``bench`` because the tests
already import the benches' worlds from here, and ``local`` (the stack ``make run`` starts)
has no use for it: the dependencies stay tests -> bench -> local.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "CLOSE",
    "HANG",
    "RESET",
    "Answer",
    "Received",
    "Receiver",
    "Redirect",
    "Silence",
]


class Silence(Enum):
    """Answers that are no HTTP answer."""

    HANG = "hang"  # holds the request past the sender's timeout, then closes, unanswered
    CLOSE = "close"  # reads the request and closes the connection (FIN), unanswered
    RESET = "reset"  # reads the request and resets the connection (RST), unanswered


HANG, CLOSE, RESET = Silence.HANG, Silence.CLOSE, Silence.RESET


@dataclass(frozen=True)
class Redirect:
    location: str
    status: int = 302


Answer = int | Redirect | Silence


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # as sent
    body: bytes
    status: int | None  # what the receiver answered; None: it hung, closed or reset
    at: datetime | None = None  # by the receiver's clock, when it was given one

    def header(self, name: str) -> str | None:
        """A header's value, its name in any case (HTTP's names are case-insensitive)."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass
class Receiver:
    """``script``: the answers to the first requests, in order; then ``otherwise``.
    ``clock``: what ``Received.at`` is read from (a virtual clock: the fault world's)."""

    script: list[Answer] = field(default_factory=list)
    otherwise: Answer = 204
    path: str = "/hook"
    hang_seconds: float = 8.0
    clock: Callable[[], datetime] | None = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "the receiver is not started"
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self, tls: ssl.SSLContext | None = None, name: str = "receiver") -> Receiver:
        """Serves on a free loopback port, in a thread, until ``stop``; HTTPS with ``tls``."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True  # a hanging request does not hold up the shutdown
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), name=name, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()  # whatever still hangs lets go
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    @contextlib.contextmanager
    def serving(self, name: str = "receiver") -> Iterator[Receiver]:
        self.start(name=name)
        try:
            yield self
        finally:
            self.stop()

    def reset(self, script: list[Answer] | None = None) -> None:
        """Forgets what it was sent, and answers by ``script`` from now on."""
        self.released.set()  # whatever still hangs from before lets go
        with self.lock:
            self.requests.clear()
            self.script = list(script or [])
            self.released = threading.Event()

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> list[Received]:
        """The requests it answered 2xx: what a CRM would have acted on."""
        return [r for r in self.received() if r.status is not None and 200 <= r.status < 300]

    def take(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Records a request with the answer it gets, and returns that answer."""
        with self.lock:
            answer = self.script.pop(0) if self.script else self.otherwise
            status = answer.status if isinstance(answer, Redirect) else answer
            at = self.clock() if self.clock is not None else None
            kept = status if isinstance(status, int) else None
            self.requests.append(Received(path, headers, body, kept, at))
            return answer


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = receiver.take(self.path, dict(self.headers.items()), body)
            if isinstance(answer, Silence):
                self._say_nothing(answer)
            else:
                self._reply(answer)

        def _say_nothing(self, silence: Silence) -> None:
            if silence is HANG:
                receiver.released.wait(receiver.hang_seconds)
            elif silence is RESET:
                # SO_LINGER with a zero timeout: close() sends RST, not FIN.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            self.close_connection = True

        def _reply(self, answer: int | Redirect) -> None:
            try:
                if isinstance(answer, Redirect):
                    self.send_response(answer.status)
                    self.send_header("Location", answer.location)
                else:
                    self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting: nobody to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: a bench prints its table, pytest its failures

    return Handler
