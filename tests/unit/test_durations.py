"""Durations as people write them in settings and triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nudge.domain.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0m", timedelta(0)),
    ],
)
def test_each_unit_is_read(text: str, expected: timedelta) -> None:
    """A number followed by s, m, h, d or w is that many of the unit."""
    # given
    duration = text

    # when
    parsed = parse_duration(duration)

    # then
    assert parsed == expected


def test_a_bare_number_string_means_seconds() -> None:
    """A plain number, as an environment variable holds it, is seconds."""
    # given
    text = "90"

    # when
    parsed = parse_duration(text)

    # then
    assert parsed == timedelta(seconds=90)


def test_an_integer_means_seconds() -> None:
    """An int is taken as seconds."""
    # given
    seconds = 3600

    # when
    parsed = parse_duration(seconds)

    # then
    assert parsed == timedelta(hours=1)


def test_surrounding_and_inner_whitespace_is_ignored() -> None:
    """Spaces around the number and between number and unit are allowed."""
    # given
    text = "  12 h "

    # when
    parsed = parse_duration(text)

    # then
    assert parsed == timedelta(hours=12)


@pytest.mark.parametrize(
    "text", ["", "m", "30x", "m30", "1.5h", "-5m", "30 minutes", "30M", "1h30m"]
)
def test_anything_else_is_a_value_error(text: str) -> None:
    """Text that is not <integer><unit> raises ValueError naming the text."""
    # given
    duration = text

    # when
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(duration)

    # then
    assert repr(text) in str(caught.value)


def test_non_ascii_digits_are_not_a_duration() -> None:
    """Only ASCII digits count: an Arabic-Indic three is not three seconds."""
    # given / when / then
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("\u0663")
