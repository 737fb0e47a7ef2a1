"""Table VIII of the paper: KD + DS + LR for each λ1 and λ2 of Eq. (11), against DS-only KD."""

from __future__ import annotations

import math

import pandas as pd

from kdbench.tables.cells import Table, format_cell, markdown, mean_std
from kdbench.tables.paper_common import (
    PAPER_LR,
    Section,
    baseline_line,
    equals,
    num_text,
    render_by_pair,
    stat_record,
    sweep_row,
    sweep_runs,
    tidy_frame,
)


def _lambda_section(rows: pd.DataFrame, column: str) -> Section:
    runs, baseline = sweep_runs(rows, {"lr_name": "paper", "lr_eta": PAPER_LR["lr_eta"]})
    base = mean_std(baseline[column])
    tidy = [stat_record(parameter="baseline", value=math.nan)(base)]
    blocks, used = [baseline_line(base)], set(baseline.index)
    for name, swept, fixed in (("λ1", "lr_lambda1", "lr_lambda2"), ("λ2", "lr_lambda2", "lr_lambda1")):
        sweep = runs[equals(runs[fixed], 1.0)]
        cells = sweep_row(sweep, swept, column)
        used |= set(sweep.index)
        tidy += [stat_record(parameter=swept.removeprefix("lr_"), value=v)(s) for v, s in cells]
        if cells:
            acc = ["Acc(%)", *(format_cell(*s) for _, s in cells)]
            blocks.append(markdown([name, *(num_text(v) for v, _ in cells)], [acc]))
    if len(blocks) == 1:
        blocks.append("No λ sweep runs (KD with DS and LR).")
    blocks.append("When one of λ1, λ2 changes, the other is held at 1; the λ1 = λ2 = 1 run appears in both rows.")
    return Section(body="\n\n".join(blocks), tidy=tidy_frame(tidy, ["parameter", "value", "mean", "std", "n"]),
                    used=len(used))


def lambda_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table VIII: Acc(%) of KD + DS + LR for each λ1 (λ2 = 1) and each λ2 (λ1 = 1), against DS-only KD,
    to show how much each half of Eq. (11) (teacher-right vs teacher-wrong samples) matters."""
    return render_by_pair(frame, metric, "Table VIII: coefficients λ1 and λ2", _lambda_section, ["parameter", "value"])
