"""The leaderboard: every published run, one row per method variant × teacher → student pair, per dataset,
and a summary per method variant; derived from records only.

A *variant* is a method with its resolved parameters and its Data Selection and Label Revision settings
(a run's key without pair, seed and recipe). A *benchmark* is a dataset with its parameters and a
training recipe: numbers are compared only within one benchmark (15 epochs on digits and 240 on
CIFAR-100 never share a row or a rank). Within a benchmark and pair, "KD" is plain Hinton KD (no DS, no
LR; with several KD parameter sets, the one with the most seeds) and "student" the student trained from
scratch; Δs against them carry Welch's t-test over seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.plan.spec import canonical_json, content_key
from kdbench.store import RunRecord
from kdbench.tables.cells import SIGNIFICANT_NOTE, delta, format_cell, format_delta, markdown, mean_std, welch_p
from kdbench.tables.frame import record_row
from kdbench.tables.paper_common import KD
from kdbench.tables.reference import SIGNATURE, load_reference, run_signatures

#: The columns of ``<dataset>.csv``, documented in the README.
ROW_COLUMNS = [
    "dataset", "benchmark", "method", "label", "variant", "params", "teacher", "student", "seeds", "n", "metric",
    "mean", "std", "teacher_top1", "student_mean", "delta_vs_kd", "p_vs_kd", "delta_vs_student", "p_vs_student",
    "paper", "delta_vs_paper", "gpu_hours", "cpu_hours", "images_per_s", "devices", "suites", "revisions",
]  # fmt: skip
SUMMARY_COLUMNS = ["dataset", "benchmark", "method", "label", "variant", "params", "pairs", "mean_rank",
                   "mean_delta_vs_kd", "runs"]


@dataclass(frozen=True)
class Board:
    dataset: str
    rows: pd.DataFrame  # ROW_COLUMNS
    summary: pd.DataFrame  # SUMMARY_COLUMNS
    runs: pd.DataFrame  # one row per run (results_frame columns): for the per-pair figures


def benchmark_of(record: RunRecord) -> str:
    """The dataset with its parameters and the recipe (less the per-student lr rule), in words."""
    spec = record.spec
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.dataset.params.items()) if v not in (None, 0, 0.0))
    noise = spec.dataset.label_noise if spec.dataset.noisy else None
    if noise is not None:  # runs on wrong labels are another benchmark, never averaged with clean ones
        params += f"{', ' if params else ''}{noise.rate:g} {noise.kind} label noise (seed {noise.seed})"
    recipe = spec.recipe
    milestones = ",".join(str(m) for m in recipe.milestones) or "none"
    return (f"{spec.dataset.name}({params}) · {recipe.epochs} epochs, batch {recipe.batch_size}, "
            f"milestones {milestones}, wd {recipe.weight_decay:g}" + ("" if recipe.augment else ", no augmentation"))


def variant_of(record: RunRecord) -> tuple[str, str, str]:
    """(label, variant id, params as JSON) of a run: method, its parameters, DS and LR settings."""
    spec = record.spec
    params = {"method": spec.method.params,
              "selection": spec.selection.identity() if spec.selection else None,
              "revision": spec.revision.identity() if spec.revision else None}
    label = spec.method.name + ("+LR" if spec.revision else "") + ("+DS" if spec.selection else "")
    identity = {"method": spec.method.identity(), **{k: v for k, v in params.items() if k != "method"}}
    return label, content_key(identity, 8), canonical_json(params)


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run: the results-frame row plus what the leaderboard groups and reports by."""
    rows = []
    for record in records:
        label, variant, params = variant_of(record)
        env = record.environment
        rows.append({
            **record_row(record), "benchmark": benchmark_of(record), "variant_label": label, "variant": variant,
            "params": params, "teacher_key": record.spec.teacher.key if record.spec.teacher else "",
            "cuda": env.device.startswith("cuda"), "device_name": env.device_name or env.gpu or env.device,
            "revision": (record.git_revision or "unknown")[:12],
        })
    runs: pd.DataFrame = pd.DataFrame(rows)
    return runs


def _joined(values: Iterable[object]) -> str:
    return ";".join(sorted({str(v) for v in values if v is not None and v == v}))


def _kd_variant(candidates: pd.DataFrame) -> pd.DataFrame:
    """Plain KD among ``candidates`` (runs of one benchmark and pair): the parameter set with most seeds."""
    plain: pd.DataFrame = candidates[(candidates["method"] == KD) & ~candidates["ds"] & ~candidates["lr"]]
    if plain.empty:
        return plain
    counts = plain.groupby("variant")["seed"].nunique()
    best = sorted(counts.index, key=lambda v: (-counts[v], v))[0]
    kd: pd.DataFrame = plain[plain["variant"] == best]
    return kd


def board_rows(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """ROW_COLUMNS for the runs of one dataset."""
    column = f"{metric}_top1"
    reference = load_reference()
    signed = run_signatures(runs)
    out = []
    for (benchmark, variant, teacher_key, student), group in runs.groupby(
        ["benchmark", "variant", "teacher_key", "student"], sort=False
    ):
        first = group.iloc[0]
        same = runs[(runs["benchmark"] == benchmark) & (runs["teacher_key"] == teacher_key)
                    & (runs["student"] == student)]
        scratch = runs[(runs["benchmark"] == benchmark) & (runs["teacher_key"] == "")
                       & (runs["method"] == SCRATCH_METHOD) & (runs["student"] == student)]
        stats = mean_std(group[column])
        distilled = bool(teacher_key) and first["method"] != SCRATCH_METHOD
        kd = mean_std(_kd_variant(same)[column]) if distilled else (math.nan, math.nan, 0)
        student_stats = mean_std(scratch[column])
        paper = _paper_value(reference, signed.loc[group.index[0]], first)
        out.append({
            "dataset": first["dataset"], "benchmark": benchmark, "method": first["method"],
            "label": first["variant_label"], "variant": variant, "params": first["params"],
            "teacher": first["teacher"] if teacher_key else "", "student": student,
            "seeds": ";".join(str(s) for s in sorted(group["seed"].unique())), "n": stats[2],
            "metric": f"{metric} top-1 (%)", "mean": stats[0], "std": stats[1],
            "teacher_top1": group["teacher_top1"].dropna().iloc[0] if group["teacher_top1"].notna().any() else math.nan,
            "student_mean": student_stats[0],
            "delta_vs_kd": delta(stats, kd), "p_vs_kd": welch_p(stats, kd),
            "delta_vs_student": delta(stats, student_stats) if distilled else math.nan,
            "p_vs_student": welch_p(stats, student_stats) if distilled else math.nan,
            "paper": paper, "delta_vs_paper": stats[0] - paper if not math.isnan(paper) else math.nan,
            "gpu_hours": group.loc[group["cuda"], "wall_time_s"].sum() / 3600.0,
            "cpu_hours": group.loc[~group["cuda"], "wall_time_s"].sum() / 3600.0,
            "images_per_s": group["train_images_per_s"].mean(),
            "devices": _joined(group["device_name"]), "suites": _joined(group["suite"]),
            "revisions": _joined(group["revision"]),
        })
    rows = pd.DataFrame(out, columns=ROW_COLUMNS)
    keys = ["benchmark", "student", "teacher", "_scratch", "mean"]
    order = rows.assign(_scratch=rows["teacher"] == "").sort_values(keys, ascending=[True] * 4 + [False], kind="stable")
    board: pd.DataFrame = order[ROW_COLUMNS].reset_index(drop=True)
    return board


def _paper_value(reference: pd.DataFrame, signed: pd.Series, run: pd.Series) -> float:
    """The published number for this run's signature on its pair (students from scratch: by student)."""
    match = reference[(reference["dataset"] == run["dataset"]) & (reference["student"] == run["student"])]
    if run["method"] != SCRATCH_METHOD:
        match = match[match["teacher"] == run["teacher"]]
    for key in SIGNATURE:
        match = match[match[key] == signed[key]]
    return float(match["top1"].iloc[0]) if len(match) else math.nan


def board_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant of a benchmark: mean rank over the pairs it covers (1 = best), mean Δ vs KD, pairs."""
    distilled = rows[rows["teacher"] != ""].copy()
    if distilled.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=SUMMARY_COLUMNS)
        return empty
    distilled["rank"] = distilled.groupby(["benchmark", "teacher", "student"])["mean"].rank(ascending=False)
    summary = distilled.groupby(["dataset", "benchmark", "method", "label", "variant", "params"], sort=False).agg(
        pairs=("student", "size"), mean_rank=("rank", "mean"), mean_delta_vs_kd=("delta_vs_kd", "mean"),
        runs=("n", "sum"),
    ).reset_index()
    summary = summary.sort_values(["benchmark", "mean_rank", "label"], kind="stable")
    ordered: pd.DataFrame = summary[SUMMARY_COLUMNS].reset_index(drop=True)
    return ordered


def boards(records: Iterable[RunRecord], metric: str = "best") -> list[Board]:
    """One board per dataset, datasets in name order."""
    runs = runs_frame(records)
    if runs.empty:
        return []
    out = []
    for dataset, group in runs.groupby("dataset", sort=True):
        rows = board_rows(group.reset_index(drop=True), metric)
        out.append(Board(str(dataset), rows, board_summary(rows), group.reset_index(drop=True)))
    return out


def _num(value: float, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows as a reader wants them: cells formatted, Δs marked "*" when significant."""
    r = rows
    shown: pd.DataFrame = pd.DataFrame({
        "method": r["label"], "teacher": r["teacher"].replace("", "–"), "student": r["student"],
        "top-1": [format_cell(m, s, int(n)) for m, s, n in zip(r["mean"], r["std"], r["n"], strict=True)],
        "seeds": r["seeds"], "teacher top-1": r["teacher_top1"].map(_num),
        "student top-1": r["student_mean"].map(_num),
        "Δ vs KD": [format_delta(d, p) for d, p in zip(r["delta_vs_kd"], r["p_vs_kd"], strict=True)],
        "Δ vs student": [format_delta(d, p) for d, p in zip(r["delta_vs_student"], r["p_vs_student"], strict=True)],
        "paper": r["paper"].map(_num), "Δ vs paper": r["delta_vs_paper"].map(lambda v: format_delta(v)),
        "GPU-h": r["gpu_hours"].map(lambda v: _num(v, 3)), "CPU-h": r["cpu_hours"].map(lambda v: _num(v, 3)),
        "img/s": r["images_per_s"].map(lambda v: _num(v, 0)), "params": r["params"].map(_short_params),
        "suites": r["suites"], "revisions": r["revisions"],
    })
    return shown


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    shown: pd.DataFrame = pd.DataFrame({
        "method": s["label"], "pairs": s["pairs"], "mean rank": s["mean_rank"].map(_num),
        "mean Δ vs KD": s["mean_delta_vs_kd"].map(lambda v: format_delta(v)), "runs": s["runs"],
        "params": s["params"].map(_short_params),
    })
    return shown


#: The unrounded record column behind each formatted column of ``display_rows`` and ``display_summary``: the
#: leaderboard page sorts by these, so cells that print alike ("74.12") still sort by what they are.
ROW_SORT_KEYS = {"top-1": "mean", "teacher top-1": "teacher_top1", "student top-1": "student_mean",
                 "Δ vs KD": "delta_vs_kd", "Δ vs student": "delta_vs_student", "paper": "paper",
                 "Δ vs paper": "delta_vs_paper", "GPU-h": "gpu_hours", "CPU-h": "cpu_hours", "img/s": "images_per_s"}
SUMMARY_SORT_KEYS = {"mean rank": "mean_rank", "mean Δ vs KD": "mean_delta_vs_kd"}


def sort_keys(frame: pd.DataFrame, columns: dict[str, str]) -> dict[Hashable, list[float]]:
    """Displayed column → its unrounded values, row by row (NaN where the cell shows "–")."""
    return {shown: frame[raw].astype(float).tolist() for shown, raw in columns.items()}


def _short_params(params: str) -> str:
    """The method's parameters and the DS/LR settings, compactly: "T=4, gamma=0.1 · DS influence 80% highest"."""
    data = json.loads(params)
    parts = [", ".join(f"{k}={v}" for k, v in sorted(data["method"].items()))]
    if data["selection"]:
        sel = data["selection"]
        name = sel["estimator"]["name"] if sel["estimator"] else "random"
        parts.append(f"DS {name} {sel['fraction'] * 100:g}% {sel['order']}")
    if data["revision"]:
        rev = data["revision"]
        settings = ", ".join(f"{k}={v}" for k, v in sorted(rev["params"].items()))
        where = "inside the method" if rev.get("in_method") else f"λ1={rev['lambda1']:g} λ2={rev['lambda2']:g}"
        parts.append(f"LR {rev['name']}({settings}) {where}")
    return " · ".join(p for p in parts if p)


NOTE = ("Top-1: mean ± std over seeds. Δ vs KD: against plain KD on the same pair and benchmark; Δ vs student: "
        f"against the student from scratch. {SIGNIFICANT_NOTE} Paper: the published number for the same method and "
        "settings (docs/methods.md §9). Mean rank: over the pairs a method covers, 1 = best among the pair's "
        "distillation methods.")


def board_markdown(board: Board) -> str:
    """The dataset's leaderboard, one section per benchmark: the method summary, then method × pair."""
    parts = [f"## Leaderboard: {board.dataset}\n"]
    for benchmark in board.rows["benchmark"].unique():
        summary = display_summary(board.summary[board.summary["benchmark"] == benchmark])
        rows = display_rows(board.rows[board.rows["benchmark"] == benchmark])
        parts += [f"### {benchmark}\n", markdown(list(summary.columns), summary.astype(str).values.tolist()) + "\n",
                  markdown(list(rows.columns), rows.astype(str).values.tolist()) + "\n"]
    return "\n".join(parts) + f"\n{NOTE}\n"
