"""Table II of the paper: Data Selection by D_t percentage × selection strategy."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from kdbench.tables.cells import Table, format_cell, markdown, mean_std
from kdbench.tables.paper_common import (
    KD,
    PAPER_DS,
    Section,
    held_settings,
    matching,
    num_text,
    percent,
    render_by_pair,
    stat_record,
    tidy_frame,
)

STRATEGIES = {"random": "Random", "lowest": "Lowest", "highest": "Highest"}  # paper row order


def strategy_of(row: pd.Series) -> str | None:
    """A random estimator is random selection whatever the order; otherwise the order names the strategy."""
    if row["ds_estimator"] == "random":
        return STRATEGIES["random"]
    return STRATEGIES.get(row["ds_order"])


def _selection_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """DS-only KD runs with a strategy and a PCT; scored strategies held at one estimator (influence)."""
    ds = rows[(rows["method"] == KD) & rows["ds"] & ~rows["lr"] & rows["ds_fraction"].notna()]
    strategies: list[Any] = [strategy_of(r) for _, r in ds.iterrows()] if len(ds) else []  # names and None
    ds = ds.assign(strategy=strategies)
    ds = ds[ds["strategy"].notna()]
    scored = ds[ds["strategy"] != STRATEGIES["random"]]
    held = held_settings(scored, {"ds_estimator": PAPER_DS["ds_estimator"]})
    keep = (ds["strategy"] == STRATEGIES["random"]) | matching(ds, held)
    selected: pd.DataFrame = ds[keep].assign(pct=[round(f * 100, 6) for f in ds.loc[keep, "ds_fraction"]])
    return selected


def _selection_section(rows: pd.DataFrame, column: str) -> Section:
    baseline = rows[(rows["method"] == KD) & ~rows["ds"] & ~rows["lr"]]
    runs = _selection_runs(rows)
    strategies = [s for s in STRATEGIES.values() if s in set(runs["strategy"])]
    base = mean_std(baseline[column])
    tidy = [stat_record(pct=math.nan, strategy="Baseline")(base)]
    table = []
    for pct in sorted(set(runs["pct"])):
        for i, strategy in enumerate(strategies):
            cell = mean_std(runs[(runs["pct"] == pct) & (runs["strategy"] == strategy)][column])
            tidy.append(stat_record(pct=pct, strategy=strategy)(cell))
            table.append([num_text(pct) if i == 0 else "", strategy, format_cell(*cell)])
    body = f"Baseline Acc: {percent(format_cell(*base))} (vanilla KD, no DS/LR)\n\n"
    body += markdown(["PCT(%)", "Strategy", "Acc(%)"], table) if table else "No Data Selection runs."
    body += (
        "\n\nPCT(%): share of training samples sent to the teacher (D_t). Random: random D_t; "
        "Lowest / Highest: the samples with the lowest / highest data-value scores."
    )
    used = len(baseline) + len(runs)
    return Section(body=body, tidy=tidy_frame(tidy, ["pct", "strategy", "mean", "std", "n"]), used=used)


def selection_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table II: Acc(%) per D_t percentage × selection strategy (Random, Lowest, Highest), with vanilla KD's
    accuracy as the "Baseline Acc" line, so influence-based selection can be judged against random."""
    return render_by_pair(frame, metric, "Table II: Data Selection, influence vs random", _selection_section,
                          ["pct", "strategy"])


def is_selection_study(kd: pd.DataFrame) -> bool:
    ds = kd[kd["ds"] & ~kd["lr"]]
    combos = {(row["ds_fraction"], strategy_of(row)) for _, row in ds.iterrows()}
    return len(combos) >= 2
