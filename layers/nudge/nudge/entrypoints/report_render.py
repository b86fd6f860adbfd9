"""Reports for people: rich tables in the terminal, and one self-contained HTML file.

The HTML has no scripts, fonts, images or stylesheets from elsewhere: its charts are inline
SVG drawn here, so the file opens anywhere (an email attachment, an air-gapped laptop) and
shows the same. Every string that came from data (trigger, variant and event names) is
escaped. Two charts per trigger with an experiment:
- conversion rate per arm over the days, cumulative, as a team watching daily saw it;
- each variant's uplift over the baseline with its sequential 95 % interval as a band: the
  interval that may be read at every look, whose position against zero is the verdict. A
  band around each rate line would mix two scales (a rate and a difference of rates), so
  the uplift has its own chart;
and the funnel (assigned, sent, opened, clicked, converted) as bars per arm.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["html_report", "print_report", "print_summary"]

_DASH = "—"
_COLOURS = ("#64748b", "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
_WIDTH, _HEIGHT, _PAD = 640, 220, 40


# ---- figures as text ----------------------------------------------------------------------


def _pct(value: Any, digits: int = 2) -> str:
    return _DASH if value is None else f"{value * 100:.{digits}f} %"


def _points(value: Any) -> str:
    return _DASH if value is None else f"{value * 100:+.2f} pt"


def _range(pair: Any, scale: float = 100, unit: str = "pt") -> str:
    if not pair:
        return _DASH
    return f"[{pair[0] * scale:+.2f}, {pair[1] * scale:+.2f}] {unit}"


def _number(value: Any, digits: int = 4) -> str:
    return _DASH if value is None else f"{value:.{digits}f}"


def _money(value: Any) -> str:
    return _DASH if value is None else f"{value:,.2f}"


def _headline(report: dict[str, Any]) -> str:
    goal = report.get("goal")
    version = report.get("version") or "no experiment"
    aim = f"goal {goal['event']} within {goal['within']}" if goal else "plain counts"
    return f"{report['trigger']} · version {version} · {aim} · as of {report.get('as_of', '')}"


# ---- terminal -------------------------------------------------------------------------------


def print_report(report: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    console.print(f"[bold]{_headline(report)}[/]", markup=True, highlight=False)
    arms = Table(title="arms")
    columns = ("arm", "assigned", "sent", "opened", "clicked", "converted", "rate", "rev/person")
    for column in columns:
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for variant in report["variants"]:
        arms.add_row(
            str(variant["id"]),
            *(str(variant[m]) for m in ("assigned", "sent", "opened", "clicked", "converted")),
            _pct(variant["conversion_rate"]),
            _money(variant["revenue_per_assigned"]),
        )
    console.print(arms)
    if report["comparisons"]:
        console.print(_comparisons_table(report))
    srm = report.get("srm")
    if srm:
        flagged = srm["flag"]
        style = "red" if flagged else "green"
        words = "MISMATCH: assignment or counting is broken" if flagged else "shares as set"
        console.print(f"sample ratio: p = {_number(srm['p_value'])} [{style}]{words}[/]")
    for flag in report.get("fatigue", {}).get("flags", []):
        console.print(f"[yellow]fatigue:[/] {flag}")


def _comparisons_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"against {report['baseline']}")
    columns = (
        "variant",
        "uplift",
        "95 % CI",
        "relative",
        "p-value",
        "P(better)",
        "sequential 95 %",
        "verdict",
        "still needed/arm",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("variant", "verdict") else "right")
    for c in report["comparisons"]:
        table.add_row(
            str(c["variant"]),
            _points(c["uplift_abs"]),
            _range(c["ci95_abs"]),
            _pct(c["uplift_rel"], 1),
            _number(c["p_value"]),
            _pct(c["prob_better"], 1),
            _range(c["sequential"]["ci95_abs"]),
            str(c["sequential"]["verdict"]),
            _DASH if c["remaining_per_arm"] is None else f"{c['remaining_per_arm']:,}",
        )
    return table


def print_summary(reports: Sequence[dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    table = Table(title="triggers")
    for column in ("trigger", "version", "assigned", "sent", "converted", "verdicts"):
        table.add_column(
            column, justify="right" if column in ("assigned", "sent", "converted") else "left"
        )
    for report in reports:
        variants = report["variants"]
        verdicts = ", ".join(
            f"{c['variant']}: {c['sequential']['verdict']}" for c in report["comparisons"]
        )
        table.add_row(
            str(report["trigger"]),
            str(report.get("version") or _DASH),
            str(sum(v["assigned"] for v in variants)),
            str(sum(v["sent"] for v in variants)),
            str(sum(v["converted"] for v in variants)),
            verdicts or _DASH,
        )
    console.print(table)


# ---- HTML -----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(text: str, why: str | None = None) -> str:
    title = f' title="{_e(why)}"' if why and text == _DASH else ""
    return f"<td{title}>{_e(text)}</td>"


def html_report(reports: Sequence[dict[str, Any]]) -> str:
    body = "\n".join(_section(report) for report in reports) or "<p>No triggers.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nudge experiment report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
  padding: 0 1rem; color: #111827; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.15rem; margin-top: 2.5rem; }}
table {{ border-collapse: collapse; margin: .75rem 0; }}
th, td {{ padding: .25rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.flag {{ color: #b91c1c; }} .ok {{ color: #15803d; }} .muted {{ color: #6b7280; }}
svg {{ display: block; margin: .5rem 0 1.5rem; }}
</style></head><body>
<h1>Nudge experiment report</h1>
{body}
</body></html>
"""


def _section(report: dict[str, Any]) -> str:
    parts = [f"<section><h2>{_e(report['trigger'])}</h2>"]
    parts.append(f'<p class="muted">{_e(_headline(report))}</p>')
    parts.append(_arms_html(report))
    if report["comparisons"]:
        parts.append(_comparisons_html(report))
    srm = report.get("srm")
    if srm:
        kind = "flag" if srm["flag"] else "ok"
        words = "mismatch: assignment or counting is broken" if srm["flag"] else "shares as set"
        parts.append(
            f'<p class="{kind}">Sample ratio: p = {_e(_number(srm["p_value"]))}, {words}</p>'
        )
    for flag in report.get("fatigue", {}).get("flags", []):
        parts.append(f'<p class="flag">Fatigue: {_e(flag)}</p>')
    if report.get("daily") and report["comparisons"]:
        parts.append("<h3>Conversion rate over time (cumulative)</h3>")
        parts.append(_rate_chart(report))
        parts.append("<h3>Uplift against the baseline, with its sequential 95 % interval</h3>")
        parts.append(_uplift_chart(report))
    parts.append("<h3>Funnel</h3>")
    parts.append(_funnel_chart(report))
    parts.append("</section>")
    return "\n".join(parts)


def _arms_html(report: dict[str, Any]) -> str:
    heads = (
        "arm",
        "assigned",
        "sent",
        "opened",
        "clicked",
        "unsubscribed",
        "converted",
        "rate",
        "revenue",
        "per person",
    )
    rows = []
    for v in report["variants"]:
        cells = [_cell(str(v["id"]))]
        cells += [
            _cell(str(v[m]))
            for m in ("assigned", "sent", "opened", "clicked", "unsubscribed", "converted")
        ]
        cells.append(_cell(_pct(v["conversion_rate"]), "no one assigned yet"))
        cells.append(_cell(_money(v["revenue"])))
        cells.append(_cell(_money(v["revenue_per_assigned"]), "no one assigned yet"))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in heads)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _comparisons_html(report: dict[str, Any]) -> str:
    heads = (
        "variant",
        "uplift",
        "95 % CI",
        "relative",
        "p-value",
        "P(better)",
        "sequential 95 %",
        "verdict",
        "still needed per arm",
    )
    rows = []
    for c in report["comparisons"]:
        why = c.get("undefined", {})
        cells = [
            _cell(str(c["variant"])),
            _cell(_points(c["uplift_abs"]), why.get("uplift_abs")),
            _cell(_range(c["ci95_abs"]), why.get("ci95_abs")),
            _cell(_pct(c["uplift_rel"], 1), why.get("uplift_rel")),
            _cell(_number(c["p_value"]), why.get("p_value")),
            _cell(_pct(c["prob_better"], 1), why.get("prob_better")),
            _cell(_range(c["sequential"]["ci95_abs"]), why.get("sequential.ci95_abs")),
            _cell(str(c["sequential"]["verdict"])),
            _cell(
                _DASH if c["remaining_per_arm"] is None else f"{c['remaining_per_arm']:,}",
                why.get("remaining_per_arm"),
            ),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in heads)
    caption = f"<caption>against {_e(report['baseline'])}</caption>"
    return f"<table>{caption}<tr>{header}</tr>{''.join(rows)}</table>"


# ---- charts ---------------------------------------------------------------------------------


def _el(tag: str, inner: str = "", **attributes: object) -> str:
    """An SVG element; ``stroke_width`` is written ``stroke-width``."""
    written = " ".join(
        f'{name.replace("_", "-")}="{_e(value)}"' for name, value in attributes.items()
    )
    return f"<{tag} {written}>{inner}</{tag}>" if inner else f"<{tag} {written}/>"


def _text(x: float, y: float, words: str, colour: str, size: int = 11) -> str:
    return _el("text", _e(words), x=f"{x:.1f}", y=f"{y:.1f}", font_size=size, fill=colour)


def _line(points: Sequence[str], colour: str) -> str:
    return _el("polyline", fill="none", stroke=colour, stroke_width=2, points=" ".join(points))


def _colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


def _frame(content: str, label: str, low: float, high: float, unit: str) -> str:
    bottom = _HEIGHT - _PAD
    axis = (
        _el("line", x1=_PAD, y1=bottom, x2=_WIDTH - 10, y2=bottom, stroke="#9ca3af")
        + _text(4, _PAD, f"{high:.2f}{unit}", "#6b7280")
        + _text(4, bottom, f"{low:.2f}{unit}", "#6b7280")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}"'
        f' viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{_e(label)}">'
        f"{axis}{content}</svg>"
    )


def _x(index: int, count: int) -> float:
    span = _WIDTH - _PAD - 10
    return _PAD + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, low: float, high: float) -> float:
    span = (high - low) or 1.0
    return _HEIGHT - _PAD - (value - low) / span * (_HEIGHT - 2 * _PAD)


def _legend(names: Sequence[str]) -> str:
    return "".join(
        _text(_PAD + 110 * i, _HEIGHT - 8, name, _colour(i), size=12)
        for i, name in enumerate(names)
    )


def _rate_chart(report: dict[str, Any]) -> str:
    days = report["daily"]
    names = [v["id"] for v in report["variants"]]
    values = [
        d["arms"][n]["conversion_rate"]
        for d in days
        for n in names
        if d["arms"][n]["conversion_rate"] is not None
    ]
    high = max(values, default=0.0) * 100 or 1.0
    lines = []
    for i, name in enumerate(names):
        points = [
            f"{_x(k, len(days)):.1f},{_y(d['arms'][name]['conversion_rate'] * 100, 0, high):.1f}"
            for k, d in enumerate(days)
            if d["arms"][name]["conversion_rate"] is not None
        ]
        if points:
            lines.append(_line(points, _colour(i)))
    return _frame("".join(lines) + _legend(names), "conversion rate per arm by day", 0, high, " %")


def _uplift_chart(report: dict[str, Any]) -> str:
    days = report["daily"]
    names = [c["variant"] for c in report["comparisons"]]
    bounds = [0.0]
    for d in days:
        for n in names:
            found = d.get("comparisons", {}).get(n) or {}
            bounds += [b * 100 for b in (found.get("sequential_ci95_abs") or [])]
            if found.get("uplift_abs") is not None:
                bounds.append(found["uplift_abs"] * 100)
    low, high = min(bounds), max(bounds)
    if low == high:
        low, high = low - 1, high + 1
    shapes = [
        _el(
            "line",
            x1=_PAD,
            y1=f"{_y(0, low, high):.1f}",
            x2=_WIDTH - 10,
            y2=f"{_y(0, low, high):.1f}",
            stroke="#111827",
            stroke_dasharray="4 3",
        )
    ]
    for i, name in enumerate(names, start=1):
        upper, lower, centre = [], [], []
        for k, d in enumerate(days):
            found = d.get("comparisons", {}).get(name) or {}
            x = _x(k, len(days))
            band = found.get("sequential_ci95_abs")
            if band:
                upper.append(f"{x:.1f},{_y(band[1] * 100, low, high):.1f}")
                lower.append(f"{x:.1f},{_y(band[0] * 100, low, high):.1f}")
            if found.get("uplift_abs") is not None:
                centre.append(f"{x:.1f},{_y(found['uplift_abs'] * 100, low, high):.1f}")
        if upper:
            outline = " ".join(upper + lower[::-1])
            shapes.append(f'<polygon points="{outline}" fill="{_colour(i)}" fill-opacity="0.15"/>')
        if centre:
            shapes.append(_line(centre, _colour(i)))
    legend = "".join(
        _text(_PAD + 110 * (i - 1), _HEIGHT - 8, name, _colour(i), size=12)
        for i, name in enumerate(names, start=1)
    )
    return _frame(
        "".join(shapes) + legend, "uplift per variant with sequential interval", low, high, " pt"
    )


def _funnel_chart(report: dict[str, Any]) -> str:
    funnel: dict[str, dict[str, int]] = report.get("funnel") or {}
    names = list(funnel)
    steps = ("assigned", "sent", "opened", "clicked", "converted")
    top = max((funnel[n][s] for n in names for s in steps), default=0) or 1
    group = (_WIDTH - _PAD - 10) / len(steps)
    bar = group / (len(names) + 1)
    shapes = []
    for s, step in enumerate(steps):
        x0 = _PAD + s * group
        shapes.append(_text(x0, _HEIGHT - _PAD + 14, step, "#374151"))
        for i, name in enumerate(names):
            value = funnel[name][step]
            height = value / top * (_HEIGHT - 2 * _PAD)
            x = x0 + i * bar
            y = _HEIGHT - _PAD - height
            shapes.append(
                _el(
                    "rect",
                    f"<title>{_e(name)} {step}: {value}</title>",
                    x=f"{x:.1f}",
                    y=f"{y:.1f}",
                    width=f"{bar * 0.9:.1f}",
                    height=f"{height:.1f}",
                    fill=_colour(i),
                )
            )
    return _frame("".join(shapes) + _legend(names), "funnel per arm", 0, top, "")
