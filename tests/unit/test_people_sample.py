"""Training reads a sample of people: at most ``--people`` of them, the same whatever order
their events come in, each with their whole history (bottom-k by a hash of the id)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from nudge.config import ConfigError, TrainSettings
from nudge.domain.predictions.sample import PeopleSample
from nudge.entrypoints.cli import main
from nudge.service.recorded_events import read_events

START = datetime(2026, 11, 1, tzinfo=UTC)


def _lines(people: int, each: int, seed: int = 3) -> list[str]:
    """``each`` page views for each of ``people`` users, shuffled by ``seed``."""
    messages = [
        {
            "type": "page",
            "userId": f"user-{person}",
            "name": "home",
            "messageId": f"m-{person}-{number}",
            "timestamp": (START + timedelta(minutes=person + 60 * number)).isoformat(),
        }
        for person in range(people)
        for number in range(each)
    ]
    random.Random(seed).shuffle(messages)
    return [json.dumps(message) for message in messages]


def _users(lines: list[str], size: int) -> dict[str, int]:
    events, _ = read_events(lines, PeopleSample(size))
    found: dict[str, int] = {}
    for event in events:
        found[str(event.user_id)] = found.get(str(event.user_id), 0) + 1
    return found


def test_a_sample_keeps_at_most_its_size_in_people() -> None:
    """100 people read, a sample of 10: ten people's events."""
    # given
    lines = _lines(people=100, each=5)

    # when
    users = _users(lines, 10)

    # then
    assert len(users) == 10


def test_each_person_in_the_sample_has_every_event() -> None:
    """Whoever is kept has all five of their page views, even if pushed out ones came first."""
    # given
    lines = _lines(people=100, each=5)

    # when
    users = _users(lines, 10)

    # then
    assert set(users.values()) == {5}


def test_the_same_people_are_kept_whatever_the_order() -> None:
    """Two orders of the same stream: the same ten people."""
    # given
    first, second = _lines(100, 5, seed=1), _lines(100, 5, seed=2)

    # when
    kept = [set(_users(lines, 10)) for lines in (first, second)]

    # then
    assert first != second
    assert kept[0] == kept[1]


def test_a_sample_larger_than_the_stream_keeps_everyone_in_time_order() -> None:
    """Fewer people than the sample: every event, sorted by time as without a sample."""
    # given
    lines = _lines(people=20, each=3)

    # when
    sampled, _ = read_events(lines, PeopleSample(50))
    whole, _ = read_events(lines)

    # then
    assert [e.message_id for e in sampled] == [e.message_id for e in whole]
    assert len(sampled) == 60


def test_the_sample_counts_everyone_it_read() -> None:
    """``seen`` is what `nudge train` reports as the people read."""
    # given
    sample = PeopleSample(10)

    # when
    read_events(_lines(people=40, each=2), sample)

    # then
    assert (len(sample.seen), len(sample.kept)) == (40, 10)


def test_an_empty_sample_is_refused() -> None:
    """A sample of no one would train nothing: a clear error, not an empty model."""
    # when
    with pytest.raises(ValueError, match="at least one person"):
        PeopleSample(0)


def test_nudge_train_refuses_people_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    """`--people 0`: argparse's usage error naming the option and why."""
    # when
    with pytest.raises(SystemExit) as exited:
        main(["train", "churn", "--events", "x.jsonl", "--people", "0"])

    # then
    assert exited.value.code == 2
    assert "--people: 0 is less than 1" in capsys.readouterr().err


def test_the_train_function_refuses_a_train_people_that_is_not_a_number() -> None:
    """NUDGE_TRAIN_PEOPLE=lots: a configuration error naming the variable."""
    # given
    env = {"NUDGE_MODELS_BUCKET": "models", "NUDGE_TRAIN_PEOPLE": "lots"}

    # when
    with pytest.raises(ConfigError, match="NUDGE_TRAIN_PEOPLE"):
        TrainSettings.from_env(env)


def test_the_train_function_samples_ten_thousand_people_by_default() -> None:
    """No NUDGE_TRAIN_PEOPLE: the same default as `nudge train --people`."""
    # when
    settings = TrainSettings.from_env({"NUDGE_MODELS_BUCKET": "models"})

    # then
    assert settings.people == 10_000
