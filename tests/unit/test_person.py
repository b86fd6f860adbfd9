"""PersonId: the one place a person's u:/a: text form is written and read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nudge.domain.person import InvalidPersonId, PersonId


def test_a_user_is_written_with_the_u_prefix():
    """A user's id is stored and sent as u:<userId>."""
    # given
    person = PersonId.user("ada")
    # when
    text = str(person)
    # then
    assert text == "u:ada"
    assert person.is_user
    assert not person.is_anonymous
    assert (person.user_id, person.anonymous_id) == ("ada", None)


def test_an_anonymous_visitor_is_written_with_the_a_prefix():
    """An anonymous visitor's id is stored and sent as a:<anonymousId>."""
    # given
    person = PersonId.anonymous("visitor-7")
    # when
    text = str(person)
    # then
    assert text == "a:visitor-7"
    assert person.is_anonymous
    assert not person.is_user
    assert (person.user_id, person.anonymous_id) == (None, "visitor-7")


@pytest.mark.parametrize(
    ("user_id", "anonymous_id", "expected"),
    [
        pytest.param("ada", "visitor-7", "u:ada", id="both: the user"),
        pytest.param("ada", None, "u:ada", id="user only"),
        pytest.param(None, "visitor-7", "a:visitor-7", id="anonymous only"),
        pytest.param("", "visitor-7", "a:visitor-7", id="empty userId: the visitor"),
    ],
)
def test_of_prefers_the_user(user_id: str | None, anonymous_id: str | None, expected: str):
    """A message with a userId is the user's; one with only an anonymousId is the visitor's."""
    # when
    person = PersonId.of(user_id, anonymous_id)
    # then
    assert str(person) == expected


def test_of_refuses_a_message_with_neither_id():
    """Without a userId or an anonymousId there is nobody to file the message under."""
    # when / then
    with pytest.raises(InvalidPersonId, match="userId or an anonymousId"):
        PersonId.of(None, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("u:ada", PersonId.user("ada"), id="user"),
        pytest.param("a:visitor-7", PersonId.anonymous("visitor-7"), id="anonymous"),
        pytest.param("u:ada:lovelace", PersonId.user("ada:lovelace"), id="colon in the id"),
        pytest.param("u: ", PersonId.user(" "), id="a space is an id"),
        pytest.param("a:ådå", PersonId.anonymous("ådå"), id="unicode"),
    ],
)
def test_stored_text_parses_to_the_person(text: str, expected: PersonId):
    """Text as the table and the queues hold it today reads back as that person."""
    # when
    person = PersonId.parse(text)
    # then
    assert person == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("u:", id="no id after the prefix"),
        pytest.param("a:", id="no anonymous id after the prefix"),
        pytest.param("ada", id="no prefix"),
        pytest.param("x:ada", id="unknown prefix"),
        pytest.param("U:ada", id="prefix in capitals"),
        pytest.param("P#u:ada", id="a partition key, not a person"),
    ],
)
def test_text_that_is_not_a_person_is_refused(text: str):
    """Anything but u:<id> or a:<id> is refused with an error that says what was expected."""
    # when / then
    with pytest.raises(InvalidPersonId, match="u:<userId> or a:<anonymousId>"):
        PersonId.parse(text)


def test_a_refused_long_text_is_quoted_shortened():
    """The error quotes the start of a long refused text, not all of it."""
    # given
    text = "x" * 10_000
    # when
    with pytest.raises(InvalidPersonId) as refused:
        PersonId.parse(text)
    # then
    assert len(str(refused.value)) < 200


def test_an_empty_id_is_refused_by_every_constructor():
    """A person always has an id: an empty one is refused, however the person is built."""
    # when / then
    with pytest.raises(InvalidPersonId):
        PersonId.user("")
    with pytest.raises(InvalidPersonId):
        PersonId.anonymous("")


def test_people_sort_as_their_text_sorts():
    """Sorting people gives the order sorting their stored text gives."""
    # given
    texts = ["u:bob", "a:zed", "u:ada", "a:amy", "u:ada:2"]
    # when
    people = sorted(PersonId.parse(text) for text in texts)
    # then
    assert [str(person) for person in people] == sorted(texts)


def test_equal_people_are_one_dictionary_key():
    """The same person built twice is equal and hashes alike: one key in a dict or set."""
    # given
    first, second = PersonId.user("ada"), PersonId.parse("u:ada")
    # when
    people = {first: 1, second: 2}
    # then
    assert first == second
    assert len(people) == 1


@given(kind=st.sampled_from(["user", "anonymous"]), value=st.text(min_size=1))
def test_any_person_round_trips_through_its_text(kind: str, value: str):
    """Whatever the id, parsing a person's text gives back that person."""
    # given
    person = PersonId.user(value) if kind == "user" else PersonId.anonymous(value)
    # when
    parsed = PersonId.parse(str(person))
    # then
    assert parsed == person
    assert str(parsed) == str(person)
