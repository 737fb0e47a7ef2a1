"""The leaderboard's files under ``results/leaderboard/``: per dataset the rows and the method summary as CSV
and Markdown, and one static HTML page for every dataset, with its filters, links and per-pair figures.

The records come from the caller, read once (``store.published_files``), because the same records also make
``results/runs.parquet``: reading 10,000 of them is most of the command's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from kdbench.errors import KdbenchError
from kdbench.store import RunRecord, RunStore, write_outputs
from kdbench.tables.html_page import render_page
from kdbench.tables.leaderboard import Board, board_markdown, boards
from kdbench.tables.leaderboard_page import Codes, filters, sections

LEADERBOARD = "leaderboard"


def today() -> str:
    """Today's UTC date (a date, not a time: an unchanged tree rebuilds the same page on the same day)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def write_leaderboard(published: RunStore, records: Sequence[RunRecord], metric: str = "best",
                      release: str | None = None, built_on: str | None = None) -> tuple[list[Board], list[Path]]:
    """Rebuild every leaderboard file from ``records`` (the published ones, each run once).

    ``release`` is the release name the page shows (None: "unreleased"); ``built_on`` the build date it shows
    (None: today's UTC date, YYYY-MM-DD)."""
    if not records:
        raise KdbenchError(f"no published run records under {published.root / 'raw'}: publish a suite first")
    built, files = _files(records, metric, release, built_on)  # the caller pauses the GC (store.paused_gc)
    return built, write_outputs(published.root / LEADERBOARD, files)


def _files(records: Sequence[RunRecord], metric: str, release: str | None,
           built_on: str | None) -> tuple[list[Board], dict[str, bytes]]:
    built = boards(records, metric)
    files: dict[str, bytes] = {}
    for board in built:
        files[f"{board.dataset}.csv"] = board.rows.to_csv(index=False).encode()
        files[f"{board.dataset}_summary.csv"] = board.summary.to_csv(index=False).encode()
        files[f"{board.dataset}.md"] = board_markdown(board).encode()
    codes = Codes.of(built)
    page_sections = [section for board in built for section in sections(board, metric, codes)]
    subtitle = (f"{'Release ' + release if release else 'Unreleased'} · built {built_on or today()} · "
                f"{len(records)} published runs · {metric}-epoch top-1 (%)")
    footer = (f"Derived from {len(records)} published run records by kdbench leaderboard. The CSVs beside this page "
              f"({', '.join(f'{b.dataset}.csv, {b.dataset}_summary.csv' for b in built)}) hold the same rows with "
              "every number unrounded.")
    page = render_page("kdbench leaderboard", page_sections, footer=footer, subtitle=subtitle,
                       filters=filters(built, codes))
    files["index.html"] = page.encode()
    return built, files
