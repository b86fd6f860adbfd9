"""Signed webhooks (the Standard Webhooks spec), sent only where they cannot reach inside.

A webhook URL comes from whoever configures a trigger, so it is untrusted: it must not be
a way to reach the metadata service, the VPC or the Lambda's own loopback. The host is
resolved once, every address it resolves to is checked, and the connection goes to a
checked address (no second lookup that DNS rebinding could answer differently), while the
Host header, SNI and certificate check still name the URL's host. Redirects are never
followed: a 3xx could point anywhere, and following it would skip the checks.

Signing is ``standardwebhooks``' own ``Webhook.sign``: the reference implementation of
the spec, so receivers verifying with any Standard Webhooks library agree with us. With
several secrets (a rotation), each one signs and the ``webhook-signature`` header carries
them all, space-delimited, as the spec provides "to support zero downtime secret rotation":
a receiver holding either secret verifies the webhook.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from nudge import __version__
from nudge.service.delivery_ports import WebhookResult

__all__ = ["USER_AGENT", "UnsafeUrl", "WebhookResult", "WebhookSender", "check_url"]

USER_AGENT = f"Nudge-Webhooks/{__version__}"
Resolver = Callable[[str], list[str]]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_LOCATION_SHOWN = 200  # characters of a redirect target quoted in a reason


class UnsafeUrl(Exception):
    """The URL may not be sent to; the message says why."""


def _system_resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as in the URL, lower case, without brackets
    port: int
    path: str
    addresses: tuple[str, ...]


def check_url(
    url: str,
    *,
    allow_hosts: frozenset[str] = frozenset(),
    resolve: Resolver = _system_resolve,
) -> list[str]:
    """Returns the addresses the URL may be connected to, or raises UnsafeUrl.

    A failed lookup raises ``OSError`` (it may succeed later; it is not a verdict on the URL).
    """
    return list(_target(url, allow_hosts, resolve).addresses)


def _target(url: str, allow_hosts: frozenset[str], resolve: Resolver) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl(f"not a valid URL: {error}") from error
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not sent; refusing rather than dropping them")
    allowed = host in {name.lower().rstrip(".") for name in allow_hosts}
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl(f"scheme {parts.scheme!r} is not allowed; use https")
    if parts.scheme == "http" and not allowed:
        raise UnsafeUrl(f"plain http is not allowed for {host}; use https")
    addresses = _addresses(host, resolve)
    if not allowed:
        for address in addresses:
            why = _forbidden(ipaddress.ip_address(address))
            if why is not None:
                raise UnsafeUrl(f"{host} resolves to {address}, {why}")
    path = parts.path or "/"
    return _Target(
        scheme=parts.scheme,
        host=host,
        port=port if port is not None else (443 if parts.scheme == "https" else 80),
        path=f"{path}?{parts.query}" if parts.query else path,
        addresses=tuple(addresses),
    )


def _addresses(host: str, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]  # a literal: nothing to look up
    except ValueError:
        pass
    found = resolve(host)
    if not found:
        raise OSError(f"{host} resolves to no address")
    addresses = []
    for raw in found:
        try:
            addresses.append(str(ipaddress.ip_address(raw)))
        except ValueError as error:
            raise UnsafeUrl(f"{host} resolves to {raw!r}, which is not an address") from error
    return addresses


def _forbidden(address: _IP) -> str | None:
    """Why a connection to this address could reach something internal, or None."""
    if address in _METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        why = None if embedded is None else _forbidden(embedded)
        if why is not None:
            return f"which carries {embedded}, {why}"
        if address.ipv4_mapped is not None or address in _NAT64:
            return None  # delivered to the (public) IPv4 address it carries
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a CGNAT address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    ]
    return next((why for failed, why in checks if failed), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, NAT64, 6to4 and Teredo forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _real_now() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    def __init__(
        self,
        secrets: str | Iterable[str],
        *,
        allow_hosts: frozenset[str] = frozenset(),
        timeout: float = 5.0,
        resolve: Resolver = _system_resolve,
        wall_clock: Callable[[], datetime] = _real_now,
    ) -> None:
        listed = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        if not listed or not all(secret.startswith("whsec_") for secret in listed):
            raise ValueError("a webhook secret has the form whsec_<base64>")
        self._signers = tuple(Webhook(secret) for secret in listed)
        self._allow_hosts = allow_hosts
        self._timeout = timeout
        self._resolve = resolve
        self._wall_clock = wall_clock
        self._tls = ssl.create_default_context()  # verifies the chain and the hostname

    @property
    def timeout(self) -> float:
        return self._timeout

    def send(self, url: str, message_id: str, payload: dict[str, Any]) -> WebhookResult:
        try:
            target = _target(url, self._allow_hosts, self._resolve)
        except UnsafeUrl as error:
            return WebhookResult(False, None, False, f"unsafe URL: {error}")
        except OSError as error:
            return WebhookResult(False, None, True, f"could not resolve the host: {error}")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        # The stamp is the real time of this attempt, not the business time the fire was
        # decided for: receivers check it against their own clock (5 minutes either way),
        # and the local stack's virtual clock can be days ahead of theirs.
        attempted = self._wall_clock()
        if attempted.tzinfo is None:
            raise ValueError("the wall clock must be timezone-aware")
        # sign() replaces the tzinfo with UTC rather than converting, so convert first.
        at = attempted.astimezone(UTC)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(s.sign(message_id, at, body) for s in self._signers),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "connection": "close",
        }
        return self._post(target, body.encode(), headers)

    def _post(self, target: _Target, body: bytes, headers: dict[str, str]) -> WebhookResult:
        connection = self._connection(target)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            return _result(response.status, response.getheader("location"))
        except TimeoutError:
            return WebhookResult(False, None, True, f"no answer within {self._timeout:g}s")
        except ssl.SSLError as error:
            return WebhookResult(False, None, True, f"TLS failed: {error}")
        except (OSError, http.client.HTTPException) as error:
            return WebhookResult(False, None, True, f"connection failed: {error!r}")
        finally:
            connection.close()

    def _connection(self, target: _Target) -> http.client.HTTPConnection:
        if target.scheme == "https":
            return _PinnedHTTPSConnection(
                target.host, target.port, target.addresses, self._timeout, self._tls
            )
        return _PinnedHTTPConnection(target.host, target.port, target.addresses, self._timeout)


def _result(status: int, location: str | None) -> WebhookResult:
    if 200 <= status < 300:
        return WebhookResult(True, status, False, f"delivered ({status})")
    if 300 <= status < 400:
        where = repr((location or "")[:_LOCATION_SHOWN]) if location else "nowhere"
        return WebhookResult(False, status, False, f"redirect ({status}) to {where} not followed")
    retryable = status >= 500 or status in (408, 429)
    return WebhookResult(False, status, retryable, f"receiver answered {status}")


# http.client names the URL's host in the Host header and, for TLS, in SNI and the
# certificate check; only the TCP connect is redirected to the addresses already checked.


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: Sequence[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _open_socket(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(
        self,
        host: str,
        port: int,
        addresses: Sequence[str],
        timeout: float,
        tls: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._addresses = addresses
        self._tls = tls

    def connect(self) -> None:
        raw = _open_socket(self._addresses, self.port, self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _open_socket(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """The first checked address that accepts; a refusal moves on, a timeout does not."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except TimeoutError:
            raise
        except OSError as refused:
            error = refused
    raise error
