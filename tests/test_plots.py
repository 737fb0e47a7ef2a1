"""Figures: values read back from the drawn artists, units and scales that fit the data, no colliding text."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

from kdbench.tables.plots import (
    is_heavy_tailed,
    score_bins,
    score_histogram_figure,
    score_histogram_png,
    score_scale,
    time_accuracy_figure,
    time_accuracy_png,
    time_unit,
    variant_points,
    wrap_text,
)
from kdbench.tables.score_report import write_score_report

PNG = b"\x89PNG\r\n\x1a\n"
T, S = "resnet20", "resnet8"


def run(label, seed, best, wall, method=None, teacher=T, student=S, ds=False, lr=False, teacher_top1=69.06, order=0):
    """One run's row with every column of ``results_frame``."""
    return {"suite": "s", "key": f"{label}-{seed}-{ds}-{lr}", "label": label, "method": method or label.lower(),
            "method_params": {}, "teacher": teacher, "student": student, "seed": seed, "last_top1": best - 1.0,
            "best_top1": best, "teacher_top1": teacher_top1 if teacher else None, "wall_time_s": wall,
            "train_images_per_s": 1000.0, "pair_order": 0, "method_order": order, "ds": ds,
            "ds_estimator": "influence" if ds else None, "ds_fraction": 0.9 if ds else None, "ds_order": None,
            "lr": lr, "lr_name": "eta" if lr else None, "lr_eta": 0.5 if lr else None, "lr_lambda1": None,
            "lr_lambda2": None}


def scratch(seed, best, wall=900.0):
    return run("ce", seed, best, wall, method="ce", teacher=None)


KD_TIMES, KD_TOP1 = [600.0, 660.0, 780.0], [70.0, 71.0, 73.0]
LDA_TIMES, LDA_TOP1 = [900.0, 960.0], [72.0, 72.5]


def pair_frame() -> pd.DataFrame:
    """kd with 3 seeds, its LDA variant with 2, crd with 1 seed, scratch with 2 seeds: times of minutes."""
    rows = [run("KD", s, a, t, order=0) for s, (t, a) in enumerate(zip(KD_TIMES, KD_TOP1, strict=True))]
    rows += [run("KD", s, a, t, ds=True, order=0) for s, (t, a) in enumerate(zip(LDA_TIMES, LDA_TOP1, strict=True))]
    rows += [run("CRD", 0, 71.5, 1500.0, order=1), scratch(0, 66.0), scratch(1, 67.0)]
    rows += [run("KD", 0, 60.0, 30.0, teacher="wrn_40_2", student="wrn_16_2", teacher_top1=75.61)]  # other pair
    return pd.DataFrame(rows)


def many_frame(labels: int = 13) -> pd.DataFrame:
    """Many methods, each OA and LDA, three seeds: a busy figure like Table V's."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(labels):
        for seed in range(3):
            rows.append(run(f"M{i}", seed, 68 + 0.3 * i + rng.normal(0, 0.4), 2400 + 200 * i + rng.normal(0, 60),
                            order=i))
            rows.append(run(f"M{i}", seed, 69 + 0.3 * i + rng.normal(0, 0.4), 3100 + 260 * i + rng.normal(0, 60),
                            ds=True, lr=True, order=i))
    return pd.DataFrame(rows + [scratch(s, 66.0 + s) for s in range(3)])


@pytest.fixture(scope="module")
def pair_figure() -> Figure:
    return time_accuracy_figure(pair_frame(), T, S)


@pytest.fixture(scope="module")
def many_figure() -> Figure:
    return time_accuracy_figure(many_frame(), T, S)


def drawn(figure: Figure) -> None:
    FigureCanvasAgg(figure).draw()


def point(figure: Figure, variant: str):
    """The errorbar container of a variant, found by its data line's gid."""
    ax = figure.axes[0]
    matches = [c for c in ax.containers if c.lines[0].get_gid() == f"point:{variant}"]
    assert len(matches) == 1, [c.lines[0].get_gid() for c in ax.containers]
    return matches[0]


def bar_half_widths(container) -> tuple[float | None, float | None]:
    """Half lengths of the horizontal (x) and vertical (y) error bars, None where there is no bar."""
    x_half = y_half = None
    for collection in container.lines[2]:
        (a, b), = collection.get_segments()
        if a[1] == b[1]:
            x_half = abs(b[0] - a[0]) / 2
        else:
            y_half = abs(b[1] - a[1]) / 2
    return x_half, y_half


def line(figure: Figure, gid: str):
    found = [artist for artist in figure.axes[0].get_children() if artist.get_gid() == gid]
    return found[0] if found else None


def drawn_tick_labels(axis, low: float, high: float) -> list[Text]:
    """Major tick labels that are drawn: the locator may place ticks outside the view limits."""
    pairs = zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False)
    span = abs(high - low)
    return [label for loc, label in pairs if min(low, high) - 1e-9 * span <= loc <= max(low, high) + 1e-9 * span]


def visible_texts(figure: Figure) -> list[Text]:
    """Every drawn non-empty text: titles, axis labels, drawn tick labels, legend entries, caption."""
    drawn(figure)
    texts = []
    for ax in figure.axes:
        ticks = set(ax.get_xticklabels(minor=True) + ax.get_yticklabels(minor=True) + ax.get_xticklabels()
                    + ax.get_yticklabels())
        texts += drawn_tick_labels(ax.xaxis, *ax.get_xlim()) + drawn_tick_labels(ax.yaxis, *ax.get_ylim())
        others = [t for t in ax.findobj(Text) if t not in ticks and t not in texts]
        texts += others
    texts += [t for t in figure.texts]
    return [t for t in dict.fromkeys(texts) if t.get_visible() and t.get_text().strip()]


def assert_no_overlap(figure: Figure) -> None:
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in visible_texts(figure)]
    assert len(boxes) > 5
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_x <= 0.5 or overlap_y <= 0.5, f"{a!r} overlaps {b!r}"
    for text, box in boxes:
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, text
        assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1, text


def caption(figure: Figure) -> Text:
    found = [t for t in figure.texts if t.get_gid() == "caption"]
    assert len(found) == 1
    return found[0]


# --- time against accuracy --------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, unit", [(59.0, "s"), (119.0, "s"), (120.0, "min"), (600.0, "min"),
                                           (7199.0, "min"), (3 * 3600.0, "h"), (math.nan, "s")])
def test_time_unit_fits_the_numbers(seconds, unit):
    divisor, name = time_unit(seconds)
    assert name == unit and divisor == {"s": 1.0, "min": 60.0, "h": 3600.0}[unit]


def test_points_are_means_with_sample_std_error_bars(pair_figure):
    figure = pair_figure
    ax = figure.axes[0]
    assert ax.get_xlabel() == "training time per run (min)"  # 780 s at most: minutes
    kd = point(figure, "KD")
    x, y = kd.lines[0].get_xdata()[0], kd.lines[0].get_ydata()[0]
    assert x == pytest.approx(statistics.mean(KD_TIMES) / 60) and y == pytest.approx(statistics.mean(KD_TOP1))
    x_half, y_half = bar_half_widths(kd)
    assert x_half == pytest.approx(statistics.stdev(KD_TIMES) / 60)
    assert y_half == pytest.approx(statistics.stdev(KD_TOP1))
    lda = point(figure, "KD (LDA)")
    assert lda.lines[0].get_xdata()[0] == pytest.approx(statistics.mean(LDA_TIMES) / 60)
    assert bar_half_widths(lda) == (pytest.approx(statistics.stdev(LDA_TIMES) / 60),
                                    pytest.approx(statistics.stdev(LDA_TOP1)))
    crd = point(figure, "CRD")  # one seed: a point without bars
    assert (crd.lines[0].get_xdata()[0], crd.lines[0].get_ydata()[0]) == (25.0, 71.5)
    assert bar_half_widths(crd) == (None, None) and not crd.has_xerr and not crd.has_yerr
    assert len(ax.containers) == 3  # the other pair's run is not drawn
    drawn(figure)
    assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
    assert ax.get_xlim()[0] == 0.0


def test_tick_labels_are_plain_numbers_without_offset():
    runs = ((0, 75.001, 3 * 3600.0), (1, 75.003, 3 * 3600.0 + 30))  # hours; top-1 within 0.002
    rows = [run("KD", seed, top1, wall, teacher_top1=None) for seed, top1, wall in runs]
    figure = time_accuracy_figure(pd.DataFrame(rows), T, S)
    drawn(figure)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "training time per run (h)"
    assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
    labels = drawn_tick_labels(ax.yaxis, *ax.get_ylim())
    assert labels and all(74 < float(t.get_text().replace("−", "-")) < 76 for t in labels)


def test_metric_last_reads_last_top1():
    points = variant_points(pair_frame(), T, S, metric="last").set_index("variant")
    assert points.loc["KD", "top1"] == pytest.approx(statistics.mean(KD_TOP1) - 1.0)
    assert points.loc["KD", "n"] == 3 and math.isnan(points.loc["CRD", "top1_std"])
    assert list(points.index) == ["KD", "KD (LDA)", "CRD"]  # table order, OA before LDA


def test_variant_names_add_lda_only_beside_an_oa_variant():
    rows = [run("kd", 0, 70.0, 100.0), run("kd", 0, 71.0, 100.0, lr=True), run("kd+LR", 0, 72.0, 100.0, lr=True),
            run("kd+LR+DS", 0, 73.0, 100.0, lr=True, ds=True)]
    assert set(variant_points(pd.DataFrame(rows), T, S)["variant"]) == {"kd", "kd (LDA)", "kd+LR", "kd+LR+DS"}


def test_reference_lines_at_teacher_and_scratch_heights(pair_figure):
    figure = pair_figure
    teacher, student = line(figure, "teacher"), line(figure, "scratch")
    assert list(teacher.get_ydata()) == [69.06, 69.06]
    assert list(student.get_ydata()) == [66.5, 66.5]
    band = line(figure, "scratch-band")
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1]
    std = statistics.stdev([66.0, 67.0])
    assert (ys.min(), ys.max()) == (pytest.approx(66.5 - std), pytest.approx(66.5 + std))
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend[-2:] == ["teacher resnet20 (69.06)", "resnet8 from scratch (66.50 ± 0.71, 2 seeds)"]
    low, high = figure.axes[0].get_ylim()
    assert low < 66.5 - std and 69.06 < high  # both lines are in view


def test_seed_counts_in_legend_and_caption(pair_figure):
    figure = pair_figure
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend[:3] == ["KD (n=3)", "KD (LDA) (n=2)", "CRD (n=1)"]  # seed counts differ: said per point
    text = caption(figure).get_text().replace("\n", " ")
    assert "1–3 seeds" in text and "sample std" in text and "wall time" in text and "best top-1" in text.lower()


def test_scratch_with_one_seed_has_no_band_and_missing_references_are_left_out():
    rows = [run("KD", 0, 70.0, 50.0, teacher_top1=None), scratch(0, 65.0)]
    figure = time_accuracy_figure(pd.DataFrame(rows), T, S)
    assert line(figure, "teacher") is None and line(figure, "scratch-band") is None
    assert list(line(figure, "scratch").get_ydata()) == [65.0, 65.0]
    assert figure.axes[0].get_xlabel() == "training time per run (s)"
    assert bar_half_widths(point(figure, "KD")) == (None, None)
    no_scratch = time_accuracy_figure(pd.DataFrame(rows[:1]), T, S)
    assert line(no_scratch, "scratch") is None and len(no_scratch.axes[0].containers) == 1


def test_runs_without_wall_time_are_skipped_and_counted():
    rows = [run("KD", 0, 70.0, 4 * 3600.0), run("KD", 1, 72.0, math.nan), run("KD", 2, 90.0, 0.0),
            run("CRD", 0, 71.0, math.nan)]
    figure = time_accuracy_figure(pd.DataFrame(rows), T, S)
    kd = point(figure, "KD")
    assert (kd.lines[0].get_xdata()[0], kd.lines[0].get_ydata()[0]) == (4.0, 70.0)  # hours; only seed 0
    assert len(figure.axes[0].containers) == 1  # CRD has no drawable run
    assert "3 runs without a recorded wall time" in caption(figure).get_text().replace("\n", " ")
    nothing = pd.DataFrame([run("KD", 0, 70.0, math.nan)])
    assert time_accuracy_png(nothing, T, S).startswith(PNG)
    assert time_accuracy_png(pd.DataFrame([scratch(0, 60.0)]), T, S).startswith(PNG)  # no such pair at all


def test_title_is_short_and_caption_inside_the_figure(many_figure):
    figure = many_figure
    ax = figure.axes[0]
    assert ax.get_title() == "resnet20 → resnet8"
    drawn(figure)
    renderer = figure.canvas.get_renderer()
    box = caption(figure).get_window_extent(renderer)
    assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1 and figure.bbox.y0 <= box.y0
    assert box.y1 < ax.xaxis.label.get_window_extent(renderer).y0  # below the axes, under the x label
    assert "\n" in caption(figure).get_text()  # wrapped


def test_no_text_overlaps_and_the_legend_hides_no_point(many_figure, pair_figure):
    for figure in (many_figure, pair_figure):
        assert_no_overlap(figure)
        renderer = figure.canvas.get_renderer()
        ax = figure.axes[0]
        assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    assert len(many_figure.axes[0].get_legend().get_texts()) == 13 * 2 + 2


def test_variants_have_distinct_styles(many_figure):
    styles = []
    for container in many_figure.axes[0].containers:
        data = container.lines[0]
        styles.append((data.get_marker(), data.get_color(), str(data.get_markerfacecolor())))
    assert len(set(styles)) == len(styles) == 26


def test_pngs_start_with_the_signature():
    assert time_accuracy_png(pair_frame(), T, S, metric="last").startswith(PNG)


# --- score histograms -------------------------------------------------------------------------------

RNG = np.random.default_rng(1)
N = 2000


def scores(values, wrong_every: int = 10) -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    return pd.DataFrame({"index": range(len(values)), "label": 0, "score": values,
                         "teacher_correct": np.arange(len(values)) % wrong_every != 0})


@pytest.mark.parametrize("values, heavy", [
    (RNG.normal(size=N), False),
    (RNG.uniform(size=N), False),
    (RNG.exponential(size=N), False),
    (np.full(N, 3.0), False),
    (RNG.lognormal(sigma=2.0, size=N), True),
    (RNG.standard_cauchy(size=N), True),
    (np.append(RNG.normal(1.0, 0.01, N), 1000.0), True),  # one far outlier
    (np.array([1.0, np.nan, np.inf]), False),
])
def test_heavy_tail_detection(values, heavy):
    assert is_heavy_tailed(values) is heavy


LOGNORMAL, CAUCHY, NORMAL = RNG.lognormal(sigma=2.0, size=N), RNG.standard_cauchy(size=N), RNG.normal(size=N)


@pytest.mark.parametrize("values, scale", [
    (LOGNORMAL, "log"),
    (CAUCHY, "symlog"),
    (-LOGNORMAL, "symlog"),
    (NORMAL, "linear"),
    (np.append(1000.0 + RNG.normal(0, 0.1, N), 1100.0), "linear"),  # heavy but within a decade: log won't help
])
def test_score_scale_and_bins_follow_the_data(values, scale):
    assert score_scale(values) == scale
    edges = score_bins(values, scale)
    assert len(edges) == 51 and np.all(np.diff(edges) > 0)
    assert edges[0] == pytest.approx(values.min()) and edges[-1] == pytest.approx(values.max())
    if scale == "log":  # evenly spaced in log
        assert np.diff(np.log(edges)) == pytest.approx(np.full(len(edges) - 1, np.log(edges[1] / edges[0])))


def test_histogram_x_axis_scale_is_the_chosen_one():
    for values, scale in ((LOGNORMAL, "log"), (CAUCHY, "symlog"), (NORMAL, "linear")):
        ax = score_histogram_figure(scores(values), "scores").axes[0]
        assert ax.get_xscale() == scale
        assert ax.patches[0].get_path().vertices[:, 0].min() == pytest.approx(values.min())  # bins start at min


def test_histogram_counts_in_legend_and_log_counts_when_they_span_decades():
    concentrated = np.append(np.zeros(2000), np.linspace(1.0, 2.0, 20))  # 2000 in one bin, 1 in others
    figure = score_histogram_figure(scores(concentrated, wrong_every=4), "scores")
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["teacher right (n = 1,515)", "teacher wrong (n = 505)"]
    assert figure.axes[0].get_yscale() == "log"
    flat = score_histogram_figure(scores(np.linspace(0.0, 1.0, 1000)), "scores")
    assert flat.axes[0].get_yscale() == "linear" and flat.axes[0].get_xscale() == "linear"


def test_histogram_caption_is_wrapped_inside_and_title_kept():
    details = ("influence {'damping': 0.01, 'recursion_depth': 1000, 'scale': 25} on resnet20, suite "
               "paper-table-4, 50000 images; higher scores go to the teacher; " + "x" * 300)
    figure = score_histogram_figure(scores(RNG.lognormal(sigma=2.0, size=N)), "influence scores, resnet20", details)
    assert figure.axes[0].get_title() == "influence scores, resnet20"
    text = caption(figure).get_text()
    assert text.replace("\n", "").replace(" ", "").startswith(details.replace(" ", ""))
    assert "log x axis" in text.replace("\n", " ")
    assert_no_overlap(figure)


def test_histogram_survives_odd_scores():
    odd = scores([np.nan, np.inf, 1.0, 1.0, 1.0])
    text = caption(score_histogram_figure(odd, "s")).get_text()
    assert "2 non-finite scores left out" in text
    assert score_histogram_png(scores([np.nan]), "s").startswith(PNG)  # nothing finite: a note, no histogram
    assert score_histogram_png(scores([-1.0, 0.0, 5.0]), "s").startswith(PNG)


def test_wrap_text_keeps_every_character_within_the_width():
    figure = Figure(figsize=(2, 2), dpi=100)
    renderer = FigureCanvasAgg(figure).get_renderer()
    source = "a few words then " + "y" * 80 + " and\nanother paragraph"
    wrapped = wrap_text(source, 150.0, 8, renderer)
    assert wrapped.replace("\n", "").replace(" ", "") == source.replace("\n", "").replace(" ", "")
    assert "another paragraph" in wrapped.splitlines()[-1]
    for piece in wrapped.splitlines():
        assert renderer.get_text_width_height_descent(piece, FontProperties(size=8), ismath=False)[0] <= 150


def test_write_score_report_passes_title_and_caption(tmp_path):
    stored = SimpleNamespace(values=np.array([0.1, 0.5, 2.0]), labels=np.array([0, 1, 2]),
                             teacher_correct=np.array([True, False, True]))
    paths = write_score_report(stored, tmp_path, "stem", "short title", caption="details here")
    assert [p.name for p in paths] == ["stem.csv", "stem.png"]
    assert paths[1].read_bytes().startswith(PNG)


# --- the leaderboard's accuracy-against-time figure: inline SVG ---------------------------------------------------


def svg_points(seconds: list[float], top1: list[float], labels: list[str] | None = None) -> list:
    from kdbench.tables.leaderboard_svg import Point

    labels = labels or [f"m{i}" for i in range(len(seconds))]
    return [Point(label, s, 1.0, a, 0.5, 3) for label, s, a in zip(labels, seconds, top1, strict=True)]


def svg_tree(markup: str):
    import xml.etree.ElementTree as ET

    return ET.fromstring(markup)  # the markup is well-formed XML as well as HTML


def tick_values(root, anchor: str) -> list[float]:
    """The tick labels of one axis: the texts of the tick group anchored at ``anchor`` (x: middle, y: end)."""
    (group,) = [g for g in root.iter("g") if g.get("class") == "tick" and g.get("text-anchor") == anchor]
    return [float(t.text) for t in group.iter("text")]


def test_the_time_axis_fits_a_narrow_band_and_starts_at_zero_only_for_a_wide_spread():
    from kdbench.tables.leaderboard_svg import Reference, time_accuracy_svg

    reference = Reference(T, 80.0, S, 70.0, 0.5, 3)
    narrow = svg_tree(time_accuracy_svg(svg_points([100.0, 104.0, 110.0], [71, 72, 73]), reference, "best", "p"))
    ticks = tick_values(narrow, "middle")  # x ticks: in seconds (under 2 minutes)
    assert min(ticks) >= 95 and max(ticks) <= 112 and len(ticks) >= 3  # 0 would squash the points to one side
    wide = svg_tree(time_accuracy_svg(svg_points([10.0, 60.0, 110.0], [71, 72, 73]), reference, "best", "p"))
    assert min(tick_values(wide, "middle")) == 0
    # the accuracy axis holds the points, the teacher's line and the scratch band (69.5–70.5)
    y = tick_values(narrow, "end")
    assert min(y) <= 70 and max(y) >= 80


def test_every_drawn_thing_is_in_the_legend_and_markers_are_open():
    from kdbench.tables.leaderboard_svg import Reference, time_accuracy_svg

    points = svg_points([100.0, 100.0, 101.0], [72.0, 72.0, 72.1], ["kd", "kd+DS", "<b>&</b>"])
    markup = time_accuracy_svg(points, Reference(T, 80.0, S, 70.0, 0.5, 3), "best", "resnet20 → resnet8")
    root = svg_tree(markup)
    legend = [t.text for t in root.iter("text") if t.get("class") == "legend"]
    assert legend == ["kd", "kd+DS", "<b>&</b>", "from scratch: 70.00 (3 seeds)", "from scratch ± std (0.50)",
                      "teacher: 80.00"]
    assert "<b>" not in markup  # text is escaped
    swatches = [p for p in root.iter("path") if "m" in (p.get("class") or "").split()]
    groups = [g for g in root.iter("g") if "m" in (g.get("class") or "").split()]  # the points, one group a colour
    assert len(swatches) == 3 and [len(g.findall("path")) for g in groups] == [1, 1, 1]
    css = (Path(__file__).resolve().parents[1] / "kdbench/tables/static/leaderboard.css").read_text()
    assert "svg .m { fill: none;" in css  # open markers: two on one spot both stay visible
    assert {p.get("class") for p in swatches} == {g.get("class") for g in groups}  # a point is its legend's colour
    assert len({g.get("class") for g in groups}) == 3  # a colour class per method
    tips = [p.find("title").text for g in groups for p in g.findall("path")]
    assert tips[0] == "kd: 72.00 ± 0.50, 100 s, 3 seeds"
    bars = [p for p in root.iter("path") if "e" in (p.get("class") or "").split()]
    assert len(bars) == 3 and all(p.get("d").count("M") == 2 for p in bars)  # a bar each way per point
    # one run from scratch: no band, and no band in the legend
    single = svg_tree(time_accuracy_svg(points, Reference(T, 80.0, S, 70.0, 0.0, 1), "best", "p"))
    assert not [r for r in single.iter("rect") if r.get("class") == "band"]
    assert not [t for t in single.iter("text") if "± std" in (t.text or "")]


def test_the_svg_is_what_the_page_accepts_and_an_empty_pair_draws():
    from kdbench.tables.html_page import PageSvg
    from kdbench.tables.leaderboard_svg import Reference, nice_ticks, time_accuracy_svg

    reference = Reference(T, math.nan, S, math.nan, 0.0, 0)
    for points in ([], svg_points([5.0], [60.0])):
        PageSvg("p", time_accuracy_svg(points, reference, "last", "p"))  # raises if the markup is not drawing only
    assert nice_ticks(93.7, 97.3) == [94, 95, 96, 97]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(5, 5) == [5]
