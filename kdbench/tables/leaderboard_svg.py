"""The leaderboard's accuracy-against-time figure of one pair, as inline SVG markup written here.

Why SVG written by hand and not a matplotlib PNG per pair: at a grown publication's 40 pairs the PNGs were
two thirds of ``kdbench leaderboard``'s time and most of its page; an SVG of a few hundred points is a few
kilobytes of text, drawn by the browser at any size, and needs no JavaScript. Each point carries a
``<title>`` (the browser's tooltip): the variant's label and its numbers (its parameters are its table row's).

How it avoids the old figure's faults: the axes fit the points (time starts at 0 only when the points spread
over more than half of it, so a narrow band is not squashed at one side), markers are open shapes drawn
largest spread first, so a marker on top of another leaves both outlines visible, and every drawn thing (each
method's marker, the teacher's line, the student from scratch and its shaded ± std band) is in the legend.
Colours come from classes of the page's style sheet (``c0``…``c9``), so the markup carries no style
attribute, which the page's Content-Security-Policy would refuse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from kdbench.tables.units import time_unit

WIDTH, HEIGHT = 620, 380  # the plot, in SVG units (CSS pixels at scale 1)
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 14, 46  # margins inside the plot box for ticks and axis labels
LEGEND_WIDTH = 200  # per legend column
LEGEND_ROW = 17
LEGEND_ROWS = 21  # entries per legend column
COLOURS = 10  # classes c0 … c9 of the style sheet
MARKERS = ("circle", "square", "triangle", "diamond", "down", "plus", "cross")
RADIUS = 4.5


@dataclass(frozen=True)
class Point:
    """One variant on the pair: means and sample stds over its runs (std NaN or 0 with one run)."""

    label: str  # the method as the table names it: the legend groups by it
    seconds: float  # mean wall time per run
    seconds_std: float
    top1: float
    top1_std: float
    n: int


@dataclass(frozen=True)
class Reference:
    """The pair's teacher and the student trained from scratch (mean, sample std, runs)."""

    teacher: str
    teacher_top1: float
    student: str
    scratch_mean: float
    scratch_std: float
    scratch_n: int


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10^k) covering [low, high] with about ``count`` ticks."""
    span = high - low
    if not math.isfinite(span) or span <= 0:
        return [low]
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def axis_range(values: Sequence[float], from_zero: bool = False) -> tuple[float, float]:
    """[low, high] around the finite ``values`` with 6% padding; from 0 when ``from_zero`` and all are ≥ 0."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high - low < 1e-9:
        pad = abs(high) * 0.05 or 1.0
        return (0.0 if from_zero and low >= 0 else low - pad), high + pad
    pad = (high - low) * 0.06
    return (0.0 if from_zero and low >= 0 else low - pad), high + pad


def _starts_at_zero(lows: Sequence[float], highs: Sequence[float]) -> bool:
    """Time from 0 only when the points already spread over more than half of [0, their largest time]."""
    finite_low = [v for v in lows if math.isfinite(v)]
    finite_high = [v for v in highs if math.isfinite(v)]
    return bool(finite_low) and min(finite_low) < 0.5 * max(finite_high)


def _marker(shape: str, x: float, y: float, r: float = RADIUS) -> str:
    """The path data of an open marker centred on (x, y)."""
    # the start in whole units (half a unit off is invisible), the shape's own steps to a tenth
    if shape == "circle":
        return f"M{x - r:.0f},{y:.0f}a{r:g},{r:g} 0 1 0 {2 * r:g},0a{r:g},{r:g} 0 1 0 {-2 * r:g},0"
    if shape == "square":
        s = r * 0.9
        return f"M{x - s:.0f},{y - s:.0f}h{2 * s:.1f}v{2 * s:.1f}h{-2 * s:.1f}z"
    if shape == "triangle":
        return f"M{x:.0f},{y - 1.2 * r:.0f}l{1.1 * r:.1f},{2 * r:.1f}h{-2.2 * r:.1f}z"
    if shape == "down":
        return f"M{x:.0f},{y + 1.2 * r:.0f}l{1.1 * r:.1f},{-2 * r:.1f}h{-2.2 * r:.1f}z"
    if shape == "diamond":
        return f"M{x:.0f},{y - 1.2 * r:.0f}l{r:.1f},{1.2 * r:.1f}l{-r:.1f},{1.2 * r:.1f}l{-r:.1f},{-1.2 * r:.1f}z"
    if shape == "plus":
        return f"M{x - r:.0f},{y:.0f}h{2 * r:.1f}M{x:.0f},{y - r:.0f}v{2 * r:.1f}"
    return f"M{x - r:.0f},{y - r:.0f}l{2 * r:.1f},{2 * r:.1f}M{x - r:.0f},{y + r:.0f}l{2 * r:.1f},{-2 * r:.1f}"


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def time_accuracy_svg(points: Sequence[Point], reference: Reference, metric: str, title: str) -> str:
    """The figure as one ``<svg>`` element: each variant's mean top-1 against its mean wall time per run, with
    std bars over seeds, the teacher's accuracy and the student from scratch (± std band) as references."""
    labels = list(dict.fromkeys(p.label for p in points))
    style = {label: (i % COLOURS, MARKERS[i % len(MARKERS)]) for i, label in enumerate(labels)}
    seconds_max = max((p.seconds for p in points), default=math.nan)
    divisor, unit = time_unit(seconds_max)
    spread = [0.0 if math.isnan(p.seconds_std) else p.seconds_std for p in points]
    lows = [(p.seconds - s) / divisor for p, s in zip(points, spread, strict=True)]
    highs = [(p.seconds + s) / divisor for p, s in zip(points, spread, strict=True)]
    x0, x1 = axis_range(lows + highs, from_zero=_starts_at_zero(lows, highs))
    top = [p.top1 + (0.0 if math.isnan(p.top1_std) else p.top1_std) for p in points]
    bottom = [p.top1 - (0.0 if math.isnan(p.top1_std) else p.top1_std) for p in points]
    band = reference.scratch_n >= 2 and reference.scratch_std > 0
    scratch = [reference.scratch_mean] + ([reference.scratch_mean - reference.scratch_std,
                                           reference.scratch_mean + reference.scratch_std] if band else [])
    y0, y1 = axis_range(top + bottom + [reference.teacher_top1] + scratch)

    def sx(value: float) -> float:
        return LEFT + (value - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def sy(value: float) -> float:
        return HEIGHT - BOTTOM - (value - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)

    legend: list[tuple[str, str]] = []  # (swatch markup, text)
    body: list[str] = [f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
                       f'height="{HEIGHT - TOP - BOTTOM}"/>']
    body += _axes(x0, x1, y0, y1, sx, sy, f"training time per run ({unit})", f"{metric} top-1 (%)")
    if band:
        low, high = reference.scratch_mean - reference.scratch_std, reference.scratch_mean + reference.scratch_std
        body.append(f'<rect class="band" x="{LEFT}" y="{sy(high):.1f}" width="{WIDTH - LEFT - RIGHT}" '
                    f'height="{sy(low) - sy(high):.1f}"/>')
    if reference.scratch_n and math.isfinite(reference.scratch_mean):
        body.append(f'<path class="scratch" d="M{LEFT},{sy(reference.scratch_mean):.1f}H{WIDTH - RIGHT}"/>')
        seeds = f"{reference.scratch_n} seed{'s' if reference.scratch_n > 1 else ''}"
        legend.append(('<path class="scratch" d="M0,0h22"/>',
                       f"from scratch: {reference.scratch_mean:.2f} ({seeds})"))
        if band:
            legend.append(('<rect class="band" x="0" y="-6" width="22" height="12"/>',
                           f"from scratch ± std ({reference.scratch_std:.2f})"))
    if math.isfinite(reference.teacher_top1):
        body.append(f'<path class="teacher" d="M{LEFT},{sy(reference.teacher_top1):.1f}H{WIDTH - RIGHT}"/>')
        legend.append(('<path class="teacher" d="M0,0h22"/>', f"teacher: {reference.teacher_top1:.2f}"))
    legend[:0] = [(f'<path class="m c{style[label][0]}" d="{_marker(style[label][1], 11, 0)}"/>', label)
                  for label in labels]
    body += _points(points, spread, style, divisor, unit, sx, sy)
    return _svg(title, body, legend)


def _points(points: Sequence[Point], spread: Sequence[float], style: dict[str, tuple[int, str]], divisor: float,
            unit: str, sx: object, sy: object) -> list[str]:
    """The points: every error bar first (one path per colour), then the markers, grouped by colour (one
    ``<g class="m c…">``), each with its tooltip.

    Why grouped: a pair's figure holds up to a hundred points and a page forty figures or more; a class and a
    path element per point and per bar were a quarter of the figure's bytes. Bars under all markers leave every
    marker visible, which drawing the largest bars first did before.
    """
    assert callable(sx) and callable(sy)
    bars: dict[int, list[str]] = {}
    markers: dict[int, list[str]] = {}
    for point, s in sorted(zip(points, spread, strict=True), key=lambda item: -(item[1] + (item[0].top1_std or 0))):
        colour, shape = style[point.label]
        x, y = sx(point.seconds / divisor), sy(point.top1)
        if point.n >= 2:
            dy = 0.0 if math.isnan(point.top1_std) else point.top1_std
            bars.setdefault(colour, []).append(
                f"M{sx((point.seconds - s) / divisor):.0f},{y:.0f}H{sx((point.seconds + s) / divisor):.0f}"
                f"M{x:.0f},{sy(point.top1 - dy):.0f}V{sy(point.top1 + dy):.0f}")
        # the row's label and numbers: its parameters are the table's (a tooltip each was a third of a figure)
        tip = (f"{point.label}: {point.top1:.2f}" + (f" ± {point.top1_std:.2f}" if point.n >= 2 else "")
               + f", {point.seconds / divisor:.3g} {unit}, {point.n} seed{'s' if point.n > 1 else ''}")
        markers.setdefault(colour, []).append(f'<path d="{_marker(shape, x, y)}"><title>{escape(tip)}</title></path>')
    return ([f'<path class="e c{colour}" d="{"".join(paths)}"/>' for colour, paths in sorted(bars.items())]
            + [f'<g class="m c{colour}">{"".join(paths)}</g>' for colour, paths in sorted(markers.items())])


def _axes(x0: float, x1: float, y0: float, y1: float, sx: object, sy: object, xlabel: str, ylabel: str) -> list[str]:
    """Grid lines (one path per axis) and tick labels (one group per axis, which holds their class and anchor)."""
    assert callable(sx) and callable(sy)
    xs = [(sx(tick), tick) for tick in nice_ticks(x0, x1)]
    ys = [(sy(tick), tick) for tick in nice_ticks(y0, y1)]
    out = [f'<path class="grid" d="{"".join(f"M{x:.1f},{TOP}V{HEIGHT - BOTTOM}" for x, _ in xs)}'
           f'{"".join(f"M{LEFT},{y:.1f}H{WIDTH - RIGHT}" for y, _ in ys)}"/>',
           '<g class="tick" text-anchor="middle">'
           + "".join(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 15}">{_number(tick)}</text>' for x, tick in xs) + "</g>",
           '<g class="tick" text-anchor="end">'
           + "".join(f'<text x="{LEFT - 6}" y="{y + 4:.1f}">{_number(tick)}</text>' for y, tick in ys) + "</g>"]
    out.append(f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" '
               f'text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text class="label" transform="translate(14,{(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(ylabel)}</text>')
    return out


def _svg(title: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    columns = max(1, math.ceil(len(legend) / LEGEND_ROWS))
    width = WIDTH + columns * LEGEND_WIDTH
    items = []
    for i, (swatch, text) in enumerate(legend):
        x = WIDTH + 8 + (i // LEGEND_ROWS) * LEGEND_WIDTH
        y = TOP + 8 + (i % LEGEND_ROWS) * LEGEND_ROW
        items.append(f'<g transform="translate({x},{y})">{swatch}<text class="legend" x="28" y="4">'
                     f"{escape(text)}</text></g>")
    return (f'<svg class="plot" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">' + "".join(body) + "".join(items) + "</svg>")
