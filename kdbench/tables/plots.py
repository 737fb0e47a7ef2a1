"""Figures derived from records, drawn with matplotlib's object API.

Why the object API: ``pyplot`` and ``matplotlib.use`` keep process-wide state (a current figure, a
backend) that would leak between figures and into any program that imports kdbench; a ``Figure`` with
its own ``FigureCanvasAgg`` is a plain value.

Why these layout rules: the figures are meant to go into a talk as they are. So the title is short and
the details (metric, seeds, what the error bars are) go into a caption below the axes, wrapped to the
figure's measured width so that nothing is cut off; points are identified by a legend outside the axes,
never by text next to them (which collides when points are close); axes use units and scales that fit
the numbers (minutes rather than 0.002 h, log axes where a linear one would squash the bulk into a bin).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.scale import SymmetricalLogTransform

from kdbench.tables.cells import Stats, metric_column, scratch_stats, teacher_stats
from kdbench.tables.units import time_unit

WIDTH_IN = 7.0  # figure width before extra legend columns
PLOT_HEIGHT_IN = 4.2  # height of everything above the caption
DPI = 150
PAD_IN = 0.12  # margin around the caption
FONTSIZE = 8  # legend and caption
LEGEND_ROWS = 16  # entries per legend column before another column is added
LEGEND_COLUMN_IN = 1.7  # width added to the figure per extra legend column
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
           "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]  # fmt: skip
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]  # 7 against 10 colours: 70 distinct pairs before one repeats

#: Heavy tail: the range of the values is more than this many times their 10–90 % spread. A linear
#: 50-bin histogram then puts the middle 80 % of the samples into fewer than 3 bins.
HEAVY_TAIL_RATIO = 16.0
#: A log axis for positive scores only when they span at least this factor (2 decades); below that log
#: spacing hardly differs from linear and would not unsquash the bulk.
LOG_SPAN = 100.0
#: Counts on a log axis when the largest bin holds more than this many times the smallest non-empty one.
LOG_COUNT_SPAN = 100.0
SCORE_BINS = 50


# --- shared: PNG, text wrapping, layout -------------------------------------------------------------


def png_bytes(figure: Figure) -> bytes:
    """The figure rendered as PNG with its own Agg canvas."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)  # type: ignore[no-untyped-call, unused-ignore]  # no hints in matplotlib
    return buffer.getvalue()


def _canvas(figure: Figure) -> FigureCanvasAgg:
    return figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)


def _renderer(canvas: FigureCanvasAgg) -> RendererBase:
    """The canvas's renderer, typed (matplotlib's ``get_renderer`` has no type hints)."""
    renderer: RendererBase = canvas.get_renderer()  # type: ignore[no-untyped-call, unused-ignore]  # no hints
    return renderer


def _text_width(text: str, fontsize: float, renderer: RendererBase) -> float:
    width, _, _ = renderer.get_text_width_height_descent(text, FontProperties(size=fontsize), ismath=False)
    return width


def _split_word(word: str, width_px: float, fontsize: float, renderer: RendererBase) -> list[str]:
    """A word wider than a line, cut into the longest pieces that fit (it would be cut off otherwise)."""
    pieces = []
    while _text_width(word, fontsize, renderer) > width_px and len(word) > 1:
        low, high = 1, len(word) - 1  # bisect for the longest prefix that fits (at least one character)
        while low < high:
            middle = (low + high + 1) // 2
            if _text_width(word[:middle], fontsize, renderer) <= width_px:
                low = middle
            else:
                high = middle - 1
        pieces.append(word[:low])
        word = word[low:]
    return pieces + [word]


def wrap_text(text: str, width_px: float, fontsize: float, renderer: RendererBase) -> str:
    """Greedy word wrap measured with the renderer's own font metrics; line breaks in ``text`` are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            for piece in _split_word(word, width_px, fontsize, renderer):
                candidate = f"{line} {piece}" if line else piece
                if line and _text_width(candidate, fontsize, renderer) > width_px:
                    lines.append(line)
                    line = piece
                else:
                    line = candidate
        lines.append(line)
    return "\n".join(lines)


def new_figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(WIDTH_IN, PLOT_HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def set_title(ax: Axes, title: str) -> None:
    """A title wrapped to the axes' row of the figure, so that even a long one is never cut off."""
    figure = ax.get_figure()
    assert isinstance(figure, Figure), "kdbench's axes sit on a Figure (never a SubFigure)"
    width_px = (figure.get_size_inches()[0] - 1.0) * figure.dpi
    ax.set_title(wrap_text(title, width_px, 10, _renderer(_canvas(figure))), fontsize=10, parse_math=False)


def add_caption(figure: Figure, caption: str) -> None:
    """Wrap ``caption`` to the figure's width, grow the figure by its height and fit the axes above it."""
    canvas = _canvas(figure)
    width_in, height_in = figure.get_size_inches()
    if not caption.strip():
        figure.tight_layout(pad=0.6)
        return
    wrapped = wrap_text(caption, (width_in - 2 * PAD_IN) * figure.dpi, FONTSIZE, _renderer(canvas))
    text = figure.text(PAD_IN, PAD_IN, wrapped, transform=figure.dpi_scale_trans, ha="left", va="bottom",
                       fontsize=FONTSIZE, wrap=False, parse_math=False, gid="caption")
    caption_in = text.get_window_extent(_renderer(canvas)).height / figure.dpi
    total_in = height_in + caption_in + PAD_IN
    figure.set_size_inches(width_in, total_in)  # the caption is placed in inches: it stays at the bottom
    figure.tight_layout(pad=0.6, rect=(0.0, (caption_in + 2 * PAD_IN) / total_in, 1.0, 1.0))


def add_legend(ax: Axes, handles: list[Any], labels: list[str]) -> None:
    """Legend outside the axes on the right (it never hides a point), widening the figure per column."""
    if not handles:
        return
    columns = math.ceil(len(handles) / LEGEND_ROWS)
    figure = ax.get_figure()
    assert isinstance(figure, Figure), "kdbench's axes sit on a Figure (never a SubFigure)"
    width_in, height_in = figure.get_size_inches()
    figure.set_size_inches(width_in + (columns - 1) * LEGEND_COLUMN_IN, height_in)
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              fontsize=FONTSIZE, ncol=columns)


def sentences(parts: list[str]) -> str:
    """Non-empty parts joined as sentences, each ended with a full stop if it has none."""
    parts = [p.strip() for p in parts if p.strip()]
    return " ".join(p if p[-1] in ".!?" else p + "." for p in parts)


def note_empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")


# --- time against accuracy (the paper's Fig. 3) -----------------------------------------------------


def uses_lda(runs: pd.DataFrame) -> pd.Series:
    """Whether each run used Data Selection or Label Revision ("LDA" in the paper, "OA" otherwise)."""
    return runs["ds"].eq(True) | runs["lr"].eq(True)


def variant_names(runs: pd.DataFrame) -> pd.Series:
    """Each run's variant: its label, or "<label> (LDA)" for its DS/LR runs when the label also has runs
    without DS/LR (the table's OA/LDA columns)."""
    label = runs["label"].astype(str)
    lda = uses_lda(runs)
    mixed = lda.groupby(label).transform("nunique") > 1
    names: pd.Series = label.where(~(lda & mixed), label + " (LDA)")
    return names


def pair_runs(frame: pd.DataFrame, teacher: str, student: str) -> pd.DataFrame:
    runs: pd.DataFrame = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]
    return runs


def drawable(runs: pd.DataFrame, column: str) -> pd.Series:
    """Runs with a positive, finite wall time and a finite accuracy: the ones that can be a point."""
    seconds = pd.to_numeric(runs["wall_time_s"], errors="coerce")
    accuracy = pd.to_numeric(runs[column], errors="coerce")
    can_draw: pd.Series = np.isfinite(seconds) & (seconds > 0) & np.isfinite(accuracy)
    return can_draw


def variant_points(frame: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> pd.DataFrame:
    """One row per variant of a pair, in table order: its label, whether it is LDA, the number of runs n,
    and the mean and sample std (ddof=1, NaN for one run) of wall time in seconds and of top-1."""
    column = metric_column(frame, metric)
    runs = pair_runs(frame, teacher, student)
    runs = pd.DataFrame({
        "variant": variant_names(runs), "label": runs["label"].astype(str), "lda": uses_lda(runs),
        "order": runs["method_order"] if "method_order" in runs else 0,
        "time": pd.to_numeric(runs["wall_time_s"], errors="coerce"),
        "top1": pd.to_numeric(runs[column], errors="coerce"),
    })[drawable(runs, column)]
    points = runs.groupby("variant", sort=False).agg(
        label=("label", "first"), lda=("lda", "any"), order=("order", "min"), n=("top1", "size"),
        seconds=("time", "mean"), seconds_std=("time", "std"), top1=("top1", "mean"), top1_std=("top1", "std"),
    )
    ordered: pd.DataFrame = points.sort_values(["order", "label", "lda"], kind="stable").reset_index()
    return ordered


def _style(points: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Colour and marker per label, shared by its OA and LDA variants (which differ by marker fill)."""
    labels = list(dict.fromkeys(points["label"]))
    return {label: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]) for i, label in enumerate(labels)}


def _point_label(row: pd.Series, varied: bool) -> str:
    return f"{row['variant']} (n={row['n']})" if varied else str(row["variant"])


def draw_points(ax: Axes, points: pd.DataFrame, divisor: float) -> list[ErrorbarContainer]:
    """Each variant at its means, with std error bars on both axes when it has ≥ 2 runs. Filled markers
    for LDA variants, open ones for the OA variants beside them."""
    styles, any_lda = _style(points), bool(points["lda"].any())
    varied = points["n"].nunique() > 1
    containers = []
    for _, row in points.iterrows():
        colour, marker = styles[row["label"]]
        spread = row["n"] >= 2
        container = ax.errorbar(
            [row["seconds"] / divisor], [row["top1"]],
            xerr=[row["seconds_std"] / divisor] if spread else None, yerr=[row["top1_std"]] if spread else None,
            fmt=marker, color=colour, markersize=7, capsize=3, elinewidth=1.0,
            markerfacecolor=colour if row["lda"] or not any_lda else "white",
            label=_point_label(row, varied),
        )
        container.lines[0].set_gid(f"point:{row['variant']}")
        containers.append(container)
    return containers


def draw_references(ax: Axes, teacher: Stats, scratch: Stats, teacher_name: str, student: str) -> list[Line2D]:
    """Horizontal lines for the teacher's accuracy and the student trained from scratch (± std band)."""
    handles = []
    if teacher[2] and math.isfinite(teacher[0]):
        line = ax.axhline(teacher[0], color="black", linestyle="--", linewidth=1.2,
                          label=f"teacher {teacher_name} ({teacher[0]:.2f})", gid="teacher")
        handles.append(line)
    mean, std, n = scratch
    if n and math.isfinite(mean):
        spread = f"{mean:.2f} ± {std:.2f}, {n} seeds" if n >= 2 else f"{mean:.2f}, 1 seed"
        line = ax.axhline(mean, color="0.35", linestyle=":", linewidth=1.5,
                          label=f"{student} from scratch ({spread})", gid="scratch")
        if n >= 2 and std > 0:
            ax.axhspan(mean - std, mean + std, color="0.35", alpha=0.12, linewidth=0, gid="scratch-band")
        handles.append(line)
    return handles


def _seeds_phrase(points: pd.DataFrame) -> str:
    low, high = int(points["n"].min()), int(points["n"].max())
    if low == high:
        return f"{low} seed" if low == 1 else f"{low} seeds"
    return f"{low}–{high} seeds (n in the legend)"


def time_accuracy_caption(metric: str, points: pd.DataFrame, skipped: int, scratch: Stats) -> str:
    """What the figure shows, in sentences: metric, what a point and its bars are, what time is."""
    parts = [f"{metric.capitalize()} top-1 accuracy (%) against training time per run."]
    if len(points) and points["n"].max() == 1:
        parts.append("Each point is a single run (one seed): no error bars.")
    elif len(points):
        parts.append(f"Each point is a variant's mean over {_seeds_phrase(points)}; error bars are the sample "
                     "std over seeds on both axes (none with one seed).")
    parts.append("Time is the run's own training + evaluation wall time (teacher forward passes and extra "
                 "modules included).")
    if len(points) and points["lda"].any() and not points["lda"].all():
        parts.append("Filled markers: with Label Revision and/or Data Selection (LDA); open: without (OA).")
    if scratch[2] >= 2:
        parts.append("Shaded band: ± std of the student trained from scratch.")
    if skipped:
        parts.append(f"{skipped} run{'s' if skipped > 1 else ''} without a recorded wall time or accuracy "
                     "left out.")
    return sentences(parts)


def time_accuracy_figure(frame: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> Figure:
    """The paper's Fig. 3 for one pair: each variant's mean top-1 against its mean wall time per run,
    with the teacher's accuracy and the student from scratch as reference lines."""
    column = metric_column(frame, metric)
    runs = pair_runs(frame, teacher, student)
    points = variant_points(frame, teacher, student, metric)
    scratch = scratch_stats(frame, student, column)
    divisor, unit = time_unit(float(points["seconds"].max()) if len(points) else math.nan)
    figure, ax = new_figure()
    containers = draw_points(ax, points, divisor)
    references = draw_references(ax, teacher_stats(frame, teacher, student), scratch, teacher, student)
    if containers:  # time from zero, so that ratios between methods' costs read true; room for the last bar
        ax.set_xlim(0.0, 1.08 * float((points["seconds"] + points["seconds_std"].fillna(0.0)).max()) / divisor)
    else:
        note_empty(ax, "no run of this pair has a recorded wall time and accuracy")
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)
    ax.set_xlabel(f"training time per run ({unit})")
    ax.set_ylabel(f"{metric} top-1 (%)")
    ax.grid(alpha=0.3)
    set_title(ax, f"{teacher} → {student}")
    handles: list[Any] = [*containers, *references]  # error-bar containers and lines
    add_legend(ax, handles, [h.get_label() for h in handles])
    add_caption(figure, time_accuracy_caption(metric, points, len(runs) - int(points["n"].sum()), scratch))
    return figure


def time_accuracy_png(frame: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> bytes:
    """:func:`time_accuracy_figure` as PNG."""
    return png_bytes(time_accuracy_figure(frame, teacher, student, metric))


# --- score histograms -----------------------------------------------------------------------------


def is_heavy_tailed(values: np.ndarray | pd.Series | list[float]) -> bool:
    """Whether the finite values' range is more than :data:`HEAVY_TAIL_RATIO` times their 10–90 % spread.

    Robust and scale-free: the bulk is measured by quantiles, so the tail cannot hide itself by inflating
    a std, and a Gaussian, uniform or exponential sample stays below the ratio at any size (its range is
    at most ~4 times its 10–90 % spread), while a lognormal with σ ≥ 1.5, a Cauchy or a lone far outlier
    exceed it. A sample whose 10–90 % spread is zero but whose range is not counts as heavy-tailed.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return False
    spread = float(np.ptp(finite))
    bulk = float(np.subtract(*np.quantile(finite, [0.9, 0.1])))
    return spread > 0 and (bulk == 0 or spread > HEAVY_TAIL_RATIO * bulk)


def score_scale(values: np.ndarray) -> str:
    """"log" for heavy-tailed positive scores spanning ≥ 2 decades, "symlog" for heavy-tailed scores of
    both signs (or ≤ 0), else "linear"."""
    if not is_heavy_tailed(values):
        return "linear"
    if values.min() > 0:
        return "log" if values.max() / values.min() >= LOG_SPAN else "linear"
    return "symlog"


def symlog_threshold(values: np.ndarray) -> float:
    """The symlog axis is linear within ± the median magnitude: the bulk stays linear, the tails go log."""
    magnitudes = np.abs(values[values != 0])
    return float(np.median(magnitudes)) if magnitudes.size else 1.0


def score_bins(values: np.ndarray, scale: str, bins: int = SCORE_BINS) -> np.ndarray:
    """Bin edges evenly spaced on the axis the scores are drawn on."""
    if scale == "log":
        return np.geomspace(values.min(), values.max(), bins + 1)
    if scale == "symlog":
        transform = SymmetricalLogTransform(10, symlog_threshold(values), 1.0)
        ends = transform.transform(np.array([values.min(), values.max()]))
        return transform.inverted().transform(np.linspace(ends[0], ends[1], bins + 1))
    return np.histogram_bin_edges(values, bins=bins)


def counts_need_log(counts: np.ndarray) -> bool:
    """Whether non-empty bin counts span more than two decades."""
    nonzero = counts[counts > 0]
    return nonzero.size > 0 and nonzero.max() > LOG_COUNT_SPAN * nonzero.min()


def _scale_note(scale: str, values: np.ndarray, log_counts: bool) -> str:
    notes = []
    if scale == "log":
        notes.append("Scores are heavy-tailed: log-spaced bins on a log x axis.")
    elif scale == "symlog":
        notes.append(f"Scores are heavy-tailed with both signs: symmetric-log x axis, linear within "
                     f"±{symlog_threshold(values):.3g}.")
    if log_counts:
        notes.append("Counts on a log axis.")
    return " ".join(notes)


def score_histogram_figure(frame: pd.DataFrame, title: str, caption: str = "") -> Figure:
    """Score distribution, split by whether the teacher is right: where the two overlap, Data Selection
    cannot tell them apart. ``title`` should be short; details go into ``caption``, wrapped below."""
    scores = pd.to_numeric(frame["score"], errors="coerce")
    finite = np.isfinite(scores)
    values = scores[finite].to_numpy(dtype=float)
    figure, ax = new_figure()
    notes = [caption.strip()] if caption.strip() else []
    if values.size:
        scale = score_scale(values)
        edges = score_bins(values, scale)
        correct = frame["teacher_correct"].eq(True)[finite].to_numpy()
        groups = [("teacher right", values[correct], "tab:blue"), ("teacher wrong", values[~correct], "tab:orange")]
        counts = np.concatenate([np.histogram(group, edges)[0] for _, group, _ in groups])
        log_counts = counts_need_log(counts)
        for name, group, colour in groups:
            if group.size:
                # cast: matplotlib's stub leaves out the arrays that hist takes as bin edges
                ax.hist(group, bins=cast(Sequence[float], edges), histtype="stepfilled", alpha=0.45, color=colour,
                        edgecolor=colour, log=log_counts, label=f"{name} (n = {group.size:,})")
        if scale == "symlog":
            ax.set_xscale("symlog", linthresh=symlog_threshold(values))
        else:
            ax.set_xscale(scale)
        notes.append(_scale_note(scale, values, log_counts))
        handles, labels = ax.get_legend_handles_labels()
        add_legend(ax, handles, labels)
    else:
        note_empty(ax, "no finite scores")
    if (~finite).sum():
        notes.append(f"{int((~finite).sum())} non-finite scores left out.")
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    set_title(ax, title)
    add_caption(figure, sentences(notes))
    return figure


def score_histogram_png(frame: pd.DataFrame, title: str, caption: str = "") -> bytes:
    """:func:`score_histogram_figure` as PNG."""
    return png_bytes(score_histogram_figure(frame, title, caption))
