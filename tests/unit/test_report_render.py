"""Reports rendered for people (nudge.entrypoints.report_render): the terminal tables and the
self-contained HTML page, with every string from the data escaped and nulls shown as a dash
with their reason."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from io import StringIO
from typing import Any, cast

from nudge.domain.experiments.counts import NO_EXPERIMENT, Measure, Tally
from nudge.domain.experiments.report import build_report
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger
from nudge.entrypoints.report_render import html_report, print_report, print_summary
from rich.console import Console

TODAY = date(2026, 12, 10)
DAY = timedelta(days=1)

CART = """\
id: abandoned_cart
when: {event: Product Added}
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: h24, weight: 45, delay: 24h}
    - {id: h48, weight: 45, delay: 48h}
  holdout: 10%
  goal: {event: GOAL, within: 7d}
"""

# Two variants at equal weights, no holdout: 5,000 against 4,000 assigned is a mismatch.
SPLIT = """\
id: subject_test
when: {event: Product Added}
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: plain, weight: 1}
    - {id: fancy, weight: 1, send: {template: product_interest}}
"""

PLAIN = """\
id: re_engagement
when: {inactive: 7d}
send: {channel: email, template: re_engagement}
"""

# HTML elements that never have a closing tag.
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}


def trigger(text: str) -> Trigger:
    parsed, problems = parse_trigger(text, "trigger.yaml")
    assert problems == []
    assert parsed is not None
    return parsed


def cart_report(goal: str = "Order Completed") -> dict[str, Any]:
    """The case study over three days: holdout 1,000 / 40, h24 4,500 / 230, h48 4,500 / 190."""
    cart = trigger(CART.replace("GOAL", json.dumps(goal)))
    assert cart.experiment is not None
    version = cart.experiment.version
    tallies = []
    for arm, totals in (
        ("holdout", {"assigned": 1_000, "converted": 40}),
        ("h24", {"assigned": 4_500, "converted": 230, "sent": 4_000}),
        ("h48", {"assigned": 4_500, "converted": 190, "sent": 3_900}),
    ):
        for n in range(3):
            counts = {
                m: total // 3 if n else total - 2 * (total // 3) for m, total in totals.items()
            }
            tallies.append(
                Tally(version, arm, TODAY - n * DAY, cast("dict[Measure, float]", counts))
            )
    return build_report(cart, tallies, today=TODAY)


def empty_report() -> dict[str, Any]:
    return build_report(trigger(CART.replace("GOAL", "Order Completed")), [], today=TODAY)


def plain_report() -> dict[str, Any]:
    tallies = [Tally(NO_EXPERIMENT, NO_EXPERIMENT, TODAY, {"sent": 120, "opened": 30})]
    return build_report(trigger(PLAIN), tallies, today=TODAY)


def renamed(report: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The report with an arm renamed everywhere (ids in a trigger file cannot hold markup,
    but the renderer must not rely on it)."""
    renamed_report: dict[str, Any] = json.loads(
        json.dumps(report).replace(old, json.dumps(new)[1:-1])
    )
    return renamed_report


def printed(render: Any, *args: Any) -> str:
    console = Console(file=StringIO(), width=250, color_system=None)
    render(*args, console)
    output: str = console.file.getvalue()  # type: ignore[attr-defined]
    return output


class StrictParser(HTMLParser):
    """Collects tags and fails on any end tag that does not close the open element."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()


def parsed(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.open == [], f"left open: {parser.open}"
    return parser


# ---- HTML -----------------------------------------------------------------------------------


def test_the_page_is_well_formed_html():
    """Every element the page opens it closes, in order, for one and several triggers."""
    # given
    reports = [cart_report(), plain_report(), empty_report()]

    # when
    page = html_report(reports)

    # then
    parser = parsed(page)
    assert page.startswith("<!doctype html>")
    assert [tag for tag, _ in parser.tags].count("section") == 3


def test_a_trigger_with_an_experiment_gets_three_charts():
    """Rate over time, uplift with its sequential band, and the funnel: one SVG each."""
    # given
    report = cart_report()

    # when
    page = html_report([report])

    # then
    assert page.count("<svg") == 3
    assert page.count("</svg>") == 3
    assert "<polygon" in page, "the sequential interval is drawn as a band"


def test_a_trigger_without_an_experiment_gets_only_its_funnel():
    """Plain counts have no rates to compare: one chart, the funnel of sent, opened, clicked."""
    # given
    report = plain_report()

    # when
    page = html_report([report])

    # then
    assert page.count("<svg") == 1
    assert "converted" not in page


def test_a_report_without_counts_draws_no_chart():
    """Nothing counted yet: the page says so instead of drawing empty axes."""
    # given
    report = empty_report()

    # when
    page = html_report([report])

    # then
    assert "<svg" not in page
    assert "No counts yet" in page


def test_the_page_loads_nothing_from_elsewhere():
    """No scripts, stylesheets, fonts or images, and no URL at all."""
    # given
    reports = [cart_report(), plain_report()]

    # when
    page = html_report(reports)

    # then
    assert "http" not in page
    assert "<script" not in page
    assert "<link" not in page
    assert "url(" not in page
    assert "@import" not in page
    sources = [
        (tag, name)
        for tag, attributes in parsed(page).tags
        for name in attributes
        if name in ("src", "href")
    ]
    assert sources == []


def test_an_event_name_with_markup_is_escaped():
    """A goal event named ``<script>...`` shows as text, never as an element."""
    # given
    report = cart_report(goal="<script>alert('goal')</script>")

    # when
    page = html_report([report])

    # then
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;goal&#x27;)&lt;/script&gt;" in page


def test_a_variant_name_with_markup_is_escaped_in_tables_and_charts():
    """An arm named ``<script>...`` is escaped wherever it appears: tables, legends, titles."""
    # given
    report = renamed(cart_report(), "h24", '<script>alert("arm")</script>')

    # when
    page = html_report([report])

    # then
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(&quot;arm&quot;)&lt;/script&gt;"
    assert page.count(escaped) >= 4
    parsed(page)


def test_a_null_figure_shows_a_dash_with_its_reason_as_title():
    """No one assigned: the comparison cells are dashes whose title says why."""
    # given
    report = empty_report()

    # when
    page = html_report([report])

    # then
    dashes = re.findall(r'<td title="([^"]*)">—</td>', page)
    assert "no one assigned to h24 or holdout yet" in dashes
    assert "no one assigned to h24 yet" in dashes


def test_a_sample_ratio_mismatch_is_shown_as_a_flag():
    """A mismatch is a red line that says the figures are not to be trusted."""
    # given
    report = cart_report()
    report["srm"] |= {"flag": True, "p_value": 1e-9}

    # when
    page = html_report([report])

    # then
    assert re.search(r'<p class="flag">Sample ratio: p = &lt; 0.0001: MISMATCH', page)


# ---- terminal -------------------------------------------------------------------------------


def test_the_terminal_report_shows_header_arms_and_comparisons():
    """The headline, each arm's counts and rate, and each comparison with its verdict."""
    # given
    report = cart_report()

    # when
    output = printed(print_report, report)

    # then
    assert f"abandoned_cart · version {report['version']}" in output
    assert "goal: Order Completed within 7d" in output
    assert re.search(r"h24\s.*4,500\s.*4,000\s.*230\s.*5\.11 %", output)
    assert re.search(r"h24\s.*\+1\.11 pt", output)
    assert "keep_running" in output or "better" in output
    assert "sample ratio: p = 1.0000: assigned in the configured shares" in output
    assert "fatigue, last 7 days" in output


def test_a_sample_ratio_mismatch_in_the_counts_is_printed_as_a_mismatch():
    """5,000 and 4,000 assigned at equal weights: the terminal says MISMATCH and not to trust
    the other figures."""
    # given
    split = trigger(SPLIT)
    assert split.experiment is not None
    version = split.experiment.version
    tallies = [
        Tally(version, "plain", TODAY, {"assigned": 5_000, "converted": 250}),
        Tally(version, "fancy", TODAY, {"assigned": 4_000, "converted": 260}),
    ]
    report = build_report(split, tallies, today=TODAY)

    # when
    output = printed(print_report, report)

    # then
    assert report["srm"]["flag"] is True
    assert "sample ratio: p = < 0.0001: MISMATCH with the configured shares" in output
    assert "do not trust the other figures" in output


def test_the_terminal_prints_markup_in_names_as_written():
    """Rich markup in an event name is printed literally, not read as styles (or a crash)."""
    # given
    report = cart_report(goal="Order [bold red]Completed[/] [/oops]")

    # when
    output = printed(print_report, report)

    # then
    assert "Order [bold red]Completed[/] [/oops]" in output


def test_the_terminal_gives_the_reason_for_each_dash():
    """Dashes in the comparisons table are explained under it."""
    # given
    report = empty_report()

    # when
    output = printed(print_report, report)

    # then
    assert "— h24: no one assigned to h24 or holdout yet" in output
    assert "sample ratio: not checked: no one assigned yet" in output


def test_fatigue_flags_are_printed():
    """A fatigue flag gets its own line."""
    # given
    report = plain_report()
    report["fatigue"]["flags"] = ["complaint rate 0.20 % (4 of 2,000 sent)"]

    # when
    output = printed(print_report, report)

    # then
    assert "fatigue: complaint rate 0.20 % (4 of 2,000 sent)" in output


def test_a_plain_trigger_prints_its_plain_counts():
    """No experiment: the table has the plain counts, no comparisons and no sample ratio."""
    # given
    report = plain_report()

    # when
    output = printed(print_report, report)

    # then
    assert "re_engagement · version no experiment · plain counts" in output
    assert re.search(r"-\s.*120\s.*30", output)
    assert "sample ratio" not in output
    assert "verdict" not in output


def test_the_summary_has_one_row_per_trigger_with_its_best_variant():
    """One row a trigger: version, totals and the verdict of the variant doing best."""
    # given
    reports = [cart_report(), plain_report()]

    # when
    output = printed(print_summary, reports)

    # then
    cart_row = next(line for line in output.splitlines() if "abandoned_cart" in line)
    assert re.search(r"10,000\s.*7,900\s.*460", cart_row)
    assert "h24: " in cart_row
    assert "(+1.11 pt)" in cart_row
    plain_row = next(line for line in output.splitlines() if "re_engagement" in line)
    assert "120" in plain_row
