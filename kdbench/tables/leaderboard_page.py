"""The leaderboard page: its boards as page sections (one per benchmark), with filters, links and figures.

What a row of the method × pair table carries, beside its numbers: a link to each seed's record file
(``../raw/<suite>/<key>/record.json``, relative to ``results/leaderboard/index.html``), a link to its suite
entry (the YAML that trains it again, in the section's folded "Suite entries"), the code revision and the
date its runs finished, and ``data-*`` attributes for the filters (pair, method, +LR/+DS; the benchmark and its
label noise are its section's). What is the same for many rows is written once: a pair is a short code in the
row (``p7``) named once in the filter's drop-down, and one suite entry serves every pair a method ran on with
the same seeds; a distilled row's pair filter value is read from its pair cell, and "none" of +LR/+DS is the
filter's default, not written. html_page writes a cell's sort number only where its text does not already read
as one in the right order.

Why a section per benchmark: numbers are compared only within a benchmark, so each has its own method
summary, method × pair table, figures (one per pair, inline SVG) and suite entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.plan.spec import RunSpec, content_key
from kdbench.tables.html_page import Link, PageCode, PageFilter, PageSection, PageSvg, PageTable, Rich
from kdbench.tables.leaderboard import (
    NOTE,
    ROW_SORT_KEYS,
    SUMMARY_NOTE,
    SUMMARY_SORT_KEYS,
    Board,
    display_rows,
    display_summary,
    pair_text,
    row_records,
    sort_keys,
)
from kdbench.tables.leaderboard_entry import suite_entries
from kdbench.tables.leaderboard_svg import Point, Reference, time_accuracy_svg

RUNS_COLUMN = "YAML · revision · date"
NBSP = "\u00a0"
FIGURE_NOTE = ("The figures, one per pair: {metric} top-1 (%) against training time per run (the run's own "
               "training and evaluation wall time). Each point is a method variant's mean over its seeds, with bars "
               "of ± one std over seeds on both axes (none with one seed); markers are open, so points on top of each "
               "other stay visible, and pointing at one shows its method and numbers. The axes fit the points: "
               "time starts at 0 only when they spread over more than half of it.")
ENTRIES_TITLE = "Suite entries (YAML): paste one into a file and run it with kdbench run to train those runs again"


@dataclass(frozen=True)
class Codes:
    """Short codes for the long values rows are filtered by: benchmarks and pairs, over the whole page."""

    benchmarks: dict[str, str]  # benchmark in words → "b1"
    pairs: dict[str, str]  # "resnet20 → resnet8" → "p1"

    @classmethod
    def of(cls, boards: Sequence[Board]) -> Codes:
        benchmarks: dict[str, str] = {}
        pairs: dict[str, str] = {}
        for board in boards:
            for benchmark in board.rows["benchmark"]:
                benchmarks.setdefault(str(benchmark), f"b{len(benchmarks) + 1}")
            distilled = board.rows[board.rows["teacher"] != ""]
            for teacher, student in zip(distilled["teacher"], distilled["student"], strict=True):
                pairs.setdefault(pair_text(teacher, student), f"p{len(pairs) + 1}")
        return cls(benchmarks, pairs)


def lrds(label: str) -> str:
    """"LR+DS", "LR", "DS" or "none": the variant's Label Revision / Data Selection, as the filter names it."""
    flags = [flag for flag in ("LR", "DS") if f"+{flag}" in label]
    return "+".join(flags) or "none"


def noise_value(rate: float) -> str:
    return f"{0.0 if rate is None or math.isnan(rate) else rate:g}"


def filters(boards: Sequence[Board], codes: Codes) -> list[PageFilter]:
    """The drop-downs of the page, with the values its rows hold."""
    rows = pd.concat([board.rows.assign(_noise=board.runs.drop_duplicates("row").set_index("row")["noise_rate"])
                      for board in boards])
    methods = sorted(set(rows["method"]))
    flags = [f for f in ("none", "LR", "DS", "LR+DS") if f in set(rows["label"].map(lrds))]
    noise = sorted({float(v) for v in rows["_noise"].fillna(0.0)})
    return [
        PageFilter("benchmark", "benchmark", tuple((code, name) for name, code in codes.benchmarks.items())),
        PageFilter("pair", "pair", tuple((code, name) for name, code in codes.pairs.items()), column="pair"),
        PageFilter("method", "method", tuple((m, m) for m in methods)),
        PageFilter("lrds", "+LR/+DS", tuple((f, "neither" if f == "none" else f"+{f}") for f in flags),
                   default="none"),
        PageFilter("noise", "label noise", tuple((noise_value(v), "clean labels" if v == 0 else f"{v:g} of labels")
                                                 for v in noise)),
    ]


def figure_anchor(benchmark: str, pair: str) -> str:
    return f"fig-{content_key([benchmark, pair], 7)}"


def sections(board: Board, metric: str, codes: Codes) -> list[PageSection]:
    """The board's page sections, one per benchmark."""
    records = row_records(board.runs)
    per_row = board.runs.drop_duplicates("row").set_index("row")
    wall_std = board.runs.groupby("row")["wall_time_s"].std()
    out = []
    for benchmark in board.rows["benchmark"].unique():
        rows = board.rows[board.rows["benchmark"] == benchmark]
        summary = board.summary[board.summary["benchmark"] == benchmark]
        runs = board.runs[board.runs["benchmark"] == benchmark]
        entries, anchors = suite_entries(_keyed_rows(runs))
        code = codes.benchmarks[str(benchmark)]
        noise = per_row.loc[rows.index, "noise_rate"]
        tables = [
            PageTable(f"Methods · {board.dataset}", display_summary(summary), SUMMARY_NOTE,
                      sort_keys=sort_keys(summary, SUMMARY_SORT_KEYS),
                      row_data=[_filter_data(str(m), str(label))
                                for m, label in zip(summary["method"], summary["label"], strict=True)]),
            PageTable(f"Method × pair · {board.dataset}", _main_rows(rows, records, anchors, benchmark), NOTE,
                      sort_keys=sort_keys(rows, {**{k: v for k, v in ROW_SORT_KEYS.items() if k != "teacher"},
                                                 "seeds": "n"}), css="main",
                      row_data=[_row_data(row, codes, rows) for row in rows.itertuples()]),
        ]
        figures = _figures(rows, runs, wall_std, metric, str(benchmark), codes)
        intro = (f"{len(runs)} published runs in {len(rows)} rows, {metric} top-1 (%). Numbers are compared only "
                 "within this benchmark (dataset, its parameters and the training recipe).\n\n"
                 + FIGURE_NOTE.format(metric=metric.capitalize()))
        out.append(PageSection(str(benchmark), intro, tuple(tables), tuple(figures),
                               tuple(PageCode(e.anchor, e.title, e.yaml) for e in entries), ENTRIES_TITLE,
                               data={"benchmark": code, "noise": noise_value(float(noise.iloc[0]))}))
    return out


def _keyed_rows(runs: pd.DataFrame) -> list[list[tuple[str, RunSpec]]]:
    """Each row's runs as (key, spec), rows in order of first run."""
    rows: dict[int, list[tuple[str, RunSpec]]] = {}
    for row, key, spec in zip(runs["row"], runs["key"], runs["spec"], strict=True):
        rows.setdefault(int(row), []).append((str(key), spec))
    return list(rows.values())


def _filter_data(method: str, label: str) -> dict[str, str]:
    """A row's method and +LR/+DS filter values; "none", the lrds filter's default, is left for it to say (most rows
    have neither, and a page holds thousands of rows)."""
    flags = lrds(label)
    return {"method": method} | ({} if flags == "none" else {"lrds": flags})


def _row_data(row: object, codes: Codes, rows: pd.DataFrame) -> dict[str, str]:
    """A main-table row's filter values (its section gives the benchmark and label noise). A distilled row's pair is
    what its pair cell shows, which the pair filter reads (its ``column``); the student from scratch belongs to
    every pair of its student, so its row names them."""
    teacher, student, label, method = (getattr(row, name) for name in ("teacher", "student", "label", "method"))
    data = _filter_data(str(method), str(label))
    if not teacher:
        teachers = rows.loc[(rows["student"] == student) & (rows["teacher"] != ""), "teacher"].unique()
        data = {"pair": " ".join(codes.pairs[pair_text(t, student)] for t in teachers)} | data
    return data


def _last_day(finished: str) -> str:
    """The day the row's last run finished (the CSV lists every day)."""
    return finished.split(";")[-1]


def _revisions(revisions: str) -> str:
    shown = [r[:7] for r in revisions.split(";")]
    return " ".join(shown) if len(shown) <= 2 else f"{len(shown)} revisions"


def _main_rows(rows: pd.DataFrame, records: dict[int, list[tuple[int, str]]], anchors: dict[str, str],
               benchmark: str) -> pd.DataFrame:
    """The displayed rows with the pair linked to its figure, each seed linked to its record file, and the suite
    entry, revision and date in the last column. Numbers are kept on one line (no-break spaces)."""
    # the teacher's accuracy is the pair's, not the row's: its figure's legend shows it (and the CSV)
    shown = display_rows(rows).drop(columns=["teacher"])
    shown["pair"] = pd.Series([Link(text, f"#{figure_anchor(benchmark, text)}") if teacher else text
                               for text, teacher in zip(shown["pair"], rows["teacher"], strict=True)],
                              index=shown.index, dtype=object)
    shown["top-1"] = shown["top-1"].str.replace(" ± ", f"{NBSP}±{NBSP}")
    shown["95% CI"] = shown["95% CI"].str.replace("–", "–\u2060")  # no break after the dash
    seeds, runs = [], []
    for row, revisions, finished in zip(rows.index, rows["revisions"], rows["finished"], strict=True):
        links: list[str | Link] = []
        for seed, file in records[int(row)]:
            links += [" "] if links else []
            links.append(Link(str(seed), f"../{file}"))
        seeds.append(Rich(tuple(links)))
        keys = [file.split("/")[2] for _, file in records[int(row)]]
        parts: list[str | Link] = []
        for i, anchor in enumerate(dict.fromkeys(anchors[key] for key in keys if key in anchors)):
            parts += [" "] if i else []
            parts.append(Link("YAML" if i == 0 else f"YAML{NBSP}{i + 1}", f"#{anchor}"))
        parts.append(f" · {_revisions(revisions)} · {_last_day(finished)}")
        runs.append(Rich(tuple(parts)))
    shown["seeds"] = pd.Series(seeds, index=shown.index, dtype=object)
    shown[RUNS_COLUMN] = pd.Series(runs, index=shown.index, dtype=object)
    return shown


def _figures(rows: pd.DataFrame, runs: pd.DataFrame, wall_std: pd.Series, metric: str, benchmark: str,
             codes: Codes) -> list[PageSvg]:
    """One accuracy-against-time figure per pair of the benchmark, drawn from the rows."""
    column = f"{metric}_top1"
    figures = []
    distilled = rows[rows["teacher"] != ""]
    for (teacher, student), pair_rows in distilled.groupby(["teacher", "student"], sort=False):
        name = pair_text(str(teacher), str(student))
        points = [Point(label=str(label), seconds=float(seconds),
                        seconds_std=float(wall_std.get(row, math.nan)), top1=float(mean), top1_std=float(std),
                        n=int(n))
                  for row, label, seconds, mean, std, n in zip(
                      pair_rows.index, pair_rows["label"], pair_rows["wall_time_s"],
                      pair_rows["mean"], pair_rows["std"], pair_rows["n"], strict=True)
                  if math.isfinite(seconds) and seconds > 0 and math.isfinite(mean)]
        scratch = runs.loc[(runs["teacher_key"] == "") & (runs["method"] == SCRATCH_METHOD)
                           & (runs["student"] == student), column].astype(float)
        teacher_top1 = pair_rows["teacher_top1"].dropna()
        reference = Reference(str(teacher), float(teacher_top1.iloc[0]) if len(teacher_top1) else math.nan,
                              str(student), float(scratch.mean()) if len(scratch) else math.nan,
                              float(scratch.std(ddof=1)) if len(scratch) > 1 else 0.0, len(scratch))
        left_out = len(pair_rows) - len(points)
        caption = (f"{len(points)} method variant{'s' if len(points) != 1 else ''}"
                   + (f"; {left_out} without a recorded wall time left out." if left_out else "."))
        figures.append(PageSvg(name, time_accuracy_svg(points, reference, metric, name), caption,
                               anchor=figure_anchor(benchmark, name),
                               data={"pair": codes.pairs[name]}))
    return figures
