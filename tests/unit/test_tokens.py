"""Signed link tokens: they round-trip, every kind of tampering is refused, and the links'
typed claims read tokens signed before they were typed."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nudge.domain.person import PersonId
from nudge.domain.tokens import (
    ClickClaims,
    InvalidToken,
    LinkClaims,
    OpenClaims,
    UnsubscribeClaims,
    read_link,
    sign_link,
    sign_token,
    verify_token,
)

KEY = b"unit-test-tracking-secret"
CLAIMS = {
    "k": "c",
    "f": "fire-1",
    "p": "u:ada",
    "t": "abandoned_cart",
    "url": "https://acme.example/cart?id=42&utm_source=nudge",
}
MAC_BYTES = 32


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_signed_claims_verify_to_the_same_claims():
    """A token verifies, with the key that signed it, to exactly the claims it was signed with."""
    # given
    token = sign_token(CLAIMS, KEY)
    # when
    claims = verify_token(token, KEY)
    # then
    assert claims == CLAIMS


def test_token_is_url_safe_base64_without_padding():
    """A token holds only base64url characters and no '=' padding, so it fits in a URL path."""
    # given
    claims = {**CLAIMS, "e": "ådå+tag@example.com"}
    # when
    token = sign_token(claims, KEY)
    # then
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_same_claims_sign_to_the_same_token():
    """Signing is deterministic whatever the claims' order, so one link has one token."""
    # given
    reordered = dict(reversed(list(CLAIMS.items())))
    # when
    tokens = {sign_token(CLAIMS, KEY), sign_token(reordered, KEY)}
    # then
    assert len(tokens) == 1


def test_flipped_byte_in_payload_is_refused():
    """Changing one byte of the signed claims makes the token invalid."""
    # given
    raw = _raw(sign_token(CLAIMS, KEY))
    raw[5] ^= 0x01
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(_encode(bytes(raw)), KEY)


def test_flipped_byte_in_signature_is_refused():
    """Changing one byte of the signature makes the token invalid."""
    # given
    raw = _raw(sign_token(CLAIMS, KEY))
    raw[-MAC_BYTES // 2] ^= 0x80
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(_encode(bytes(raw)), KEY)


def test_claims_swapped_under_a_valid_signature_are_refused():
    """Another token's signature on these claims does not verify (no splicing)."""
    # given
    ours = _raw(sign_token(CLAIMS, KEY))
    theirs = _raw(sign_token({**CLAIMS, "url": "https://evil.example/"}, KEY))
    spliced = ours[:-MAC_BYTES] + theirs[-MAC_BYTES:]
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(_encode(bytes(spliced)), KEY)


@pytest.mark.parametrize("keep", [1, 10, 43, -1])
def test_truncated_token_is_refused(keep: int):
    """A token cut short, anywhere, is invalid."""
    # given
    token = sign_token(CLAIMS, KEY)
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(token[:keep], KEY)


def test_token_signed_with_another_key_is_refused():
    """A token signed with a different key is invalid."""
    # given
    token = sign_token(CLAIMS, b"some-other-secret")
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(token, KEY)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not base64!", id="spaces and punctuation"),
        pytest.param("abc+def/ghi", id="standard-alphabet characters"),
        pytest.param("abcd=", id="padding"),
        pytest.param("a", id="impossible length"),
        pytest.param("%41%42%43%44", id="percent-encoded"),
        pytest.param("ä" * 60, id="non-ASCII"),
    ],
)
def test_token_that_is_not_base64url_is_refused(token: str):
    """Anything outside unpadded base64url is invalid."""
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(token, KEY)


def test_empty_token_is_refused():
    """An empty string is invalid."""
    # when / then
    with pytest.raises(InvalidToken):
        verify_token("", KEY)


def test_non_canonical_spelling_of_a_valid_token_is_refused():
    """Changing the unused low bits of the last character is tampering, not another spelling."""
    # given
    token = sign_token(CLAIMS, KEY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused_bits = {2: 4, 3: 2}.get(len(token) % 4, 0)
    assert unused_bits, "these claims must leave spare bits in the last character"
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last ^ 1]
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(respelled, KEY)


def test_overlong_token_is_refused():
    """A token longer than any link would carry is refused before any decoding."""
    # given
    token = "A" * 10_000
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(token, KEY)


def test_signing_without_a_key_is_an_error():
    """An empty key is a configuration mistake, refused rather than signed with."""
    # when / then
    with pytest.raises(ValueError, match="key"):
        sign_token(CLAIMS, b"")


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-09azAZ"))
def test_any_changed_character_is_refused(position: int, replacement: str):
    """Replacing any one character of a token with a different one makes it invalid."""
    # given
    token = sign_token(CLAIMS, KEY)
    index = position % len(token)
    if token[index] == replacement:
        replacement = "B" if replacement != "B" else "C"
    tampered = token[:index] + replacement + token[index + 1 :]
    # when / then
    with pytest.raises(InvalidToken):
        verify_token(tampered, KEY)


@given(
    claims=st.dictionaries(
        st.text(min_size=1, max_size=8), st.text(max_size=40), min_size=1, max_size=6
    )
)
def test_any_string_claims_round_trip(claims: dict[str, str]):
    """Any map of strings, Unicode included, verifies back to itself."""
    # when
    verified = verify_token(sign_token(claims, KEY), KEY)
    # then
    assert verified == claims


# ---- the links' typed claims ------------------------------------------------------------

# Signed before the claims were typed (single-letter keys, version 1), as links already sent
# in emails carry them; each must keep verifying and reading the same.
OLD_CLICK = (
    "AXsiZiI6ImZpcmUtMSIsImsiOiJjIiwicCI6InU6YWRhIiwidCI6ImFiYW5kb25lZF9jYXJ0IiwidXJsIjoiaHR0cHM6"
    "Ly9hY21lLmV4YW1wbGUvY2FydD9pZD00MiJ90DpAKdYUFm8ezvceae5LKBD2T47NCmMcfcHPkHAQbT4"
)
OLD_UNSUBSCRIBE = (
    "AXsiZSI6ImFkYUBleGFtcGxlLmNvbSIsImYiOiJmaXJlLTEiLCJrIjoidSIsInAiOiJhOnZpc2l0b3ItNyIsInQiOiJh"
    "YmFuZG9uZWRfY2FydCJ9btHlxDfQfWtxDa5ZKmayH0RXnA-KBYrWTs1qgyZ-6LU"
)
OLD_OPEN = (
    "AXsiZiI6ImZpcmUtMSIsImsiOiJvIiwicCI6InU6YWRhIiwidCI6ImFiYW5kb25lZF9jYXJ0In1J04Z23VlOPdvtsALn"
    "CV9RZpto0y-hwU1On6O0MRh8Qw"
)
ADA = PersonId.user("ada")
OLD_LINKS = [
    pytest.param(
        OLD_CLICK,
        ClickClaims("fire-1", ADA, "abandoned_cart", url="https://acme.example/cart?id=42"),
        id="click",
    ),
    pytest.param(
        OLD_UNSUBSCRIBE,
        UnsubscribeClaims(
            "fire-1", PersonId.anonymous("visitor-7"), "abandoned_cart", email="ada@example.com"
        ),
        id="unsubscribe",
    ),
    pytest.param(OLD_OPEN, OpenClaims("fire-1", ADA, "abandoned_cart"), id="open"),
]


@pytest.mark.parametrize(("token", "expected"), OLD_LINKS)
def test_a_link_sent_before_the_claims_were_typed_still_reads_the_same(
    token: str, expected: LinkClaims
):
    """A token already in an inbox verifies and reads as the claims it was signed with."""
    # when
    claims = read_link(token, KEY, type(expected))
    # then
    assert claims == expected


@pytest.mark.parametrize(("token", "claims"), OLD_LINKS)
def test_typed_claims_sign_to_the_same_token_as_before(token: str, claims: LinkClaims):
    """The wire did not change: the same claims sign to the very token they signed to before."""
    # when
    signed = sign_link(claims, KEY)
    # then
    assert signed == token


def test_an_open_pixel_carries_its_send_time_as_s():
    """Optional on the wire: a pixel signed with its send time reads it back."""
    # given
    claims = OpenClaims("fire-1", ADA, "abandoned_cart", sent_at="1796122800")
    # when
    token = sign_link(claims, KEY)
    # then
    assert verify_token(token, KEY)["s"] == "1796122800"
    assert read_link(token, KEY, OpenClaims) == claims


def test_the_wire_keeps_its_one_letter_names():
    """On the wire a click's claims are k, f, p, t and url, the person in its text form."""
    # given
    claims = ClickClaims("fire-1", ADA, "abandoned_cart", url="https://acme.example/")
    # when
    wire = verify_token(sign_link(claims, KEY), KEY)
    # then
    assert wire == {
        "k": "c",
        "f": "fire-1",
        "p": "u:ada",
        "t": "abandoned_cart",
        "url": "https://acme.example/",
    }


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        pytest.param(OLD_OPEN, UnsubscribeClaims, id="open pixel as unsubscribe"),
        pytest.param(OLD_CLICK, OpenClaims, id="click as open pixel"),
        pytest.param(OLD_UNSUBSCRIBE, ClickClaims, id="unsubscribe as click"),
    ],
)
def test_a_token_for_another_kind_of_link_is_refused(token: str, kind: type[LinkClaims]):
    """A signed token read as another kind of link is invalid: a pixel cannot unsubscribe."""
    # when / then
    with pytest.raises(InvalidToken, match=f"not a token for {kind.kind} links"):
        read_link(token, KEY, kind)


@pytest.mark.parametrize(
    ("wire", "missing"),
    [
        pytest.param({"k": "c", "f": "fire-1", "p": "u:ada", "t": "cart"}, "url", id="no url"),
        pytest.param(
            {"k": "c", "p": "u:ada", "t": "cart", "url": "https://a.example/"}, "f", id="no fire"
        ),
        pytest.param(
            {"k": "c", "f": "", "p": "u:ada", "t": "cart", "url": "https://a/"}, "f", id="empty"
        ),
    ],
)
def test_a_link_without_a_claim_its_kind_needs_is_refused(wire: dict[str, str], missing: str):
    """A signed click token without its URL, or with an empty fire id, names what is missing."""
    # given
    token = sign_token(wire, KEY)
    # when / then
    with pytest.raises(InvalidToken, match=f"missing claims: {missing}"):
        read_link(token, KEY, ClickClaims)


def test_a_link_whose_person_is_not_a_person_id_is_refused():
    """A signed token whose person claim is not u:<id> or a:<id> is invalid."""
    # given
    token = sign_token({"k": "o", "f": "fire-1", "p": "ada", "t": "cart"}, KEY)
    # when / then
    with pytest.raises(InvalidToken, match="person claim"):
        read_link(token, KEY, OpenClaims)


@given(
    fire_id=st.text(min_size=1, max_size=30),
    person=st.builds(PersonId.user, st.text(min_size=1, max_size=20))
    | st.builds(PersonId.anonymous, st.text(min_size=1, max_size=20)),
    trigger=st.text(min_size=1, max_size=30),
    url=st.text(min_size=1, max_size=60),
)
def test_any_click_claims_round_trip(fire_id: str, person: PersonId, trigger: str, url: str):
    """Whatever the ids and the URL, Unicode included, a signed click link reads back the same."""
    # given
    claims = ClickClaims(fire_id, person, trigger, url=url)
    # when
    read = read_link(sign_link(claims, KEY), KEY, ClickClaims)
    # then
    assert read == claims
