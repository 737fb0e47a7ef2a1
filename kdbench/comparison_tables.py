"""The paper's comparison tables, rendered from run records: Table IV (vanilla KD vs ours) and
Tables V/VI (each method as published, "OA", vs with LR/DS, "LDA", and their difference Δ).

A run is "LDA" when it used Data Selection or Label Revision, "OA" otherwise. A method's group follows
from its LDA runs, as §7 of METHODS.md dictates: LDA by DS alone means a logit method ("Logits"), LDA
with LR a feature method ("Features"). Cells are mean ± std over seeds; Δ is the difference of means.
"""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from kdbench.tables import Table, format_cell, mean_std

SCRATCH = "ce"


def _column(frame: pd.DataFrame, metric: str) -> str:
    column = f"{metric}_top1"
    if column not in frame.columns:
        raise ValueError(f"unknown metric {metric!r}")
    return column


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    distill = frame[frame["teacher"].notna()]
    order = distill.groupby(["teacher", "student"])["pair_order"].min().sort_values()
    return list(order.index)


def _delta(lda: tuple[float, float, int], oa: tuple[float, float, int]) -> str:
    if lda[2] == 0 or oa[2] == 0 or math.isnan(lda[0]) or math.isnan(oa[0]):
        return "–"
    return f"{lda[0] - oa[0]:+.2f}"


def _teacher_line(frame: pd.DataFrame, pairs: list[tuple[str, str]], column: str) -> list[str]:
    scratch = frame[frame["teacher"].isna() & (frame["method"] == SCRATCH)]
    cells = []
    for teacher, student in pairs:
        runs = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]
        t_acc = runs["teacher_top1"].dropna()
        s_acc = mean_std(scratch[scratch["student"] == student][column])
        t_text = f"{t_acc.iloc[0]:.2f}" if len(t_acc) else "–"
        cells.append(f"{teacher} ({t_text}) → {student} ({format_cell(*s_acc)})")
    return cells


def oa_lda_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Tables V and VI: rows are methods grouped Logits / Features, columns OA, LDA, Δ per pair."""
    column = _column(frame, metric)
    pairs = _pairs(frame)
    distill = frame[frame["teacher"].notna()]
    labels = distill.groupby("label")["method_order"].min().sort_values().index.tolist()
    is_lda = distill["ds"] | distill["lr"]
    rows, tidy = [], []
    for group in ("Logits", "Features"):
        for label in labels:
            mine = distill[distill["label"] == label]
            lda_runs = mine[is_lda.loc[mine.index]]
            method_group = "Features" if lda_runs["lr"].any() else "Logits"
            if method_group != group:
                continue
            cells = [group, label]
            for teacher, student in pairs:
                at = mine[(mine["teacher"] == teacher) & (mine["student"] == student)]
                lda_mask = is_lda.loc[at.index]
                oa, lda = mean_std(at[~lda_mask][column]), mean_std(at[lda_mask][column])
                cells += [format_cell(*oa), format_cell(*lda), _delta(lda, oa)]
                pair = f"{teacher} → {student}"
                for variant, (mean, std, n) in (("OA", oa), ("LDA", lda)):
                    tidy.append({"group": group, "row": label, "pair": pair, "variant": variant,
                                 "mean": mean, "std": std, "n": n})
            rows.append(cells)
    header = ["Type", "Method"] + [h for t, s in pairs for h in (f"{t} → {s} OA", "LDA", "Δ")]
    lines = ["Teacher (top-1) → student (from scratch): " + "; ".join(_teacher_line(frame, pairs, column)), ""]
    lines.append(tabulate(rows, headers=header, tablefmt="pipe", disable_numparse=True))
    n = int(distill.groupby(["label", "teacher", "student", "ds", "lr"])["seed"].nunique().max()) if len(distill) else 0
    lines += ["", f"OA: as published; LDA: with Data Selection (Logits) or Label Revision + Data Selection "
              f"(Features); Δ = LDA − OA. {metric} top-1 (%), mean ± std over up to {n} seeds; "
              f"derived from {len(frame)} run records."]
    tidy_df = pd.DataFrame(tidy, columns=["group", "row", "pair", "variant", "mean", "std", "n"])
    tidy_df.insert(4, "metric", f"{metric} top-1 (%)")
    return Table(markdown="\n".join(lines) + "\n", tidy=tidy_df)


def vanilla_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table IV: Teacher, Student, Vanilla KD, Our (KD + LR + DS) and Δ for every pair."""
    column = _column(frame, metric)
    pairs = _pairs(frame)
    scratch = frame[frame["teacher"].isna() & (frame["method"] == SCRATCH)]
    kd = frame[(frame["method"] == "kd") & frame["teacher"].notna()]
    header = ["", *[f"{t} → {s}" for t, s in pairs]]
    teacher_row, student_row, vanilla_row, ours_row = ["Teacher"], ["Student"], ["Vanilla KD"], ["Our"]
    delta_row = ["Δ"]
    tidy = []
    for teacher, student in pairs:
        runs = kd[(kd["teacher"] == teacher) & (kd["student"] == student)]
        t_acc = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]["teacher_top1"].dropna()
        stats = {
            "Teacher": (float(t_acc.iloc[0]), 0.0, 1) if len(t_acc) else (math.nan, math.nan, 0),
            "Student": mean_std(scratch[scratch["student"] == student][column]),
            "Vanilla KD": mean_std(runs[~runs["ds"] & ~runs["lr"]][column]),
            "Our": mean_std(runs[runs["ds"] & runs["lr"]][column]),
        }
        for row, cell in zip((teacher_row, student_row, vanilla_row, ours_row), stats.values(), strict=True):
            row.append(format_cell(*cell))
        delta_row.append(_delta(stats["Our"], stats["Vanilla KD"]))
        tidy += [{"row": k, "pair": f"{teacher} → {student}", "mean": v[0], "std": v[1], "n": v[2]}
                 for k, v in stats.items()]
    body = tabulate([teacher_row, student_row, vanilla_row, ours_row, delta_row], headers=header,
                    tablefmt="pipe", disable_numparse=True)
    note = (f"Our = KD + Label Revision + Data Selection; Δ = Our − Vanilla KD. {metric} top-1 (%), "
            f"mean ± std over seeds; derived from {len(frame)} run records.")
    tidy_df = pd.DataFrame(tidy, columns=["row", "pair", "mean", "std", "n"])
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    return Table(markdown=body + "\n\n" + note + "\n", tidy=tidy_df)


LAYOUTS = {"oa_lda": oa_lda_table, "vanilla": vanilla_table}
