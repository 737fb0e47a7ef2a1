"""The paper's own table layouts (arXiv 2404.03693, Tables II, III, VIII, IX), rendered from run records.

Every number comes from ``kdbench.tables.results_frame``: a cell is the mean ± sample std over the runs
(seeds) that fall into it (``format_cell``: "–" for no runs, a plain number for one run). Nothing here
holds a published number; the paper only dictates which rows and columns exist and in what order.

Settings held fixed. A paper table varies one thing and holds the rest at the paper's defaults (DS: the
80% highest-influence samples go to the teacher; LR: the "paper" revision with η = 0.8, λ1 = λ2 = 1).
When a frame mixes several values of a setting that a table holds fixed (say an η sweep next to a λ
sweep), each table keeps the paper's default value if any run has it, else the value most runs share,
so that no cell averages runs of different configurations; the note under the table counts the
records of the pair it left out. Label Revision records that omit η or λ are read at the revision's
defaults (η = 0.8, λ1 = λ2 = 1).

Layout detection (``detect_layout``), first rule that matches wins:

1. ``lambda``: KD runs with DS and LR show two or more distinct (λ1, λ2) settings (Table VIII).
2. ``eta``: KD runs with DS and LR show two or more distinct η values (Table IX).
3. ``selection``: KD runs with DS and without LR show two or more distinct (fraction, strategy)
   combinations (Table II).
4. ``ablation``: a single teacher → student pair, where some distillation method has a run without
   DS/LR and a run with exactly one of them, and the DS and LR settings do not vary (Table III).
5. ``method_pair``: anything else (the generic method × pair table of ``kdbench.tables``).

Why this order: the sweeps are the most specific signatures, and their frames also contain what the
weaker rules look for (a λ sweep carries the DS-only baseline, i.e. mixed DS/LR flags; a selection
study carries vanilla KD next to DS-only KD), so they are tested first. The ablation rule needs one
pair and a single-flag arm so that "KD vs KD+LR+DS over ten pairs" (Table IV) or "OA vs LDA over five
pairs" (Tables V, VI) stays in the method × pair layout, and needs fixed settings so that a comparison
of estimators at one fraction is shown row by row there instead of being cut down to one estimator.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from kdbench.tables import Table, format_cell, mean_std

__all__ = ["LAYOUTS", "ablation_table", "detect_layout", "eta_table", "lambda_table", "selection_table"]

KD = "kd"
MSE_KD = "mse_kd"
SCRATCH = "ce"
CHECK, CROSS, DASH = "✓", "×", "–"

DS_COLUMNS = ("ds_estimator", "ds_fraction", "ds_order")
LR_COLUMNS = ("lr_name", "lr_eta", "lr_lambda1", "lr_lambda2")
PAPER_DS = {"ds_estimator": "influence", "ds_fraction": 0.8, "ds_order": "highest"}
PAPER_LR = {"lr_name": "paper", "lr_eta": 0.8, "lr_lambda1": 1.0, "lr_lambda2": 1.0}
LEARNABLE_ETA = ("ptmax", "pttar")
STRATEGIES = {"random": "Random", "lowest": "Lowest", "highest": "Highest"}  # paper row order

# The paper's spelling of method names in Table III's first column; anything else is shown as named.
PAPER_NAMES = {
    "kd": "KD", "pkt": "PKT", "fitnet": "FitNet", "vid": "VID", "srrl": "SRRL", "semckd": "SemCKD",
    "crd": "CRD", "dkd": "DKD", "ctkd": "CTKD", "dtd_la": "DTD-LA", "dtdla": "DTD-LA",
}

_DEFAULT_COLUMNS: dict[str, object] = {
    "method": None, "teacher": None, "student": None, "seed": None, "pair_order": 0, "method_order": 0,
    "ds": False, "lr": False, **dict.fromkeys(DS_COLUMNS + LR_COLUMNS),
}


@dataclass(frozen=True)
class _Section:
    """One teacher → student pair's part of a table: its body (without heading/note) and tidy rows."""

    body: str
    tidy: pd.DataFrame
    used: int  # run records that went into some cell


# ---------------------------------------------------------------------------------------------------
# Normalisation: make records comparable (float noise, missing defaults, mixed η types)
# ---------------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value: object) -> float | None:
    """Round so that 0.8 read from JSON and 0.8 typed in a test compare equal."""
    return None if _missing(value) else round(float(value), 10)


def _eta(value: object) -> float | str | None:
    """η is a number or the name of a per-sample rule ("ptmax"/"pttar"); numeric strings become numbers."""
    if _missing(value):
        return None
    try:
        return round(float(value), 10)
    except (TypeError, ValueError):
        return str(value).strip().lower()


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column this module reads, flags as bools, settings rounded and defaults filled.

    Missing η/λ on a Label Revision run means the revision ran at its defaults, so they are filled in;
    otherwise a suite that relies on defaults would not line up with one that spells them out.
    """
    data = frame.copy()
    for column, default in _DEFAULT_COLUMNS.items():
        if column not in data.columns:
            data[column] = default
    data["ds"] = data["ds"].map(lambda v: False if _missing(v) else bool(v)).astype(bool)
    data["lr"] = data["lr"].map(lambda v: False if _missing(v) else bool(v)).astype(bool)
    for column in ("ds_fraction", "lr_lambda1", "lr_lambda2"):
        data[column] = data[column].map(_number).astype(object)
    data["lr_eta"] = data["lr_eta"].map(_eta).astype(object)
    for column in ("ds_estimator", "ds_order", "lr_name", "teacher", "method"):
        data[column] = data[column].map(lambda v: None if _missing(v) else str(v)).astype(object)
    for column in ("lr_lambda1", "lr_lambda2"):
        filled = [1.0 if lr and _missing(v) else v for lr, v in zip(data["lr"], data[column], strict=True)]
        data[column] = pd.Series(filled, index=data.index, dtype=object)
    paper = data["lr"] & (data["lr_name"] == "paper")
    filled = [0.8 if p and _missing(v) else v for p, v in zip(paper, data["lr_eta"], strict=True)]
    data["lr_eta"] = pd.Series(filled, index=data.index, dtype=object)
    return data


def _metric_column(frame: pd.DataFrame, metric: str) -> str:
    column = f"{metric}_top1"
    if column not in frame.columns:
        raise ValueError(f"unknown metric {metric!r}: the frame has no {column!r} column (use 'best' or 'last')")
    return column


# ---------------------------------------------------------------------------------------------------
# Selecting runs: equality on object columns, held settings, pairs
# ---------------------------------------------------------------------------------------------------


def _eq(series: pd.Series, value: object) -> pd.Series:
    """Element-wise equality that also works on object columns mixing numbers, strings and None."""
    return series.map(lambda v: v == value).astype(bool)


def _matching(rows: pd.DataFrame, settings: dict[str, object]) -> pd.Series:
    mask = pd.Series(True, index=rows.index)
    for column, value in settings.items():
        mask &= _eq(rows[column], value)
    return mask


def _held_settings(rows: pd.DataFrame, preferred: dict[str, object]) -> dict[str, object]:
    """The value each setting is held at: the paper's if some run has it, else the most common one.

    Columns are decided in order, each among the runs matching the earlier choices, so the result is a
    configuration that actually exists. Ties go to the value seen first (Counter keeps insertion order).
    """
    held: dict[str, object] = {}
    for column, paper_value in preferred.items():
        values = [v for v in rows[column] if not _missing(v)]
        if not values:
            continue
        held[column] = paper_value if paper_value in values else Counter(values).most_common(1)[0][0]
        rows = rows[_eq(rows[column], held[column])]
    return held


def _pairs(data: pd.DataFrame) -> list[tuple[str, str]]:
    """Teacher → student pairs in suite order (pair_order, then first appearance)."""
    distill = data[data["teacher"].notna()]
    order = distill.groupby(["teacher", "student"], sort=False)["pair_order"].min()
    return [pair for pair, _ in sorted(order.items(), key=lambda item: item[1])]


def _pair_rows(data: pd.DataFrame, teacher: str, student: str) -> pd.DataFrame:
    return data[_eq(data["teacher"], teacher) & _eq(data["student"], student)]


def _stats(rows: pd.DataFrame, column: str) -> tuple[float, float, int]:
    return mean_std(rows[column])


def _num(value: object) -> str:
    """Setting values as the paper prints them: 0.1, 1, 10, 0.85."""
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def _percent(cell: str) -> str:
    return cell if cell == DASH else f"{cell}%"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    """Pipe table with cells kept verbatim (tabulate would otherwise print "75.00" as "75")."""
    return tabulate(rows, headers=header, tablefmt="pipe", disable_numparse=True)


def _stat_record(**fields: object) -> Callable[[tuple[float, float, int]], dict[str, object]]:
    """A tidy row: the fields that identify the cell, then its mean, std and n."""
    return lambda stats: {**fields, "mean": stats[0], "std": stats[1], "n": stats[2]}


def _tidy(records: list[dict[str, object]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=columns)


# ---------------------------------------------------------------------------------------------------
# Shared frame: one section per pair, heading, note
# ---------------------------------------------------------------------------------------------------


def _seed_range(tidy: pd.DataFrame) -> str:
    counts = [int(n) for n in tidy["n"] if n > 0]
    if not counts:
        return "0 seeds"
    low, high = min(counts), max(counts)
    return f"{high} seed{'s' if high != 1 else ''}" if low == high else f"{low}–{high} seeds"


def _note(metric: str, section: _Section, pair_records: int) -> str:
    """State what a cell is and where it came from, so a reader can tell a mean of 3 from a single run."""
    note = (
        f"Acc(%) = {metric} top-1 accuracy (%), mean ± std over {_seed_range(section.tidy)} "
        f"(a single run shows a plain number, no runs \"{DASH}\"); derived from {section.used} run records."
    )
    left_out = pair_records - section.used
    if left_out:
        note += f" {left_out} other record(s) of this pair are not part of this layout."
    return note


def _render(
    frame: pd.DataFrame,
    metric: str,
    title: str,
    build: Callable[[pd.DataFrame, str], _Section],
    row_columns: list[str],
    value_columns: tuple[str, ...] = ("mean", "std", "n"),
) -> Table:
    """Render ``build`` once per teacher → student pair that has runs for it; the paper has one pair, a suite
    may have more."""
    data = _prepare(frame)
    column = _metric_column(data, metric) if len(data) else ""
    parts, tidies = [], []
    for teacher, student in _pairs(data):
        rows = _pair_rows(data, teacher, student)
        section = build(rows, column)
        if not section.used:
            continue  # a pair with none of this table's runs (another part of a combined suite)
        heading = f"### {title} — teacher {teacher}, student {student}"
        parts.append(f"{heading}\n\n{section.body}\n\n{_note(metric, section, len(rows))}\n")
        tidies.append(section.tidy.assign(teacher=teacher, student=student, metric=f"{metric} top-1 (%)"))
    columns = ["teacher", "student", *row_columns, *value_columns, "metric"]
    if not parts:
        return Table(markdown=f"### {title}\n\nNo run records for this layout.\n", tidy=pd.DataFrame(columns=columns))
    tidy = pd.concat(tidies, ignore_index=True)[columns]
    return Table(markdown="\n".join(parts), tidy=tidy)


# ---------------------------------------------------------------------------------------------------
# Table II: Data Selection percentage × strategy
# ---------------------------------------------------------------------------------------------------


def _strategy(row: pd.Series) -> str | None:
    """A random estimator is random selection whatever the order; otherwise the order names the strategy."""
    if row["ds_estimator"] == "random":
        return STRATEGIES["random"]
    return STRATEGIES.get(row["ds_order"])


def _selection_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """DS-only KD runs with a strategy and a PCT; scored strategies held at one estimator (influence)."""
    ds = rows[(rows["method"] == KD) & rows["ds"] & ~rows["lr"] & rows["ds_fraction"].notna()]
    ds = ds.assign(strategy=[_strategy(r) for _, r in ds.iterrows()] if len(ds) else [])
    ds = ds[ds["strategy"].notna()]
    scored = ds[ds["strategy"] != STRATEGIES["random"]]
    held = _held_settings(scored, {"ds_estimator": PAPER_DS["ds_estimator"]})
    keep = (ds["strategy"] == STRATEGIES["random"]) | _matching(ds, held)
    return ds[keep].assign(pct=[round(f * 100, 6) for f in ds.loc[keep, "ds_fraction"]])


def _selection_section(rows: pd.DataFrame, column: str) -> _Section:
    baseline = rows[(rows["method"] == KD) & ~rows["ds"] & ~rows["lr"]]
    runs = _selection_runs(rows)
    strategies = [s for s in STRATEGIES.values() if s in set(runs["strategy"])]
    base = _stats(baseline, column)
    tidy = [_stat_record(pct=math.nan, strategy="Baseline")(base)]
    table = []
    for pct in sorted(set(runs["pct"])):
        for i, strategy in enumerate(strategies):
            cell = _stats(runs[(runs["pct"] == pct) & (runs["strategy"] == strategy)], column)
            tidy.append(_stat_record(pct=pct, strategy=strategy)(cell))
            table.append([_num(pct) if i == 0 else "", strategy, format_cell(*cell)])
    body = f"Baseline Acc: {_percent(format_cell(*base))} (vanilla KD, no DS/LR)\n\n"
    body += _markdown(["PCT(%)", "Strategy", "Acc(%)"], table) if table else "No Data Selection runs."
    body += (
        "\n\nPCT(%): share of training samples sent to the teacher (D_t). Random: random D_t; "
        "Lowest / Highest: the samples with the lowest / highest data-value scores."
    )
    used = len(baseline) + len(runs)
    return _Section(body=body, tidy=_tidy(tidy, ["pct", "strategy", "mean", "std", "n"]), used=used)


def selection_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table II: Acc(%) per D_t percentage × selection strategy (Random, Lowest, Highest), with vanilla KD's
    accuracy as the "Baseline Acc" line, so influence-based selection can be judged against random."""
    return _render(frame, metric, "Table II: Data Selection, influence vs random", _selection_section,
                   ["pct", "strategy"])


# ---------------------------------------------------------------------------------------------------
# Table III: DS / LR ablation per method
# ---------------------------------------------------------------------------------------------------


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
    distill = rows[rows["method"].notna() & (rows["method"] != SCRATCH)]
    ds_held = _held_settings(distill[distill["ds"]], PAPER_DS)
    lr_held = _held_settings(distill[distill["lr"]], PAPER_LR)
    keep = (~distill["ds"] | _matching(distill, ds_held)) & (~distill["lr"] | _matching(distill, lr_held))
    return distill[keep]


def _delta(mean: float, base: tuple[float, float, int]) -> float:
    return mean - base[0] if base[2] and not math.isnan(mean) else math.nan


def _ablation_section(rows: pd.DataFrame, column: str) -> _Section:
    distill = _ablation_runs(rows)
    table, tidy, used = [], [], 0
    for method in _ablation_methods(distill):
        base: tuple[float, float, int] | None = None
        first = True
        for run_method, ds, lr, lr_cell in _block_rows(method):
            cell_rows = distill[(distill["method"] == run_method) & (distill["ds"] == ds) & (distill["lr"] == lr)]
            stats = _stats(cell_rows, column)
            if base is None:  # the block's first row (×/×, KL for KD) is the Δ reference, present or not
                base = stats
                delta = math.nan
            else:
                delta = _delta(stats[0], base)
            if stats[2] == 0:
                continue  # missing combinations are absent rows
            used += stats[2]
            block = PAPER_NAMES.get(method, method)
            tidy.append({"block": block, "method": run_method, "ds": ds, "lr": lr, "mean": stats[0], "std": stats[1],
                         "n": stats[2], "delta": delta})
            table.append([block if first else "", _mark(ds), lr_cell, format_cell(*stats),
                          DASH if math.isnan(delta) else f"{delta:+.2f}"])
            first = False
    body = _markdown(["Method", "DS", "LR", "Acc (%)", "Δ"], table) if table else "No distillation runs."
    body += "\n\nΔ: difference of mean Acc to the block's × × row (KD: the KL one); \"–\" where that row has no runs."
    columns = ["block", "method", "ds", "lr", "mean", "std", "n", "delta"]
    return _Section(body=body, tidy=_tidy(tidy, columns), used=used)


def ablation_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table III: each method with and without DS and LR, and Δ against its own ×/× run, so the gain of
    each part is read off directly; KD's block also shows KD with an MSE logit loss."""
    return _render(frame, metric, "Table III: with or without DS and LR", _ablation_section,
                   ["block", "method", "ds", "lr"], ("mean", "std", "n", "delta"))


# ---------------------------------------------------------------------------------------------------
# Tables VIII and IX: λ and η sweeps of KD + DS + LR, against DS-only KD
# ---------------------------------------------------------------------------------------------------


def _sweep_runs(rows: pd.DataFrame, lr_preferred: dict[str, object]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(KD + DS + LR runs at one DS setting and the held LR settings, DS-only KD at that DS setting).

    The baseline must use the same DS setting as the sweep, or Δ-by-eye against it would mix two changes.
    """
    kd = rows[rows["method"] == KD]
    runs, baseline = kd[kd["ds"] & kd["lr"]], kd[kd["ds"] & ~kd["lr"]]
    ds_held = _held_settings(runs if len(runs) else baseline, PAPER_DS)
    runs, baseline = runs[_matching(runs, ds_held)], baseline[_matching(baseline, ds_held)]
    return runs[_matching(runs, _held_settings(runs, lr_preferred))], baseline


def _baseline_line(baseline: tuple[float, float, int]) -> str:
    return f"Baseline: {_percent(format_cell(*baseline))} (KD with DS only)"


def _sweep_row(runs: pd.DataFrame, swept: str, column: str) -> list[tuple[object, tuple[float, float, int]]]:
    """(value, stats) per distinct value of ``swept``, in ascending order."""
    values = sorted({v for v in runs[swept] if not _missing(v)})
    return [(v, _stats(runs[_eq(runs[swept], v)], column)) for v in values]


def _lambda_section(rows: pd.DataFrame, column: str) -> _Section:
    runs, baseline = _sweep_runs(rows, {"lr_name": "paper", "lr_eta": PAPER_LR["lr_eta"]})
    base = _stats(baseline, column)
    tidy = [_stat_record(parameter="baseline", value=math.nan)(base)]
    blocks, used = [_baseline_line(base)], set(baseline.index)
    for name, swept, fixed in (("λ1", "lr_lambda1", "lr_lambda2"), ("λ2", "lr_lambda2", "lr_lambda1")):
        sweep = runs[_eq(runs[fixed], 1.0)]
        cells = _sweep_row(sweep, swept, column)
        used |= set(sweep.index)
        tidy += [_stat_record(parameter=swept.removeprefix("lr_"), value=v)(s) for v, s in cells]
        if cells:
            acc = ["Acc(%)", *(format_cell(*s) for _, s in cells)]
            blocks.append(_markdown([name, *(_num(v) for v, _ in cells)], [acc]))
    if len(blocks) == 1:
        blocks.append("No λ sweep runs (KD with DS and LR).")
    blocks.append("When one of λ1, λ2 changes, the other is held at 1; the λ1 = λ2 = 1 run appears in both rows.")
    return _Section(body="\n\n".join(blocks), tidy=_tidy(tidy, ["parameter", "value", "mean", "std", "n"]),
                    used=len(used))


def lambda_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table VIII: Acc(%) of KD + DS + LR for each λ1 (λ2 = 1) and each λ2 (λ1 = 1), against DS-only KD,
    to show how much each half of Eq. (11) (teacher-right vs teacher-wrong samples) matters."""
    return _render(frame, metric, "Table VIII: coefficients λ1 and λ2", _lambda_section, ["parameter", "value"])


def _eta_order(values: Iterable[object]) -> list[object]:
    """Fixed (numeric) η ascending, then the learnable rules in the paper's order, then anything else."""
    values = {v for v in values if not _missing(v)}
    numbers = sorted(v for v in values if isinstance(v, float | int))
    names = [v for v in LEARNABLE_ETA if v in values]
    return numbers + names + sorted(str(v) for v in values if not isinstance(v, float | int) and v not in names)


def _eta_header(values: list[object]) -> tuple[list[str], list[str]]:
    """The paper's two-level header: a Fixed / Learnable group row above the η values."""
    groups, previous = [], None
    for v in values:
        group = "Fixed" if isinstance(v, float | int) else "Learnable"
        groups.append(group if group != previous else "")
        previous = group
    return ["η", *groups], ["", *(_num(v) for v in values)]


def _eta_section(rows: pd.DataFrame, column: str) -> _Section:
    lr_preferred = {k: PAPER_LR[k] for k in ("lr_name", "lr_lambda1", "lr_lambda2")}
    runs, baseline = _sweep_runs(rows, lr_preferred)
    base = _stats(baseline, column)
    values = _eta_order(runs["lr_eta"])
    cells = [(v, _stats(runs[_eq(runs["lr_eta"], v)], column)) for v in values]
    kind = {True: "fixed", False: "learnable"}
    tidy = [_stat_record(kind="baseline", eta=None)(base)]
    tidy += [_stat_record(kind=kind[isinstance(v, float | int)], eta=v)(s) for v, s in cells]
    blocks = [_baseline_line(base)]
    if cells:
        header, value_row = _eta_header(values)
        blocks.append(_markdown(header, [value_row, ["Acc(%)", *(format_cell(*s) for _, s in cells)]]))
    else:
        blocks.append("No η runs (KD with DS and LR).")
    blocks.append("Learnable: ptmax / pttar set η per sample to the teacher's probability of its predicted class / "
                  "of the target class. λ1 = λ2 = 1.")
    used = len(baseline) + sum(s[2] for _, s in cells)
    return _Section(body="\n\n".join(blocks), tidy=_tidy(tidy, ["kind", "eta", "mean", "std", "n"]), used=used)


def eta_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table IX: Acc(%) of KD + DS + LR for each fixed η and each learnable (per-sample) η rule, against
    DS-only KD, to show how sensitive Label Revision is to how much of the teacher it keeps."""
    return _render(frame, metric, "Table IX: settings of η", _eta_section, ["kind", "eta"])


# ---------------------------------------------------------------------------------------------------
# Layout registry and detection
# ---------------------------------------------------------------------------------------------------

LAYOUTS: dict[str, Callable[..., Table]] = {
    "selection": selection_table,
    "ablation": ablation_table,
    "lambda": lambda_table,
    "eta": eta_table,
}


def _configs(rows: pd.DataFrame, columns: Iterable[str]) -> set[tuple[object, ...]]:
    return {tuple(None if _missing(v) else v for v in values) for values in rows[list(columns)].itertuples(index=False)}


def _is_selection_study(kd: pd.DataFrame) -> bool:
    ds = kd[kd["ds"] & ~kd["lr"]]
    combos = {(row["ds_fraction"], _strategy(row)) for _, row in ds.iterrows()}
    return len(combos) >= 2


def _is_ablation(data: pd.DataFrame) -> bool:
    distill = data[data["teacher"].notna() & data["method"].notna() & (data["method"] != SCRATCH)]
    if len(_pairs(data)) != 1:
        return False
    if len(_configs(distill[distill["ds"]], DS_COLUMNS)) > 1 or len(_configs(distill[distill["lr"]], LR_COLUMNS)) > 1:
        return False
    for _, runs in distill.groupby("method"):
        flags = set(zip(runs["ds"], runs["lr"], strict=True))
        if (False, False) in flags and ((True, False) in flags or (False, True) in flags):
            return True
    return False


def detect_layout(frame: pd.DataFrame) -> str:
    """Which paper table ``frame`` reproduces, for suites that do not name a layout.

    Rules, first match wins (see the module docstring for why in this order): "lambda" when KD + DS + LR
    runs vary (λ1, λ2); "eta" when they vary η; "selection" when DS-only KD runs vary (fraction,
    strategy); "ablation" for one pair where a method has a plain run and a DS-only or LR-only run at a
    single DS/LR setting; otherwise "method_pair".
    """
    if frame.empty:
        return "method_pair"
    data = _prepare(frame)
    kd = data[data["method"] == KD]
    swept = kd[kd["ds"] & kd["lr"]]
    if len(_configs(swept, ("lr_lambda1", "lr_lambda2"))) >= 2:
        return "lambda"
    if len(_configs(swept, ("lr_eta",))) >= 2:
        return "eta"
    if _is_selection_study(kd):
        return "selection"
    if _is_ablation(data):
        return "ablation"
    return "method_pair"
