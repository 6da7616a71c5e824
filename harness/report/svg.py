"""Plots of rates and their intervals as generated SVG, from this one small module.

Why generated SVG and not a charting library: the viewer's pages and the procurement
report must open offline, archived or attached to an e-mail, so nothing may be fetched
at view time (no CDN, no script bundle); a plot here is a few kilobytes of markup inside
the page, where a charting library would add hundreds of kilobytes of JavaScript to every
page and a dependency to the harness. Two plot shapes cover what the harness shows:

- :func:`forest`: one row per group (language, category), the estimate as a dot and its
  95% interval as a bar, optionally against a reference value (a vendor's claim) drawn as
  a dashed, labelled line and other values (the vendor's record) as hollow diamonds;
- :func:`trend`: small multiples, one labelled panel per group, the estimate and its
  interval for each run along the x axis.

Readable without colour: groups are told apart by their text labels (never by colour
alone), markers differ in shape and fill, the reference line is dashed and labelled, and
every value is written as text beside its row. Every plot is ``role="img"`` with a
``<title>`` and ``<desc>`` (``aria-labelledby``), and every point carries its own
``<title>`` ("hi, run 3: 90.0% [55.5, 99.7], n=10"), so a screen reader, a tooltip and a
search all find the numbers. Every string from data is escaped (``html.escape``): the
output is safe inside HTML and is well-formed XML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
_INK = "#1b1f24"
_DOT = "#0b5cad"
_GRID = "#d0d7de"
_REF = "#9a3412"
_LABEL_CHARS = 22


@dataclass(frozen=True)
class Point:
    """One estimate of a rate (0..1) with its interval; ``None`` where there is none."""

    label: str
    """The group (forest) or the run (trend) this point is of."""
    value: float | None
    low: float | None = None
    high: float | None = None
    detail: str = ""
    """Appended to the point's text alternative, e.g. ``n=10``."""
    other: float | None = None
    """A second value drawn as a hollow diamond (forest only: the vendor's record)."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ok(x: float | None) -> bool:
    return x is not None and not math.isnan(x) and not math.isinf(x)


def pct(x: float | None) -> str:
    """A rate as the plots write it: ``90.0%``, or ``n/a``."""
    return f"{x * 100:.1f}%" if x is not None and _ok(x) else "n/a"


def describe(p: Point, prefix: str = "") -> str:
    """The text alternative of one point: ``hi: 90.0% [55.5, 99.7], n=10``."""
    text = f"{prefix}{p.label}: {pct(p.value)}"
    if _ok(p.low) and _ok(p.high):
        text += f" [{pct(p.low)[:-1]}, {pct(p.high)[:-1]}]"
    if p.other is not None:
        text += f"; other {pct(p.other)}"
    return f"{text}, {p.detail}" if p.detail else text


def _short(label: str, n: int = _LABEL_CHARS) -> str:
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _open(ident: str, title: str, desc: str, width: int, height: int) -> str:
    i = _e(ident)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="{i}" role="img" '
            f'aria-labelledby="{i}-t {i}-d" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'font-size="12"><title id="{i}-t">{_e(title)}</title>'
            f'<desc id="{i}-d">{_e(desc)}</desc>')


def _diamond(x: float, y: float, r: float = 5) -> str:
    return (f'<path d="M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z" '
            f'fill="#fff" stroke="{_REF}" stroke-width="1.5" class="other"/>')


def _interval(x0: float, x1: float, y: float, vertical: bool = False) -> str:
    """An interval bar with end caps (horizontal, or vertical at x = y's position)."""
    if vertical:
        return (f'<path d="M{y:.1f} {x0:.1f}V{x1:.1f}M{y - 3:.1f} {x0:.1f}H{y + 3:.1f}M{y - 3:.1f} {x1:.1f}'
                f'H{y + 3:.1f}" stroke="{_INK}" stroke-width="1.2" fill="none" class="ci"/>')
    return (f'<path d="M{x0:.1f} {y:.1f}H{x1:.1f}M{x0:.1f} {y - 4:.1f}V{y + 4:.1f}M{x1:.1f} {y - 4:.1f}V{y + 4:.1f}" '
            f'stroke="{_INK}" stroke-width="1.2" fill="none" class="ci"/>')


def forest(points: Sequence[Point], *, ident: str, title: str, reference: float | None = None,
           reference_label: str = "claimed", other_label: str = "other") -> str:
    """One row per point: the estimate (filled dot) and its interval (capped bar) on a 0..100% axis.

    ``reference`` draws a dashed vertical line labelled ``reference_label`` and its value
    (a claimed rate); a point's ``other`` value is a hollow diamond (``other_label`` in the
    legend). Rows without a value say ``n/a``.
    """
    left, right, top, row = 150, 170, 48, 24
    plot_w = WIDTH - left - right
    has_other = any(_ok(p.other) for p in points)
    legend_h = 26
    height = top + row * max(len(points), 1) + 26 + legend_h

    def x(v: float) -> float:
        return left + _clamp(v) * plot_w

    desc = ("Filled dots are estimates and capped bars their 95% intervals, one row per group"
            + (f"; the dashed line is the {reference_label} value {pct(reference)}" if _ok(reference) else "")
            + (f"; hollow diamonds are the {other_label} values" if has_other else "")
            + ". Each row's numbers are written at its right.")
    out = [_open(ident, title, desc, WIDTH, height)]
    bottom = top + row * max(len(points), 1)
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{bottom}" stroke="{_GRID}"/>'
                   f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="middle" fill="{_INK}">{int(t * 100)}%</text>')
    out.append(f'<text x="{WIDTH - right + 16}" y="{top - 28}" fill="{_INK}" font-weight="bold">estimate [95% CI]</text>')
    for i, p in enumerate(points):
        y = top + row * i + row / 2
        out.append(f'<g class="row"><title>{_e(describe(p))}</title>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{_INK}">{_e(_short(p.label))}</text>')
        if _ok(p.low) and _ok(p.high):
            out.append(_interval(x(p.low or 0.0), x(p.high or 0.0), y))
        if _ok(p.value):
            out.append(f'<circle cx="{x(p.value or 0.0):.1f}" cy="{y:.1f}" r="4.5" fill="{_DOT}" stroke="{_INK}" '
                       f'class="estimate"/>')
        if _ok(p.other):
            out.append(_diamond(x(p.other or 0.0), y))
        text = pct(p.value) + (f" [{pct(p.low)[:-1]}, {pct(p.high)[:-1]}]" if _ok(p.low) and _ok(p.high) else "")
        out.append(f'<text x="{WIDTH - right + 16}" y="{y + 4:.1f}" fill="{_INK}">{_e(text)}</text></g>')
    if reference is not None and _ok(reference):
        rx = x(reference)
        out.append(f'<g class="reference"><title>{_e(reference_label)}: {pct(reference)}</title>'
                   f'<line x1="{rx:.1f}" y1="{top - 6}" x2="{rx:.1f}" y2="{bottom}" stroke="{_REF}" stroke-width="2" '
                   f'stroke-dasharray="6 4"/><text x="{rx:.1f}" y="{top - 10}" text-anchor="middle" fill="{_REF}">'
                   f'{_e(reference_label)} {pct(reference)}</text></g>')
    ly = height - 10
    legend = [f'<g class="legend"><circle cx="{left}" cy="{ly - 4}" r="4.5" fill="{_DOT}" stroke="{_INK}"/>'
              f'<text x="{left + 10}" y="{ly}" fill="{_INK}">estimate</text>'
              f'{_interval(left + 80, left + 110, ly - 4)}<text x="{left + 116}" y="{ly}" fill="{_INK}">95% CI</text>']
    lx = left + 180
    if _ok(reference):
        legend.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 26}" y2="{ly - 4}" stroke="{_REF}" stroke-width="2" '
                      f'stroke-dasharray="6 4"/><text x="{lx + 32}" y="{ly}" fill="{_INK}">{_e(reference_label)}</text>')
        lx += 110
    if has_other:
        legend.append(_diamond(lx + 5, ly - 4) + f'<text x="{lx + 16}" y="{ly}" fill="{_INK}">{_e(other_label)}</text>')
    out.append("".join(legend) + "</g></svg>")
    return "".join(out)


def trend(panels: Sequence[tuple[str, Sequence[Point]]], *, ident: str, title: str) -> str:
    """Small multiples: one labelled panel per group, each run's estimate (dot) and interval
    (vertical capped bar) along the x axis, the runs' labels under the last panel."""
    left, right, panel, gap, top = 110, 80, 40, 8, 10
    slots = max((len(ps) for _, ps in panels), default=1) or 1
    plot_w = WIDTH - left - right
    step = plot_w / slots
    height = top + (panel + gap) * max(len(panels), 1) + 24

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    desc = ("One panel per group; in each, dots are one run's estimate and vertical bars its 95% interval, "
            "runs in dossier order from left to right, 0% at the bottom and 100% at the top of each panel. "
            "The latest value is written at the right.")
    out = [_open(ident, title, desc, WIDTH, height)]
    labels: Sequence[Point] = ()
    for k, (group, points) in enumerate(panels):
        y0 = top + (panel + gap) * k

        def y(v: float, y0: float = y0) -> float:
            return y0 + panel - _clamp(v) * panel

        out.append(f'<g class="panel"><text x="{left - 8}" y="{y0 + panel / 2 + 4:.1f}" text-anchor="end" '
                   f'fill="{_INK}" font-weight="bold">{_e(_short(group, 14))}</text>'
                   f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel}" fill="none" stroke="{_GRID}"/>'
                   f'<line x1="{left}" y1="{y(0.5):.1f}" x2="{left + plot_w}" y2="{y(0.5):.1f}" stroke="{_GRID}" '
                   f'stroke-dasharray="2 3"/>'
                   f'<text x="{left - 2}" y="{y0 + 9}" text-anchor="end" font-size="9" fill="{_INK}">100</text>'
                   f'<text x="{left - 2}" y="{y0 + panel}" text-anchor="end" font-size="9" fill="{_INK}">0</text>')
        for i, p in enumerate(points):
            if not _ok(p.value) and not (_ok(p.low) and _ok(p.high)):
                continue
            out.append(f'<g class="point"><title>{_e(describe(p, f"{group}, "))}</title>')
            if _ok(p.low) and _ok(p.high):
                out.append(_interval(y(p.high or 0.0), y(p.low or 0.0), x(i), vertical=True))
            if _ok(p.value):
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value or 0.0):.1f}" r="3.5" fill="{_DOT}" '
                           f'stroke="{_INK}" class="estimate"/>')
            out.append("</g>")
        last = next((p for p in reversed(points) if _ok(p.value)), None)
        if last is not None:
            out.append(f'<text x="{left + plot_w + 6}" y="{y0 + panel / 2 + 4:.1f}" fill="{_INK}">'
                       f'{pct(last.value)}</text>')
        out.append("</g>")
        if len(points) > len(labels):
            labels = points
    base = top + (panel + gap) * max(len(panels), 1) - gap + 14
    every = max(1, math.ceil(len(labels) / 16))  # at most 16 labels, so they never overlap
    out += [f'<text x="{x(i):.1f}" y="{base}" text-anchor="middle" font-size="10" fill="{_INK}">{_e(_short(p.label, 8))}'
            f"</text>" for i, p in enumerate(labels) if i % every == 0 or i == len(labels) - 1]
    out.append("</svg>")
    return "".join(out)
