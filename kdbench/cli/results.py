"""``kdbench tables``, ``publish`` and ``leaderboard``: tables from run records, and the published results.

``kdbench.tables`` is imported where a table is written, not at the top: it brings pandas and matplotlib, a
second on every start, and ``kdbench --help``, ``list`` or shell completion need neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

from rich.console import Console

from kdbench.cli.common import Metric, Results, Runs, argument, console, option, print_table, runs_root, suite_name
from kdbench.errors import KdbenchError
from kdbench.plan import TableLayout
from kdbench.store import RunStore, publish_suite, write_outputs


def tables(
    suite: Annotated[str, argument(metavar="SUITE",
                                   help="a suite name in the run store, a suite file, or a folder of records")],
    metric: Annotated[Metric | None, option(
        "--metric", metavar="best|last", help="best- or last-epoch top-1 (default: the suite's choice, else best)")]
    = None,
    layout: Annotated[TableLayout | None, option(
        "--layout", metavar="NAME", help=f"table layout: {', '.join(get_args(TableLayout))} (default: the suite's "
        "choice, else recognised from the records)")] = None,
    out: Annotated[str | None, option("--out", metavar="DIR", help="default: <runs>/<suite>/")] = None,
    runs: Runs = None,
) -> int:
    """regenerate a suite's table from its run records

    Rebuilds a suite's table (and its accuracy-vs-time plots) from its run records. `SUITE` is a suite name in
    the run store, a suite file, or a folder of records.
    """
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: module docstring

    given = Path(suite)
    if given.is_dir():  # a folder of records: its table goes beside its raw/ folder
        table, paths = write_suite_tables(given, Path(out) if out else given.parent.parent / given.name, metric,
                                          layout)
        print_table(console(), table.markdown, paths)
        return 0
    store = RunStore(runs_root(runs))
    name = suite_name(suite)
    if not store.suite_dir(name).is_dir():
        raise KdbenchError(f"no suite {name!r} in the run store {store.root}: run it first, or name a record folder")
    table, paths = write_suite_tables(store.suite_dir(name), Path(out) if out else store.tables_dir(name), metric,
                                      layout)
    print_table(console(), table.markdown, paths)
    return 0


def publish(
    suite: Annotated[str, argument(metavar="SUITE", help="a suite name in the run store, or its suite file")],
    replace: Annotated[bool, option("--replace", help="replace published records that differ (the new record notes "
                                    "what it replaced)")] = False,
    metric: Annotated[Metric, option("--metric", metavar="best|last", help="for the leaderboard")] = "best",
    runs: Runs = None,
    results: Results = "results",
) -> int:
    """copy a suite's finished runs into the published results

    Copies the suite's finished records from the run store into `results/raw/<suite>/`, rebuilds
    `results/<suite>/` and the leaderboard. A published record that differs from yours (the same run trained
    again) is replaced only with `--replace`, and the new record notes what it replaced.
    """
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: module docstring

    out = console()
    mine, published = RunStore(runs_root(runs)), RunStore(results)
    name = suite_name(suite)
    report = publish_suite(mine, published, name, replace=replace)
    out.print(f"published {name}: {len(report.added)} new, {len(report.replaced)} replaced, "
              f"{len(report.unchanged)} already published as they are")
    table, paths = write_suite_tables(published.suite_dir(name), published.tables_dir(name))
    print_table(out, table.markdown, paths)
    return write_leaderboard(out, Path(results), metric)


def leaderboard(
    metric: Annotated[Metric, option(
        "--metric", metavar="best|last", help="best- or last-epoch top-1 (default: best)")] = "best",
    results: Results = "results",
) -> int:
    """build the leaderboard CSVs and page from every published record

    Rebuilds `results/leaderboard/` from every published record.
    """
    return write_leaderboard(console(), Path(results), metric)


def write_leaderboard(out: Console, results: Path, metric: str) -> int:
    from kdbench.tables.leaderboard_files import write_leaderboard as write  # pandas, matplotlib: module docstring

    boards, paths = write(RunStore(results), metric)
    for board in boards:
        out.print(f"{board.dataset}: {len(board.rows)} rows from {len(board.runs)} runs")
    out.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def write_tables(out: Console, store: RunStore, suite: str, results: Path) -> None:
    """The suite's table in the run store, and, when the suite is published, yours beside the published."""
    from kdbench.tables import results_frame, write_suite_tables  # pandas, matplotlib: module docstring
    from kdbench.tables.reproduction import reproduction_table

    raw, tables_dir = store.suite_dir(suite), store.tables_dir(suite)
    table, paths = write_suite_tables(raw, tables_dir)
    print_table(out, table.markdown, paths)
    published_raw = RunStore(results).suite_dir(suite)
    if published_raw.resolve() != raw.resolve() and any(published_raw.glob("*/record.json")):
        compared = reproduction_table(results_frame(raw), results_frame(published_raw), "best")
        paths = write_outputs(tables_dir, {"reproduction.md": compared.markdown.encode(),
                                           "reproduction.csv": compared.tidy.to_csv(index=False).encode()})
        print_table(out, compared.markdown.replace("### Yours vs published",
                                                   f"### Yours vs published ({published_raw})"), paths)
