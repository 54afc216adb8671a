"""Server-side SVG charts for console pages: a line chart of several series over evenly
spaced buckets, and a bar chart. No script; colours and strokes come from classes in
console.css (the pages' CSP refuses inline styles). Every text is escaped.

A value of None leaves a gap in its line. A chart with nothing to draw says "no data".
Each point and bar carries a ``<title>`` with its value (the browser shows it on hover).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "bar_chart", "line_chart", "nice_ceiling", "percent"]

SERIES_CLASSES = 6  # series-0 .. series-5 in console.css, then they repeat
_TICKS = 5
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP = 48.0, 16.0, 12.0
_X_LABELS_HEIGHT = 20.0
_LEGEND_ROW = 18.0
_CHAR_WIDTH = 7.5  # of the 13px legend text (console.css), for laying the legend out


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name for the legend and one value (or None) per x position."""

    name: str
    values: Sequence[float | None]
    dashed: bool = False


def _n(v: float) -> str:
    return f"{v:.1f}"


def nice_ceiling(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= ``v`` (1 for v <= 0)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    power = 10.0 ** math.floor(math.log10(v))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= v * (1 - 1e-12):
            return step * power
    return 10.0 * power


class _Frame:
    """Plot area geometry: value -> pixel."""

    def __init__(self, width: float, height: float, legend_rows: int, y_max: float,
                 count: int) -> None:
        self.width, self.height = width, height
        self.left, self.right = _MARGIN_LEFT, width - _MARGIN_RIGHT
        self.top = _MARGIN_TOP
        self.bottom = height - _X_LABELS_HEIGHT - legend_rows * _LEGEND_ROW - 8
        self.y_max = y_max
        self.count = count

    def x(self, i: int) -> float:
        """Centre of slot ``i`` of ``count`` equal slots."""
        slot = (self.right - self.left) / max(self.count, 1)
        return self.left + slot * (i + 0.5)

    def y(self, v: float) -> float:
        v = min(max(v, 0.0), self.y_max)
        return self.bottom - (self.bottom - self.top) * v / self.y_max


def _open(width: float, height: float, title: str) -> list[str]:
    t = escape(title)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {_n(width)} '
            f'{_n(height)}" width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{t}">',
            f"<title>{t}</title>"]


def _axes(f: _Frame, x_labels: Sequence[str], y_format: Callable[[float], str]) -> list[str]:
    out = ['<g class="grid">']
    for k in range(_TICKS):
        y = f.y(f.y_max * k / (_TICKS - 1))
        out.append(f'<line x1="{_n(f.left)}" y1="{_n(y)}" x2="{_n(f.right)}" y2="{_n(y)}"/>')
    out.append("</g>")
    out.append('<g class="axis">')
    out.append(f'<line x1="{_n(f.left)}" y1="{_n(f.top)}" x2="{_n(f.left)}" y2="{_n(f.bottom)}"/>')
    out.append(f'<line x1="{_n(f.left)}" y1="{_n(f.bottom)}" x2="{_n(f.right)}" '
               f'y2="{_n(f.bottom)}"/>')
    for k in range(_TICKS):
        v = f.y_max * k / (_TICKS - 1)
        y = f.y(v)
        out.append(f'<line x1="{_n(f.left - 4)}" y1="{_n(y)}" x2="{_n(f.left)}" y2="{_n(y)}"/>')
        out.append(f'<text class="tick y" x="{_n(f.left - 6)}" y="{_n(y + 4)}" '
                   f'text-anchor="end">{escape(y_format(v))}</text>')
    # at most one label every ~56 px, always starting with the first slot
    step = max(math.ceil(len(x_labels) * 56 / max(f.right - f.left, 1)), 1)
    for i, label in enumerate(x_labels):
        x = f.x(i)
        out.append(f'<line x1="{_n(x)}" y1="{_n(f.bottom)}" x2="{_n(x)}" y2="{_n(f.bottom + 4)}"/>')
        if i % step == 0:
            out.append(f'<text class="tick x" x="{_n(x)}" y="{_n(f.bottom + 16)}" '
                       f'text-anchor="middle">{escape(label)}</text>')
    out.append("</g>")
    return out


def _legend_rows(names: Sequence[str], width: float) -> list[list[tuple[int, str, float]]]:
    """Legend entries (series index, name, x) laid out left to right, wrapping."""
    rows: list[list[tuple[int, str, float]]] = [[]]
    x = _MARGIN_LEFT
    for i, name in enumerate(names):
        item = 26 + len(name) * _CHAR_WIDTH + 14
        if rows[-1] and x + item > width - _MARGIN_RIGHT:
            rows.append([])
            x = _MARGIN_LEFT
        rows[-1].append((i, name, x))
        x += item
    return rows if rows[0] else []


def _legend(rows: list[list[tuple[int, str, float]]], series: Sequence[Series],
            f: _Frame) -> list[str]:
    out = ['<g class="legend">']
    for r, row in enumerate(rows):
        y = f.bottom + _X_LABELS_HEIGHT + 8 + r * _LEGEND_ROW
        for i, name, x in row:
            dashed = " dashed" if series[i].dashed else ""
            out.append(f'<g class="series series-{i % SERIES_CLASSES}{dashed}">'
                       f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 20)}" y2="{_n(y)}"/></g>')
            out.append(f'<text x="{_n(x + 26)}" y="{_n(y + 4)}">{escape(name)}</text>')
    out.append("</g>")
    return out


def _no_data(f: _Frame) -> str:
    return (f'<text class="nodata" x="{_n((f.left + f.right) / 2)}" '
            f'y="{_n((f.top + f.bottom) / 2)}" text-anchor="middle">no data</text>')


def percent(v: float) -> str:
    """A share as a percentage for axis ticks and titles: "25%", "12.5%"."""
    return f"{100 * v:.0f}%" if v * 100 == round(v * 100) else f"{100 * v:.1f}%"


def line_chart(x_labels: Sequence[str], series: Sequence[Series], *, title: str,
               y_max: float | None = 1.0, y_format: Callable[[float], str] = "{:.2f}".format,
               width: float = 640, height: float = 240) -> Markup:
    """Lines over evenly spaced x positions (one per label), y from 0 to ``y_max``
    (None: a round number above the largest value). None values leave gaps; a point
    standing alone is still drawn (every point is a circle)."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    top = y_max if y_max is not None else nice_ceiling(max(values, default=0.0))
    legend = _legend_rows([s.name for s in series], width)
    f = _Frame(width, height + len(legend) * _LEGEND_ROW, len(legend), top, len(x_labels))
    out = _open(f.width, f.height, title)
    out += _axes(f, x_labels, y_format)
    if not values or not x_labels:
        out.append(_no_data(f))
    for i, s in enumerate(series):
        dashed = " dashed" if s.dashed else ""
        out.append(f'<g class="series series-{i % SERIES_CLASSES}{dashed}" '
                   f'data-series="{escape(s.name)}">')
        run: list[str] = []
        points: list[str] = []
        for j, v in enumerate(list(s.values)[: len(x_labels)]):
            if v is None or not math.isfinite(v):
                if len(run) > 1:
                    out.append(f'<polyline points="{" ".join(run)}"/>')
                run = []
                continue
            x, y = f.x(j), f.y(v)
            run.append(f"{_n(x)},{_n(y)}")
            points.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3"><title>'
                          f'{escape(s.name)}, {escape(x_labels[j])}: {escape(y_format(v))}'
                          f"</title></circle>")
        if len(run) > 1:
            out.append(f'<polyline points="{" ".join(run)}"/>')
        out += points
        out.append("</g>")
    out += _legend(legend, series, f)
    out.append("</svg>")
    return Markup("".join(out))  # every text and attribute above is escaped


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str,
              value_format: Callable[[float], str] = "{:,.0f}".format,
              width: float = 640, height: float = 240) -> Markup:
    """One bar per label, y from 0 to a round number above the largest value."""
    top = nice_ceiling(max(values, default=0.0))
    f = _Frame(width, height, 0, top, len(labels))
    out = _open(width, height, title)
    out += _axes(f, labels, value_format)
    if not any(v > 0 for v in values):
        out.append(_no_data(f))
    slot = (f.right - f.left) / max(len(labels), 1)
    out.append('<g class="bars">')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = f.y(v)
        out.append(f'<rect class="bar" x="{_n(f.x(i) - slot * 0.4)}" y="{_n(y)}" '
                   f'width="{_n(slot * 0.8)}" height="{_n(f.bottom - y)}">'
                   f"<title>{escape(label)}: {escape(value_format(v))}</title></rect>")
    out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))  # every text and attribute above is escaped

