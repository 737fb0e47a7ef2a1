"""The leaderboard's files under ``results/leaderboard/``: per dataset the rows and the method summary as CSV
and Markdown, and one static HTML page for every dataset with the per-pair figures."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from kdbench.errors import KdbenchError
from kdbench.store import RunStore, published_records, write_outputs
from kdbench.tables.html_page import PageFigure, PageSection, PageTable, render_page
from kdbench.tables.leaderboard import (
    NOTE,
    ROW_SORT_KEYS,
    SUMMARY_SORT_KEYS,
    Board,
    board_markdown,
    boards,
    display_rows,
    display_summary,
    sort_keys,
)
from kdbench.tables.plots import time_accuracy_png

LEADERBOARD = "leaderboard"


def _figures(board: Board, metric: str) -> tuple[PageFigure, ...]:
    figures = []
    runs = board.runs
    for benchmark, group in runs.groupby("benchmark", sort=False):
        for (teacher, student), _ in group[group["teacher"].notna()].groupby(["teacher", "student"], sort=False):
            # cast: group keys are the columns' names (text); pandas-stubs types them as any scalar / Hashable
            png = time_accuracy_png(group, cast(str, teacher), cast(str, student), metric)
            figures.append(PageFigure(f"{teacher} → {student}", png, cast(str, benchmark)))
    return tuple(figures)


def _section(board: Board, metric: str) -> PageSection:
    tables = []
    for benchmark in board.rows["benchmark"].unique():
        summary = board.summary[board.summary["benchmark"] == benchmark]
        rows = board.rows[board.rows["benchmark"] == benchmark]
        tables += [PageTable(f"Methods · {benchmark}", display_summary(summary),
                             sort_keys=sort_keys(summary, SUMMARY_SORT_KEYS)),
                   PageTable(f"Method × pair · {benchmark}", display_rows(rows), NOTE,
                             sort_keys=sort_keys(rows, ROW_SORT_KEYS))]
    intro = (f"{len(board.runs)} published runs; {metric} top-1 (%). The CSVs beside this page hold the same "
             f"rows with every number unrounded ({board.dataset}.csv, {board.dataset}_summary.csv).")
    return PageSection(board.dataset, intro, tuple(tables), _figures(board, metric))


def write_leaderboard(published: RunStore, metric: str = "best") -> tuple[list[Board], list[Path]]:
    """Rebuild every leaderboard file from the published records."""
    records = published_records(published)
    if not records:
        raise KdbenchError(f"no published run records under {published.root / 'raw'}: publish a suite first")
    built = boards(records, metric)
    files: dict[str, bytes] = {}
    for board in built:
        files[f"{board.dataset}.csv"] = board.rows.to_csv(index=False).encode()
        files[f"{board.dataset}_summary.csv"] = board.summary.to_csv(index=False).encode()
        files[f"{board.dataset}.md"] = board_markdown(board).encode()
    page = render_page("kdbench leaderboard", [_section(board, metric) for board in built],
                       footer=f"Derived from {len(records)} published run records by kdbench leaderboard.")
    files["index.html"] = page.encode()
    return built, write_outputs(published.root / LEADERBOARD, files)
