"""``kdbench tables``, ``publish`` and ``leaderboard``: tables from run records, and the published results.

``kdbench.tables`` is imported where a table is written, not at the top: it brings pandas and matplotlib, a
second on every start, and ``kdbench --help``, ``list`` or shell completion need neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

from rich.console import Console

from kdbench.cli.common import (
    Metric,
    Results,
    Runs,
    argument,
    console,
    option,
    plan_suite,
    print_table,
    runs_root,
    suite_name,
)
from kdbench.errors import KdbenchError
from kdbench.plan import TableLayout
from kdbench.registry import did_you_mean
from kdbench.store import RunStore, iter_records, publish_suite, read_suite_info, suites_in


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
    results: Results = "results",
) -> int:
    """regenerate a suite's table from its run records

    Rebuilds a suite's table (and its accuracy-vs-time plots) from its run records, and your numbers beside the
    published ones when the suite is published. `SUITE` is a suite name in the run store, a suite file, or a
    folder of records. When some of the suite's runs have no record yet, one line says how many have.
    """
    given = Path(suite)
    if given.is_dir():  # a folder of records: its table goes beside its raw/ folder
        raw, tables_dir = given, given.parent.parent / given.name
    else:
        store = RunStore(runs_root(runs))
        name = suite_name(suite)
        known_suite(store, name)
        raw, tables_dir = store.suite_dir(name), store.tables_dir(name)
    text = console()
    finished = finished_line(raw, suite if suite.endswith((".yaml", ".yml")) else None)
    if finished is not None:
        text.print(finished, markup=False, highlight=False)
    print_tables(text, raw, Path(out) if out else tables_dir, Path(results), metric, layout)
    return 0


def known_suite(store: RunStore, name: str) -> None:
    """A suite the run store holds, else one line naming the nearest suite it holds (exit 2)."""
    if store.suite_dir(name).is_dir():
        return
    known = suites_in(store)
    hint = did_you_mean(name, known) if known else ": it holds no suite yet; run one first, or name a record folder"
    raise KdbenchError(f"no suite {name!r} in the run store {store.root}{hint}")


def finished_line(raw: Path, suite_file: str | None = None) -> str | None:
    """"12 of 18 runs of quickstart finished; the table shows those" when some of the runs the suite plans have
    no record under ``raw`` yet. The plan comes from ``suite_file``, else from the file the suite's records were
    run from (saved beside them); when that file is gone, or no longer plans this suite, None: better nothing than
    a guess."""
    info = read_suite_info(raw)
    file = suite_file or (info.file if info else "")
    if not file or not Path(file).is_file():
        return None
    try:
        plan, _ = plan_suite(file, None)
    except KdbenchError:
        return None
    if plan.suite.name != raw.name:  # e.g. a tune study's final runs, saved with the file of the suite they tune
        return None
    recorded = {record.key for record in iter_records(raw)}
    done = sum(spec.key in recorded for spec in plan.runs)
    if done == len(plan.runs):
        return None
    return f"{done} of {len(plan.runs)} runs of {plan.suite.name} finished; the table shows those"


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
    known_suite(mine, name)
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
    print_tables(out, store.suite_dir(suite), store.tables_dir(suite), results)


def print_tables(out: Console, raw: Path, tables_dir: Path, results: Path, metric: str | None = None,
                 layout: str | None = None) -> None:
    """Write and print the table of the records under ``raw`` (a suite's folder), then, when ``results`` holds
    published records of the same suite, yours beside them (``kdbench run`` and ``kdbench tables`` alike)."""
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: module docstring
    from kdbench.tables.reproduction import write_reproduction

    table, paths = write_suite_tables(raw, tables_dir, metric, layout)
    print_table(out, table.markdown, paths)
    published_raw = RunStore(results).suite_dir(raw.name)
    compared = write_reproduction(raw, published_raw, tables_dir, metric)
    if compared is not None:
        block, paths = compared
        print_table(out, block.markdown.replace("### Yours vs published", f"### Yours vs published ({published_raw})"),
                    paths)
