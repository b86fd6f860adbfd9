"""Reports for people: rich tables in the terminal, and one self-contained HTML file.

Both read the JSON ``domain.experiments.report.build_report`` makes and nothing else. Text
that came from data (trigger, variant and event names, reasons) is never read as markup:
in the terminal it goes into ``rich.text.Text`` (so ``[red]`` in an event name prints as
written), in HTML through ``html.escape``. A null figure shows as "—"; in HTML its reason
from the report's ``undefined`` is the cell's title (shown on hover).

The HTML has no scripts, fonts, images or stylesheets from elsewhere: its charts are inline
SVG drawn here, so the file opens anywhere (an email attachment, an air-gapped laptop) and
shows the same. Per trigger with an experiment and counts, three charts:
- the cumulative conversion rate per arm over the days, as a team looking daily saw it;
- each variant's uplift over the baseline with its sequential 95 % interval drawn as a band
  around it: the interval that may be read at every look, whose position against the zero
  line is the verdict. Drawing the band around each rate line instead would mix two scales
  (a rate, and a difference of two rates) on one axis, and the baseline would need a band
  of its own that means nothing; on its own chart the band reads directly: above the dashed
  zero line is "better", below it "worse";
- the funnel (assigned, sent, opened, clicked, converted) as bars per arm.
A trigger without an experiment gets the funnel of its plain counts (sent, opened, clicked).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["html_report", "print_report", "print_summary"]

_DASH = "—"
_COLOURS = ("#64748b", "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
_WIDTH, _HEIGHT, _PAD, _LEFT = 640, 240, 36, 64
_FUNNEL = ("assigned", "sent", "opened", "clicked", "converted")
_PLAIN_FUNNEL = ("sent", "opened", "clicked")
_VERDICT_STYLE = {"better": "green", "worse": "red", "no_difference": "cyan"}
_WORDS = ("version", "verdict", "best variant")  # columns of words, not figures: left-aligned

_T = TypeVar("_T")
Cell = tuple[str, str | None]  # a table cell's text and, for a null figure, why it is null


# ---- figures as text ----------------------------------------------------------------------


def _pct(value: Any, digits: int = 2) -> str:
    return _DASH if value is None else f"{value * 100:.{digits}f} %"


def _signed_pct(value: Any) -> str:
    return _DASH if value is None else f"{value * 100:+.1f} %"


def _points(value: Any) -> str:
    return _DASH if value is None else f"{value * 100:+.2f} pt"


def _range(pair: Any, unit: str = "pt") -> str:
    if not pair:
        return _DASH
    digits = 2 if unit == "pt" else 1
    return f"[{pair[0] * 100:+.{digits}f}, {pair[1] * 100:+.{digits}f}] {unit}"


def _p(value: Any) -> str:
    if value is None:
        return _DASH
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _money(value: Any) -> str:
    return _DASH if value is None else f"{value:,.2f}"


def _count(value: Any) -> str:
    return _DASH if value is None else f"{value:,}"


def _headline(report: Mapping[str, Any]) -> str:
    goal = report.get("goal")
    version = report.get("version") or "no experiment"
    aim = f"goal: {goal['event']} within {goal['within']}" if goal else "plain counts"
    as_of = f" · as of {report['as_of']}" if report.get("as_of") else ""
    return f"{report['trigger']} · version {version} · {aim}{as_of}"


def _variant_cells(variant: Mapping[str, Any]) -> list[Cell]:
    """An arm's row: each cell's text and, for a null figure, why it is null."""
    why = variant.get("undefined", {})
    return [
        (str(variant["id"]), None),
        *((_count(variant[m]), None) for m in _FUNNEL),
        (_pct(variant["conversion_rate"]), why.get("conversion_rate")),
        (_money(variant["revenue_per_assigned"]), why.get("revenue_per_assigned")),
    ]


_VARIANT_HEADS = ("arm", *_FUNNEL, "rate", "revenue/assigned")
_PLAIN_HEADS = ("arm", "sent", "opened", "clicked", "unsubscribed", "complained")


def _arms(report: Mapping[str, Any]) -> tuple[Sequence[str], list[list[Cell]]]:
    """The arms table's heads and rows; without an experiment, the plain counts alone."""
    if report.get("version") is None:
        return _PLAIN_HEADS, [
            [(str(v["id"]), None), *((_count(v[m]), None) for m in _PLAIN_HEADS[1:])]
            for v in report["variants"]
        ]
    return _VARIANT_HEADS, [_variant_cells(v) for v in report["variants"]]


def _comparison_cells(comparison: Mapping[str, Any]) -> list[Cell]:
    why = comparison.get("undefined", {})
    return [
        (str(comparison["variant"]), None),
        (_points(comparison["uplift_abs"]), why.get("uplift_abs")),
        (_range(comparison["ci95_abs"]), why.get("ci95_abs")),
        (_signed_pct(comparison["uplift_rel"]), why.get("uplift_rel")),
        (_range(comparison["ci95_rel"], "%"), why.get("ci95_rel")),
        (_p(comparison["p_value"]), why.get("p_value")),
        (_pct(comparison["prob_better"], 1), why.get("prob_better")),
        (_range(comparison["sequential"]["ci95_abs"]), why.get("sequential.ci95_abs")),
        (str(comparison["sequential"]["verdict"]), None),
        (_count(comparison["remaining_per_arm"]), why.get("remaining_per_arm")),
    ]


_COMPARISON_HEADS = (
    "variant",
    "uplift",
    "95 % CI",
    "relative",
    "95 % CI (rel.)",
    "p-value",
    "P(better)",
    "sequential 95 % CI",
    "verdict",
    "still needed/arm",
)


def _srm_words(srm: Mapping[str, Any]) -> str:
    if srm["flag"]:
        return (
            f"p = {_p(srm['p_value'])}: MISMATCH with the configured shares;"
            " assignment or counting is broken, do not trust the other figures until explained"
        )
    if srm["p_value"] is None:
        return f"not checked: {srm.get('reason') or 'no counts'}"
    excluded = srm.get("excluded") or []
    left_out = f" (left out, no share now: {', '.join(excluded)})" if excluded else ""
    return f"p = {_p(srm['p_value'])}: assigned in the configured shares{left_out}"


def _fatigue_words(fatigue: Mapping[str, Any]) -> list[str]:
    recent = fatigue["recent"]
    return [
        f"all days: {_count(fatigue['sent'])} sent, unsubscribe rate"
        f" {_pct(fatigue['unsubscribe_rate'])}, complaint rate {_pct(fatigue['complaint_rate'])}",
        f"last {fatigue['recent_days']} days: {_count(recent['sent'])} sent, unsubscribe rate"
        f" {_pct(recent['unsubscribe_rate'])}, complaint rate {_pct(recent['complaint_rate'])}",
    ]


def _best(report: Mapping[str, Any]) -> str:
    """The variant with the largest uplift so far, and its verdict."""
    comparisons = report.get("comparisons") or []
    if not comparisons:
        return _DASH
    measured = [c for c in comparisons if c["uplift_abs"] is not None]
    best = max(measured, key=lambda c: c["uplift_abs"]) if measured else comparisons[0]
    uplift = "" if best["uplift_abs"] is None else f" ({_points(best['uplift_abs'])})"
    return f"{best['variant']}: {best['sequential']['verdict']}{uplift}"


# ---- terminal -------------------------------------------------------------------------------


def print_report(report: dict[str, Any], console: Console) -> None:
    """One trigger's report: headline, arms, comparisons, sample ratio, fatigue."""
    from rich.text import Text

    console.print(Text(_headline(report), style="bold"))
    console.print(_table("arms", *_arms(report)))
    if report["comparisons"]:
        rows = [_comparison_cells(c) for c in report["comparisons"]]
        console.print(_table(f"against {report['baseline']}", _COMPARISON_HEADS, rows))
        for line in _reasons(report["comparisons"]):
            console.print(Text(line, style="dim"))
    srm = report.get("srm")
    if srm:
        style = "bold red" if srm["flag"] else "green" if srm["p_value"] is not None else "dim"
        console.print(Text.assemble("sample ratio: ", (_srm_words(srm), style)))
    fatigue = report.get("fatigue")
    if fatigue:
        for line in _fatigue_words(fatigue):
            console.print(Text(f"fatigue, {line}"))
        for flag in fatigue["flags"]:
            console.print(Text.assemble(("fatigue: ", "bold yellow"), flag))


def _reasons(comparisons: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why the dashes in the comparisons table are dashes, each reason once per variant."""
    lines = []
    for comparison in comparisons:
        for reason in dict.fromkeys(comparison.get("undefined", {}).values()):
            lines.append(f"{_DASH} {comparison['variant']}: {reason}")
    return lines


def _table(title: str, heads: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title))
    for index, head in enumerate(heads):
        table.add_column(head, justify="left" if index == 0 or head in _WORDS else "right")
    for row in rows:
        cells = []
        for head, (text, _) in zip(heads, row, strict=True):
            cells.append(
                Text(text, style=_VERDICT_STYLE.get(text, "") if head == "verdict" else "")
            )
        table.add_row(*cells)
    return table


def print_summary(reports: Sequence[dict[str, Any]], console: Console) -> None:
    """Every trigger in one table: a row each, with its best variant's verdict."""
    heads = ("trigger", "version", "assigned", "sent", "converted", "best variant")
    rows = []
    for report in reports:
        plain = report.get("version") is None  # no experiment: nothing assigned or converted
        totals = {
            m: sum(v[m] for v in report["variants"]) for m in ("assigned", "sent", "converted")
        }
        rows.append(
            [
                (str(report["trigger"]), None),
                (str(report.get("version") or _DASH), None),
                (_DASH if plain else _count(totals["assigned"]), None),
                (_count(totals["sent"]), None),
                (_DASH if plain else _count(totals["converted"]), None),
                (_best(report), None),
            ]
        )
    console.print(_table("triggers", heads, rows))


# ---- HTML -----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(text: str, why: str | None = None, kind: str | None = None) -> str:
    title = f' title="{_e(why)}"' if why and text == _DASH else ""
    css = f' class="{_e(kind)}"' if kind else ""
    return f"<td{title}{css}>{_e(text)}</td>"


def _html_table(heads: Sequence[str], rows: Sequence[Sequence[Cell]], caption: str = "") -> str:
    header = "".join(f"<th>{_e(head)}</th>" for head in heads)
    body = []
    for row in rows:
        cells = [
            _cell(text, why, "verdict " + text if head == "verdict" else None)
            for head, (text, why) in zip(heads, row, strict=True)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{caption}<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 76rem;
  padding: 0 1rem; color: #111827; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; }
h3 { font-size: 1rem; margin: 1.5rem 0 .25rem; }
table { border-collapse: collapse; margin: .5rem 0; display: block; overflow-x: auto; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: right;
  white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td[title] { cursor: help; text-decoration: underline dotted #9ca3af; }
.flag { color: #b91c1c; font-weight: 600; } .ok { color: #15803d; } .muted { color: #6b7280; }
.verdict.better { color: #15803d; } .verdict.worse { color: #b91c1c; }
.verdict.no_difference { color: #0e7490; }
svg { display: block; margin: .25rem 0 1rem; max-width: 100%; height: auto; }
"""


def html_report(reports: Sequence[dict[str, Any]]) -> str:
    """One self-contained HTML page of one or several triggers' reports."""
    body = "\n".join(_section(report) for report in reports) or "<p>No triggers.</p>"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Nudge experiment report</title><style>{_STYLE}</style></head>\n<body>"
        f"<h1>Nudge experiment report</h1>\n{body}\n</body></html>\n"
    )


def _section(report: Mapping[str, Any]) -> str:
    parts = [
        f"<section><h2>{_e(report['trigger'])}</h2>",
        f'<p class="muted">{_e(_headline(report))}</p>',
        _html_table(*_arms(report), caption="Arms"),
    ]
    if report["comparisons"]:
        rows = [_comparison_cells(c) for c in report["comparisons"]]
        parts.append(_html_table(_COMPARISON_HEADS, rows, f"Against {report['baseline']}"))
    srm = report.get("srm")
    if srm:
        kind = "flag" if srm["flag"] else "ok" if srm["p_value"] is not None else "muted"
        parts.append(f'<p class="{kind}">Sample ratio: {_e(_srm_words(srm))}</p>')
    parts.append(_fatigue_html(report.get("fatigue")))
    parts.append(_charts(report))
    parts.append("</section>")
    return "\n".join(parts)


def _fatigue_html(fatigue: Mapping[str, Any] | None) -> str:
    if not fatigue:
        return ""
    lines = [f'<p class="muted">Fatigue, {_e(line)}</p>' for line in _fatigue_words(fatigue)]
    lines += [f'<p class="flag">Fatigue: {_e(flag)}</p>' for flag in fatigue["flags"]]
    return "\n".join(lines)


def _charts(report: Mapping[str, Any]) -> str:
    if not report.get("daily"):
        return '<p class="muted">No counts yet: nothing to chart.</p>'
    parts = []
    if report["comparisons"]:
        parts += [
            "<h3>Conversion rate per arm, cumulative</h3>",
            _rate_chart(report),
            f"<h3>Uplift over {_e(report['baseline'])}, with its sequential 95 % interval</h3>",
            _uplift_chart(report),
        ]
    parts += ["<h3>Funnel</h3>", _funnel_chart(report)]
    return "\n".join(parts)


# ---- charts ---------------------------------------------------------------------------------


def _el(tag: str, inner: str = "", **attributes: object) -> str:
    """An SVG element; ``stroke_width`` is written ``stroke-width``."""
    written = " ".join(
        f'{name.replace("_", "-")}="{_e(value)}"' for name, value in attributes.items()
    )
    return f"<{tag} {written}>{inner}</{tag}>" if inner else f"<{tag} {written}/>"


def _text(x: float, y: float, words: str, colour: str, size: int = 11, **more: object) -> str:
    return _el("text", _e(words), x=f"{x:.1f}", y=f"{y:.1f}", font_size=size, fill=colour, **more)


def _colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


def _svg(content: str, label: str) -> str:
    # No xmlns: inline SVG in an HTML page needs none, and the page then holds no URL at all.
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}"'
        f' role="img" aria-label="{_e(label)}">{content}</svg>'
    )


def _x(index: int, count: int) -> float:
    span = _WIDTH - _LEFT - 12
    return _LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, low: float, high: float) -> float:
    span = (high - low) or 1.0
    return _HEIGHT - _PAD - (value - low) / span * (_HEIGHT - 2 * _PAD)


def _axes(low: str, high: str, days: Sequence[str]) -> str:
    """The two axes, the value at the bottom and the top, the first and last day."""
    bottom = _HEIGHT - _PAD
    parts = [
        _el("line", x1=_LEFT, y1=bottom, x2=_WIDTH - 12, y2=bottom, stroke="#9ca3af"),
        _el("line", x1=_LEFT, y1=_PAD, x2=_LEFT, y2=bottom, stroke="#9ca3af"),
        _text(_LEFT - 4, _PAD + 4, high, "#6b7280", text_anchor="end"),
        _text(_LEFT - 4, bottom + 4, low, "#6b7280", text_anchor="end"),
    ]
    if days:
        parts.append(_text(_LEFT, bottom + 14, days[0], "#6b7280"))
        if len(days) > 1:
            parts.append(_text(_WIDTH - 12, bottom + 14, days[-1], "#6b7280", text_anchor="end"))
    return "".join(parts)


def _legend(names: Sequence[str], first_colour: int = 0) -> str:
    return "".join(
        _text(_LEFT + 8 + 110 * i, 16, name, _colour(first_colour + i), size=12)
        for i, name in enumerate(names)
    )


def _runs(values: Sequence[_T | None]) -> list[list[tuple[int, _T]]]:
    """The stretches of consecutive days that have a value: a line breaks where one has not."""
    runs: list[list[tuple[int, _T]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index, value))
    return [run for run in runs if run]


def _series(
    values: Sequence[float | None], colour: str, y: Callable[[float], float], name: str
) -> str:
    """A line through the values, broken at gaps; a lone point as a dot."""
    parts = []
    for run in _runs(values):
        points = [(_x(k, len(values)), y(value)) for k, value in run]
        if len(points) == 1:
            parts.append(
                _el("circle", cx=f"{points[0][0]:.1f}", cy=f"{points[0][1]:.1f}", r=3, fill=colour)
            )
        else:
            written = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                _el("polyline", fill="none", stroke=colour, stroke_width=2, points=written)
            )
    return f"<g><title>{_e(name)}</title>{''.join(parts)}</g>"


def _band(bands: Sequence[Sequence[float] | None], colour: str, y: Callable[[float], float]) -> str:
    """A shaded band between each day's lower and upper bound, broken at gaps."""
    shapes = []
    for run in _runs(bands):
        upper = [f"{_x(k, len(bands)):.1f},{y(band[1] * 100):.1f}" for k, band in run]
        lower = [f"{_x(k, len(bands)):.1f},{y(band[0] * 100):.1f}" for k, band in run]
        outline = " ".join(upper + lower[::-1])
        shapes.append(_el("polygon", points=outline, fill=colour, fill_opacity="0.15"))
    return "".join(shapes)


def _rate_chart(report: Mapping[str, Any]) -> str:
    days = report["daily"]
    names = [str(v["id"]) for v in report["variants"]]
    rates = {
        name: [
            None
            if d["arms"][name]["conversion_rate"] is None
            else d["arms"][name]["conversion_rate"] * 100
            for d in days
        ]
        for name in names
    }
    high = max((r for series in rates.values() for r in series if r is not None), default=0.0)
    high = high * 1.1 or 1.0

    def y(value: float) -> float:
        return _y(value, 0, high)

    lines = "".join(_series(rates[name], _colour(i), y, name) for i, name in enumerate(names))
    axes = _axes("0 %", f"{high:.2f} %", [d["day"] for d in days])
    return _svg(axes + lines + _legend(names), "cumulative conversion rate per arm by day")


def _uplift_chart(report: Mapping[str, Any]) -> str:
    days = report["daily"]
    names = [str(c["variant"]) for c in report["comparisons"]]
    found = {name: [d["comparisons"].get(name) or {} for d in days] for name in names}
    centres = {
        name: [None if f.get("uplift_abs") is None else f["uplift_abs"] * 100 for f in series]
        for name, series in found.items()
    }
    bands = {name: [f.get("sequential_ci95_abs") for f in series] for name, series in found.items()}
    bounds = [0.0]
    bounds += [value for series in centres.values() for value in series if value is not None]
    bounds += [b * 100 for series in bands.values() for band in series if band for b in band]
    low, high = min(bounds), max(bounds)
    if low == high:
        low, high = low - 1, high + 1

    def y(value: float) -> float:
        return _y(value, low, high)

    zero = f"{y(0):.1f}"
    shapes = [
        _el(
            "line",
            x1=_LEFT,
            y1=zero,
            x2=_WIDTH - 12,
            y2=zero,
            stroke="#111827",
            stroke_dasharray="4 3",
        )
    ]
    for i, name in enumerate(names, start=1):
        shapes.append(_band(bands[name], _colour(i), y))
        shapes.append(_series(centres[name], _colour(i), y, f"{name} against the baseline"))
    axes = _axes(f"{low:+.2f} pt", f"{high:+.2f} pt", [d["day"] for d in days])
    label = "uplift per variant over the baseline with its sequential 95 % interval"
    return _svg(axes + "".join(shapes) + _legend(names, first_colour=1), label)


def _funnel_chart(report: Mapping[str, Any]) -> str:
    funnel: Mapping[str, Mapping[str, int]] = report.get("funnel") or {}
    names = list(funnel)
    steps = _FUNNEL if report.get("version") else _PLAIN_FUNNEL  # no version: no experiment
    top = max((funnel[n][s] for n in names for s in steps), default=0) or 1
    group = (_WIDTH - _LEFT - 12) / len(steps)
    bar = group / (len(names) + 1)
    shapes = []
    for s, step in enumerate(steps):
        x0 = _LEFT + s * group
        shapes.append(_text(x0, _HEIGHT - _PAD + 14, step, "#374151"))
        for i, name in enumerate(names):
            value = funnel[name][step]
            height = value / top * (_HEIGHT - 2 * _PAD)
            shapes.append(
                _el(
                    "rect",
                    f"<title>{_e(name)} {step}: {value:,}</title>",
                    x=f"{x0 + i * bar:.1f}",
                    y=f"{_HEIGHT - _PAD - height:.1f}",
                    width=f"{bar * 0.9:.1f}",
                    height=f"{height:.1f}",
                    fill=_colour(i),
                )
            )
    axes = _axes("0", f"{top:,}", [])
    return _svg(axes + "".join(shapes) + _legend(names), "funnel per arm")
