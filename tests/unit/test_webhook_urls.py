"""Which webhook URLs may be sent to: https, and only to public addresses unless allow-listed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nudge.adapters.webhook import UnsafeUrl, check_url

PUBLIC = "93.184.215.14"
LOCAL = frozenset({"127.0.0.1"})


def resolver(*addresses: str) -> Callable[[str], list[str]]:
    def resolve(host: str) -> list[str]:
        return list(addresses)

    return resolve


def test_http_is_refused_outside_the_allowlist() -> None:
    """A plain-http URL to a host not in allow_hosts is refused, naming the scheme."""
    # given
    url = "http://hooks.example.com/nudge"

    # when / then
    with pytest.raises(UnsafeUrl, match="http"):
        check_url(url, resolve=resolver(PUBLIC))


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/", "file:///etc/passwd", "hooks.example"])
def test_schemes_other_than_https_are_refused(url: str) -> None:
    """Only https (and http for allow-listed hosts) is a webhook URL."""
    # given
    resolve = resolver(PUBLIC)

    # when / then
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_hosts=LOCAL, resolve=resolve)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        pytest.param("10.0.0.1", "private", id="10/8"),
        pytest.param("172.16.5.4", "private", id="172.16/12"),
        pytest.param("192.168.1.1", "private", id="192.168/16"),
        pytest.param("127.0.0.1", "loopback", id="v4 loopback"),
        pytest.param("169.254.10.1", "link-local", id="v4 link-local"),
        pytest.param("169.254.169.254", "metadata", id="v4 metadata"),
        pytest.param("100.64.0.1", "CGNAT", id="CGNAT low"),
        pytest.param("100.127.255.254", "CGNAT", id="CGNAT high"),
        pytest.param("224.0.0.1", "multicast", id="v4 multicast"),
        pytest.param("240.0.0.1", "reserved", id="v4 reserved"),
        pytest.param("0.0.0.0", "unspecified", id="v4 unspecified"),
        pytest.param("::1", "loopback", id="v6 loopback"),
        pytest.param("fe80::1", "link-local", id="v6 link-local"),
        pytest.param("fc00::1", "private", id="v6 unique local"),
        pytest.param("fd00:ec2::254", "metadata", id="v6 metadata"),
        pytest.param("ff02::1", "multicast", id="v6 multicast"),
        pytest.param("::", "unspecified", id="v6 unspecified"),
        pytest.param("::ffff:10.0.0.1", "10.0.0.1, a private", id="mapped private"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="mapped loopback"),
        pytest.param("::ffff:169.254.169.254", "metadata", id="mapped metadata"),
        pytest.param("::ffff:100.64.0.1", "CGNAT", id="mapped CGNAT"),
        pytest.param("64:ff9b::a00:1", "10.0.0.1", id="NAT64 private"),
        pytest.param("2002:a00:1::1", "10.0.0.1", id="6to4 private"),
    ],
)
def test_each_forbidden_range_is_refused(address: str, why: str) -> None:
    """A host resolving into a private, loopback, link-local, CGNAT, multicast, reserved,
    unspecified or metadata range (v4, v6 or IPv4 inside v6) is refused, saying which."""
    # given
    resolve = resolver(address)

    # when / then
    with pytest.raises(UnsafeUrl, match=why):
        check_url("https://hooks.example.com/", resolve=resolve)


@pytest.mark.parametrize(
    "url", ["https://10.0.0.1/", "https://[::ffff:10.0.0.1]/", "https://[fd00:ec2::254]/"]
)
def test_a_forbidden_address_literal_is_refused_without_a_lookup(url: str) -> None:
    """An IP address written in the URL is checked as it stands; nothing is resolved."""
    # given
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return [PUBLIC]

    # when / then
    with pytest.raises(UnsafeUrl):
        check_url(url, resolve=resolve)
    assert lookups == []


@pytest.mark.parametrize("address", [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_a_public_address_is_accepted(address: str) -> None:
    """An https URL whose host resolves to a public address may be sent to, at that address."""
    # given
    resolve = resolver(address)

    # when
    addresses = check_url("https://hooks.example.com/nudge", resolve=resolve)

    # then
    assert addresses == [address]


def test_allow_listed_loopback_is_accepted_over_http() -> None:
    """127.0.0.1 in allow_hosts may be sent to over plain http (the local stack's receivers)."""
    # given
    url = "http://127.0.0.1:8765/hook"

    # when
    addresses = check_url(url, allow_hosts=LOCAL, resolve=resolver())

    # then
    assert addresses == ["127.0.0.1"]


def test_a_host_with_one_public_and_one_private_address_is_refused() -> None:
    """Every address a host resolves to must be public, or a rebinding could pick the other."""
    # given
    resolve = resolver(PUBLIC, "10.1.2.3")

    # when / then
    with pytest.raises(UnsafeUrl, match=r"10\.1\.2\.3"):
        check_url("https://hooks.example.com/", resolve=resolve)


def test_credentials_in_the_url_are_refused() -> None:
    """A URL carrying user:password is refused rather than sent without them."""
    # given
    url = "https://user:secret@hooks.example.com/"

    # when / then
    with pytest.raises(UnsafeUrl, match="credentials"):
        check_url(url, resolve=resolver(PUBLIC))
