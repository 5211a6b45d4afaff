"""Charts as inline SVG, drawn on the server: no script, no chart library, nothing fetched.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says what it shows in
words; the pages put the same numbers in a table beside it for screen readers and for copying.
Colours come from CSS classes (`s-credit`, `s-cash`, …) in `static/app.css`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from adledger.domain.money import currency_exponent, format_money

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 78, 10, 14, 34
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the CSS class that colours it
    values: Sequence[int]


def _nice_max(value: int, floor: int = 1) -> int:
    """A round number at or above `value` (and `floor`) for the top of the axis."""
    value = max(value, floor)
    magnitude: int = 10 ** (len(str(value)) - 1)
    for step in (10, 20, 25, 50, 100):
        top: int = step * magnitude // 10
        if top >= value:
            return top
    return 10 * magnitude


def _one(currency: str) -> int:
    """One major unit in minor units: the smallest top of an axis of money."""
    one: int = 10 ** currency_exponent(currency)
    return one


def _frame(title: str, desc: str, body: list[str]) -> Markup:
    n = next(_ids)
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart{n}-t chart{n}-d" focusable="false">'
        f'<title id="chart{n}-t">{escape(title)}</title>'
        f'<desc id="chart{n}-d">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _axes(top: int, fmt: Callable[[int], str], labels: Sequence[str], every: int) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    out = []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        value = top * i // 4
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(value))}</text>"
        )
    n = max(len(labels), 1)
    slot = (WIDTH - LEFT - RIGHT) / n
    for i, label in enumerate(labels):
        if i % every == 0 or i == n - 1 and n <= 12:
            x = LEFT + slot * (i + 0.5)
            out.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    return out


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    currency: str,
    *,
    title: str,
    desc: str,
    label_every: int = 1,
) -> Markup:
    """One bar per label, its series stacked bottom-up in the order given."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0), _one(currency))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    bar_w = max(slot * 0.7, 1.0)
    body = _axes(top, lambda v: format_money(v, currency), labels, label_every)
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            tip = f"{label}: {s.name} {format_money(value, currency)}"
            body.append(
                f'<rect class="{s.css}" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
            )
    return _frame(title, desc, body)


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    currency: str,
    *,
    title: str,
    desc: str,
    label_every: int = 1,
) -> Markup:
    """One polyline per series over the labels."""
    top = _nice_max(max((v for s in series for v in s.values), default=0), _one(currency))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    body = _axes(top, lambda v: format_money(v, currency), labels, label_every)
    for s in series:
        points = " ".join(
            f"{LEFT + slot * (i + 0.5):.1f},{TOP + plot_h - plot_h * max(v, 0) / top:.1f}"
            for i, v in enumerate(s.values)
        )
        body.append(f'<polyline class="line {s.css}" points="{points}"/>')
    return _frame(title, desc, body)


def usage_bar(remaining: int, original: int, currency: str) -> Markup:
    """A small bar of a lot: what is left (filled) out of what was granted."""
    share = 0.0 if original <= 0 else max(0.0, min(1.0, remaining / original))
    left = format_money(remaining, currency)
    used = format_money(original - remaining, currency)
    label = f"{left} left, {used} used"
    return Markup(
        f'<svg class="usage" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" focusable="false">'
        f'<rect class="used" x="0" y="0" width="100" height="10"/>'
        f'<rect class="left" x="0" y="0" width="{share * 100:.1f}" height="10"/></svg>'
    )
