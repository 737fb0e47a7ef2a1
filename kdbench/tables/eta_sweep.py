"""Table IX of the paper: KD + DS + LR for each fixed η and each per-sample η rule."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from kdbench.tables.cells import Table, format_cell, markdown, mean_std
from kdbench.tables.paper_common import (
    PAPER_LR,
    Section,
    baseline_line,
    equals,
    is_missing,
    num_text,
    render_by_pair,
    stat_record,
    sweep_runs,
    tidy_frame,
)

LEARNABLE_ETA = ("ptmax", "pttar")


def _eta_order(values: Iterable[object]) -> list[float | str]:
    """Fixed (numeric) η ascending, then the learnable rules in the paper's order, then anything else."""
    values = {v for v in values if not is_missing(v)}
    numbers = sorted(v for v in values if isinstance(v, float | int))
    names = [v for v in LEARNABLE_ETA if v in values]
    return numbers + names + sorted(str(v) for v in values if not isinstance(v, float | int) and v not in names)


def _eta_header(values: list[float | str]) -> tuple[list[str], list[str]]:
    """The paper's two-level header: a Fixed / Learnable group row above the η values."""
    groups, previous = [], None
    for v in values:
        group = "Fixed" if isinstance(v, float | int) else "Learnable"
        groups.append(group if group != previous else "")
        previous = group
    return ["η", *groups], ["", *(num_text(v) for v in values)]


def _eta_section(rows: pd.DataFrame, column: str) -> Section:
    lr_preferred = {k: PAPER_LR[k] for k in ("lr_name", "lr_lambda1", "lr_lambda2")}
    runs, baseline = sweep_runs(rows, lr_preferred)
    base = mean_std(baseline[column])
    values = _eta_order(runs["lr_eta"])
    cells = [(v, mean_std(runs[equals(runs["lr_eta"], v)][column])) for v in values]
    kind = {True: "fixed", False: "learnable"}
    tidy = [stat_record(kind="baseline", eta=None)(base)]
    tidy += [stat_record(kind=kind[isinstance(v, float | int)], eta=v)(s) for v, s in cells]
    blocks = [baseline_line(base)]
    if cells:
        header, value_row = _eta_header(values)
        blocks.append(markdown(header, [value_row, ["Acc(%)", *(format_cell(*s) for _, s in cells)]]))
    else:
        blocks.append("No η runs (KD with DS and LR).")
    blocks.append("Learnable: ptmax / pttar set η per sample to the teacher's probability of its predicted class / "
                  "of the target class. λ1 = λ2 = 1.")
    used = len(baseline) + sum(s[2] for _, s in cells)
    return Section(body="\n\n".join(blocks), tidy=tidy_frame(tidy, ["kind", "eta", "mean", "std", "n"]), used=used)


def eta_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table IX: Acc(%) of KD + DS + LR for each fixed η and each learnable (per-sample) η rule, against
    DS-only KD, to show how sensitive Label Revision is to how much of the teacher it keeps."""
    return render_by_pair(frame, metric, "Table IX: settings of η", _eta_section, ["kind", "eta"])
