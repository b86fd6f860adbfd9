"""The trigger language's in-app fields, send.display and send.expires: each mistake
reported as file:line: message, the values a fire carries for the page (in_app_fields),
and fire messages of other channels keeping their wire form without them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from nudge.domain.messages import FireMessage, InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.triggers.loader import Problem, load_triggers, parse_trigger
from nudge.domain.triggers.model import IN_APP_EXPIRES, Send, in_app_fields

from tests.conftest import REPO

FILE = "triggers/test.yaml"

# Lines 1 to 6; tests append from line 7 on.
IN_APP = """\
id: test_trigger
when:
  event: Page Engaged
send:
  channel: in_app
  template: test
"""


def problems_in(text: str, templates: Path | None = None) -> list[Problem]:
    trigger, problems = parse_trigger(text, FILE, templates)
    assert trigger is None, "a file with problems must not load"
    return problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def in_app_template(folder: Path, name: str = "test") -> Path:
    (folder / f"{name}.in_app.html.j2").write_text("<p>{{ trigger }}</p>", encoding="utf-8")
    return folder


# ---- a good file ---------------------------------------------------------------------------


def test_an_in_app_trigger_with_display_and_expires_loads() -> None:
    """Every display rule and an expiry, well formed: the trigger loads with them read."""
    # given
    text = IN_APP + (
        "  display:\n"
        "    delay: 5s\n"
        "    scroll: 50%\n"
        "    match: all\n"
        '    exclude: ["/checkout*", "*/cart", "/p/?"]\n'
        "  expires: 2h\n"
    )

    # when
    trigger, problems = parse_trigger(text, FILE)

    # then
    assert problems == []
    assert trigger is not None
    assert trigger.send is not None
    display = trigger.send.display
    assert display is not None
    assert (display.delay, display.scroll, display.match) == (timedelta(seconds=5), 0.5, "all")
    assert display.exclude == ["/checkout*", "*/cart", "/p/?"]
    assert trigger.send.expires == timedelta(hours=2)


def test_an_in_app_trigger_with_its_template_loads(tmp_path: Path) -> None:
    """An in-app trigger needs one template, test.in_app.html.j2."""
    # given
    templates = in_app_template(tmp_path)

    # when
    trigger, problems = parse_trigger(IN_APP, FILE, templates)

    # then
    assert problems == []
    assert trigger is not None


# ---- mistakes, each at its line ------------------------------------------------------------


def test_a_scroll_over_100_percent_is_reported_at_its_line() -> None:
    """display.scroll: 150% is out of range, reported as file:line on the scroll line."""
    # given
    text = IN_APP + "  display:\n    scroll: 150%\n"

    # when
    problem = only(problems_in(text))

    # then
    assert str(problem) == (
        "triggers/test.yaml:8: send.display.scroll: 150% is out of range (0% to 100%)"
    )


def test_a_delay_over_an_hour_is_reported_at_its_line() -> None:
    """display.delay counts from the page's load: more than an hour is out of range."""
    # given
    text = IN_APP + "  display:\n    delay: 2h\n"

    # when
    problem = only(problems_in(text))

    # then
    assert (problem.line, problem.message) == (
        8,
        "send.display.delay: 2h is out of range (0s to 1h)",
    )


def test_an_unknown_display_field_is_reported_at_its_line() -> None:
    """A display rule the SDK does not know (a typo) is named, at its line."""
    # given
    text = IN_APP + "  display:\n    delay: 5s\n    scrol: 50%\n"

    # when
    problem = only(problems_in(text))

    # then
    assert (problem.line, problem.message) == (9, "send.display: unknown field 'scrol'")


def test_an_unknown_match_is_reported_at_its_line() -> None:
    """display.match is any or all."""
    # given
    text = IN_APP + "  display:\n    match: both\n"

    # when
    problem = only(problems_in(text))

    # then
    assert (problem.line, problem.message) == (
        8,
        "send.display.match: Input should be 'any' or 'all'",
    )


def test_a_missing_in_app_template_is_reported(tmp_path: Path) -> None:
    """The templates folder has the email parts of test but not test.in_app.html.j2."""
    # given
    for part in ("subject", "html", "txt"):
        (tmp_path / f"test.{part}.j2").write_text("x", encoding="utf-8")

    # when
    problem = only(problems_in(IN_APP, tmp_path))

    # then
    assert (problem.line, problem.message) == (6, "template test.in_app.html.j2 is missing")


@pytest.mark.parametrize(("channel", "field"), [("email", "display"), ("webhook", "expires")])
def test_in_app_fields_on_another_channel_are_reported(channel: str, field: str) -> None:
    """display and expires mean nothing to an email or a webhook: refused at send."""
    # given
    extra = "  display:\n    delay: 5s\n" if field == "display" else "  expires: 1d\n"
    text = IN_APP.replace("channel: in_app", f"channel: {channel}") + extra

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 4
    assert problem.message.startswith(f"send: {field} appl")
    assert problem.message.endswith("to channel in_app only")


@pytest.mark.parametrize(("expires", "given"), [("30s", "30s"), ("31d", "31d")])
def test_expires_out_of_range_is_reported_at_its_line(expires: str, given: str) -> None:
    """send.expires is a minute to 30 days."""
    # given
    text = IN_APP + f"  expires: {expires}\n"

    # when
    problem = only(problems_in(text))

    # then
    assert (problem.line, problem.message) == (
        7,
        f"send.expires: {given} is out of range (1m to 30d)",
    )


@pytest.mark.parametrize("glob", ["checkout*", "/check out", "/caf\u00e9", ""])
def test_a_bad_exclude_glob_is_reported_at_its_line(glob: str) -> None:
    """An exclude glob is a path: starting with / or *, printable ASCII without spaces."""
    # given
    text = IN_APP + f"  display:\n    exclude:\n      - {json.dumps(glob)}\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 9
    assert problem.message == (
        f"send.display.exclude.0: {glob!r} is not a path glob; start with / (or *),"
        " no spaces, e.g. /checkout*"
    )


def test_more_than_twenty_exclude_globs_are_refused() -> None:
    """At most 20 globs: the SDK tests each on every page."""
    # given
    globs = "".join(f'      - "/p{n}"\n' for n in range(21))
    text = IN_APP + "  display:\n    exclude:\n" + globs

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 8
    assert problem.message.startswith("send.display.exclude:")


def test_a_variant_switching_to_in_app_without_its_template_is_reported_at_the_variant(
    tmp_path: Path,
) -> None:
    """An email trigger whose variant switches to in_app needs test.in_app.html.j2 too;
    its absence is reported at the variant's send."""
    # given
    for part in ("subject", "html", "txt"):
        (tmp_path / f"test.{part}.j2").write_text("x", encoding="utf-8")
    text = IN_APP.replace("channel: in_app", "channel: email") + (
        "experiment:\n"  # line 7
        "  variants:\n"
        "    - id: mail\n"
        "      weight: 1\n"
        "    - id: page\n"  # line 11
        "      weight: 1\n"
        "      send:\n"  # line 13
        "        channel: in_app\n"
    )

    # when
    problem = only(problems_in(text, tmp_path))

    # then
    assert problem.message.endswith("template test.in_app.html.j2 is missing")
    assert problem.line in (11, 13, 14)


# ---- what a fire carries for the page ------------------------------------------------------


def test_a_fire_carries_the_triggers_rules_in_seconds_and_percent() -> None:
    """in_app_fields turns the trigger's rules into what the SDK reads: seconds, percent,
    the globs, and the expiry in seconds."""
    # given
    send = Send.model_validate(
        {
            "channel": "in_app",
            "template": "offer",
            "display": {"delay": "90s", "scroll": "33.3%", "match": "all", "exclude": ["/a*"]},
            "expires": "2h",
        }
    )

    # when
    fields = in_app_fields(send, "in_app")

    # then
    assert fields == {
        "display": InAppDisplay(delay=90.0, scroll=33.3, match="all", exclude=("/a*",)),
        "expires": 7200,
    }


def test_a_variant_switching_to_in_app_gets_the_defaults() -> None:
    """An email trigger's variant that sends in-app: no display rules, a day's expiry."""
    # given
    send = Send.model_validate({"channel": "email", "template": "abandoned_cart"})

    # when
    fields = in_app_fields(send, "in_app")

    # then
    assert fields == {"display": InAppDisplay(), "expires": int(IN_APP_EXPIRES.total_seconds())}
    assert fields["expires"] == 86_400


def test_an_in_app_trigger_sent_by_email_carries_nothing_for_the_page() -> None:
    """An in-app trigger's variant that switches to email: no in-app fields at all."""
    # given
    send = Send.model_validate(
        {"channel": "in_app", "template": "offer", "display": {"delay": "5s"}, "expires": "1d"}
    )

    # when
    fields = in_app_fields(send, "email")

    # then
    assert fields == {}


def test_the_shipped_product_offer_carries_its_rules() -> None:
    """product_offer: shown after 5 s or half the page read, never on /checkout*, for a day."""
    # given
    (offer,) = [t for t in load_triggers(REPO / "triggers").triggers if t.id == "product_offer"]
    assert offer.send is not None

    # when
    send = offer.send_at_step(None)
    fields = in_app_fields(send, send.channel)

    # then
    assert fields == {
        "display": InAppDisplay(delay=5.0, scroll=50.0, match="any", exclude=("/checkout*",)),
        "expires": 86_400,
    }


# ---- the fire message's wire form ----------------------------------------------------------


def _fire(channel: str, **fields: object) -> FireMessage:
    return FireMessage.model_validate(
        {
            "fireId": "fire-1",
            "trigger": "t",
            "person": str(PersonId.user("ada")),
            "userId": "ada",
            "occurrence": "o-1",
            "firedAt": "2026-11-28T10:00:00.000Z",
            "channel": channel,
            "template": "t",
            **fields,
        }
    )


@pytest.mark.parametrize("channel", ["email", "webhook"])
def test_an_email_or_webhook_fire_has_no_in_app_keys_on_the_wire(channel: str) -> None:
    """Fires of other channels keep the shape they had before in-app fires: neither the
    record nor the JSON has a display or expires key."""
    # given
    fire = _fire(channel)

    # when
    record, text = fire.to_record(), json.loads(fire.to_json())

    # then
    assert "display" not in record
    assert "expires" not in record
    assert text == record


def test_an_in_app_fire_reads_back_as_written() -> None:
    """An in-app fire's display and expires survive the queue: to_json, then from_json."""
    # given
    fire = _fire("in_app", **in_app_fields(Send(channel="in_app", template="t"), "in_app"))

    # when
    read = FireMessage.from_json(fire.to_json())

    # then
    assert read == fire
    assert json.loads(fire.to_json())["display"] == {
        "delay": None,
        "scroll": None,
        "match": "any",
        "exclude": [],
    }
