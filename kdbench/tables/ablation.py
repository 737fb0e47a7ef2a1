"""Table III of the paper: each method with and without Data Selection and Label Revision."""

from __future__ import annotations

import math

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.tables.cells import (
    SIGNIFICANT_NOTE,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    pairs,
    welch_p,
)
from kdbench.tables.paper_common import (
    CHECK,
    CROSS,
    DS_COLUMNS,
    KD,
    LR_COLUMNS,
    MSE_KD,
    PAPER_DS,
    PAPER_LR,
    PAPER_NAMES,
    Section,
    configs,
    held_settings,
    matching,
    render_by_pair,
    tidy_frame,
)


def _mark(flag: bool) -> str:
    return CHECK if flag else CROSS


def _block_rows(method: str) -> list[tuple[str, bool, bool, str]]:
    """(method run, DS, LR, LR cell) in the paper's order; KD's block adds the MSE-logit baseline row."""
    if method == KD:
        return [(KD, False, False, f"{CROSS} (KL)"), (MSE_KD, False, False, f"{CROSS} (MSE)"),
                (KD, False, True, CHECK), (KD, True, False, CROSS), (KD, True, True, CHECK)]
    return [(method, ds, lr, _mark(lr)) for ds, lr in ((False, False), (False, True), (True, False), (True, True))]


def _ablation_methods(distill: pd.DataFrame) -> list[str]:
    """KD's block first (it owns mse_kd), then every other method in suite order."""
    order = distill.groupby("method", sort=False)["method_order"].min().sort_values(kind="stable")
    others = [m for m in order.index if m not in (KD, MSE_KD)]
    has_kd = bool(set(order.index) & {KD, MSE_KD})
    return ([KD] if has_kd else []) + others


def _ablation_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """Distillation runs, with every DS run at one DS setting and every LR run at one LR setting."""
    distill = rows[rows["method"].notna() & (rows["method"] != SCRATCH_METHOD)]
    ds_held = held_settings(distill[distill["ds"]], PAPER_DS)
    lr_held = held_settings(distill[distill["lr"]], PAPER_LR)
    keep = (~distill["ds"] | matching(distill, ds_held)) & (~distill["lr"] | matching(distill, lr_held))
    held: pd.DataFrame = distill[keep]
    return held


def _ablation_section(rows: pd.DataFrame, column: str) -> Section:
    distill = _ablation_runs(rows)
    table, tidy, used = [], [], 0
    for method in _ablation_methods(distill):
        base: tuple[float, float, int] | None = None
        first = True
        for run_method, ds, lr, lr_cell in _block_rows(method):
            cell_rows = distill[(distill["method"] == run_method) & (distill["ds"] == ds) & (distill["lr"] == lr)]
            stats = mean_std(cell_rows[column])
            if base is None:  # the block's first row (×/×, KL for KD) is the Δ reference, present or not
                base = stats
                change, p = math.nan, math.nan
            else:
                change, p = delta(stats, base), welch_p(stats, base)
            if stats[2] == 0:
                continue  # missing combinations are absent rows
            used += stats[2]
            block = PAPER_NAMES.get(method, method)
            tidy.append({"block": block, "method": run_method, "ds": ds, "lr": lr, "mean": stats[0], "std": stats[1],
                         "n": stats[2], "delta": change, "p_value": p})
            table.append([block if first else "", _mark(ds), lr_cell, format_cell(*stats),
                          format_delta(change, p)])
            first = False
    body = markdown(["Method", "DS", "LR", "Acc (%)", "Δ"], table) if table else "No distillation runs."
    body += ("\n\nΔ: difference of mean Acc to the block's × × row (KD: the KL one); \"–\" where that row has no runs. "
             + SIGNIFICANT_NOTE)
    columns = ["block", "method", "ds", "lr", "mean", "std", "n", "delta", "p_value"]
    return Section(body=body, tidy=tidy_frame(tidy, columns), used=used)


def ablation_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table III: each method with and without DS and LR, and Δ against its own ×/× run, so the gain of
    each part is read off directly; KD's block also shows KD with an MSE logit loss."""
    return render_by_pair(frame, metric, "Table III: with or without DS and LR", _ablation_section,
                          ["block", "method", "ds", "lr"], ("mean", "std", "n", "delta", "p_value"))


def is_ablation(data: pd.DataFrame) -> bool:
    distill = data[data["teacher"].notna() & data["method"].notna() & (data["method"] != SCRATCH_METHOD)]
    if len(pairs(data)) != 1:
        return False
    if len(configs(distill[distill["ds"]], DS_COLUMNS)) > 1 or len(configs(distill[distill["lr"]], LR_COLUMNS)) > 1:
        return False
    for _, runs in distill.groupby("method"):
        flags = set(zip(runs["ds"], runs["lr"], strict=True))
        if (False, False) in flags and ((True, False) in flags or (False, True) in flags):
            return True
    return False
