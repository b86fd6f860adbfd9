"""Signed link tokens: they round-trip, and every kind of tampering is refused."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nudge.domain.tokens import InvalidToken, sign_token, verify_token

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
