"""The leaderboard: every published run, one row per method variant × teacher → student pair, per dataset,
and a summary per method variant; derived from records only.

A *variant* is a method with its resolved parameters and its Data Selection and Label Revision settings
(a run's key without pair, seed and recipe; a setting that follows the run's seed, such as a random DS
subset, counts as "the seed", so the seeds of one variant share its row). A *benchmark* is a dataset with
its parameters and a training recipe: numbers are compared only within one benchmark (15 epochs on digits
and 240 on CIFAR-100 never share a row or a rank). Within a benchmark and pair, "KD" is plain Hinton KD (no
DS, no LR; with several KD parameter sets, the one with the most seeds) and "student" the student trained
from scratch; Δs against them carry Welch's t-test over seeds.

Why whole columns: a grown publication is 10,000 records and thousands of rows, so the board is one
``groupby`` and a few merges (no per-row frame indexing), and the tests check it against a plain
computation of the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.contracts.names import default_label
from kdbench.plan.spec import canonical_json, content_key
from kdbench.store import RunRecord
from kdbench.tables.cells import DASH, SIGNIFICANCE, SIGNIFICANT_NOTE, format_cell, markdown
from kdbench.tables.frame import record_row
from kdbench.tables.leaderboard_stats import TIE_NOTE, confidence_interval, paired_p, tied_ranks, welch_p
from kdbench.tables.paper_common import KD
from kdbench.tables.reference import SIGNATURE, load_reference, run_signatures

#: The columns of ``<dataset>.csv``, documented in the README.
ROW_COLUMNS = [
    "dataset", "benchmark", "method", "label", "variant", "params", "teacher", "student", "seeds", "n", "metric",
    "mean", "std", "teacher_top1", "student_mean", "delta_vs_kd", "p_vs_kd", "delta_vs_student", "p_vs_student",
    "paper", "delta_vs_paper", "gpu_hours", "cpu_hours", "images_per_s", "devices", "suites", "revisions",
    "ci95_low", "ci95_high", "rank", "tied", "p_vs_best", "wall_time_s", "records", "finished",
]  # fmt: skip
SUMMARY_COLUMNS = ["dataset", "benchmark", "method", "label", "variant", "params", "pairs", "mean_rank",
                   "mean_delta_vs_kd", "runs", "rank", "tied", "p_vs_best"]
#: What one row groups: the runs of a variant on a pair of a benchmark (over seeds).
ROW_KEY = ["benchmark", "variant", "teacher_key", "student"]
PAIR_KEY = ["benchmark", "teacher_key", "student"]
SUMMARY_KEY = ["dataset", "benchmark", "method", "label", "variant", "params"]


@dataclass(frozen=True)
class Board:
    dataset: str
    rows: pd.DataFrame  # ROW_COLUMNS, indexed by row id
    summary: pd.DataFrame  # SUMMARY_COLUMNS
    runs: pd.DataFrame  # one row per run (results_frame columns and more); ``row``: the id of its row in ``rows``


def benchmark_of(record: RunRecord) -> str:
    """The dataset with its parameters, the recipe (less the per-student lr rule) and GPU or CPU, in words."""
    spec = record.spec
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.dataset.params.items()) if v not in (None, 0, 0.0))
    noise = spec.dataset.label_noise if spec.dataset.noisy else None
    if noise is not None:  # runs on wrong labels are another benchmark, never averaged with clean ones
        params += f"{', ' if params else ''}{noise.rate:g} {noise.kind} label noise (seed {noise.seed})"
    recipe = spec.recipe
    milestones = ",".join(str(m) for m in recipe.milestones) or "none"
    return (f"{spec.dataset.name}({params}) · {recipe.epochs} epochs, batch {recipe.batch_size}, "
            f"milestones {milestones}, wd {recipe.weight_decay:g}" + ("" if recipe.augment else ", no augmentation")
            + f" · {record.environment.device_class}")  # GPU and CPU kernels give one spec other numbers


SEED = "<the run's seed>"  # what a setting that follows the run's seed reads as in a variant's identity


def _selection_identity(record: RunRecord) -> dict[str, object] | None:
    """DS settings with what follows the run's seed (a random subset, an estimator left unseeded) as :data:`SEED`."""
    selection = record.spec.selection
    if selection is None:
        return None
    identity = selection.identity()
    if selection.order == "random":
        identity["seed"] = SEED if selection.seed == record.seed else selection.seed
    estimator = identity.get("estimator")
    if isinstance(estimator, dict) and estimator["params"].get("seed", None) == record.seed:
        identity["estimator"] = {**estimator, "params": {**estimator["params"], "seed": SEED}}
    return identity


def variant_of(record: RunRecord) -> tuple[str, str, str]:
    """(label, variant id, params as JSON) of a run: method, its parameters, DS and LR settings."""
    spec = record.spec
    params = {"method": spec.method.params, "selection": _selection_identity(record),
              "revision": spec.revision.identity() if spec.revision else None}
    label = default_label(spec.method.name, spec.revision is not None, spec.selection.mode if spec.selection else None)
    identity = {"method": spec.method.identity(), **{k: v for k, v in params.items() if k != "method"}}
    return label, content_key(identity, 8), canonical_json(params)


def record_file(record: RunRecord) -> str:
    """Where the record is under the results folder: ``raw/<suite>/<key>/record.json`` (the store's layout)."""
    return f"raw/{record.spec.suite}/{record.key}/record.json"


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run: the results-frame row plus what the leaderboard groups, reports and links by."""
    rows = []
    for record in records:
        label, variant, params = variant_of(record)
        env = record.environment
        rows.append({
            **record_row(record), "benchmark": benchmark_of(record), "variant_label": label, "variant": variant,
            "params": params, "teacher_key": record.teacher_key or "",
            "cuda": env.device.startswith("cuda"), "device_name": env.device_name or env.gpu or env.device,
            "revision": (record.git_revision or "unknown")[:12],
            "finished": _day(record.finished_at), "file": record_file(record), "spec": record.spec,
        })
    runs: pd.DataFrame = pd.DataFrame(rows)
    return runs


def _joined_per_row(data: pd.DataFrame, column: str, unique: bool = True) -> pd.Series:
    """Per row id: the row's runs' values of ``column`` as text joined by ";", sorted and each once (``unique``) or
    in ``data``'s order; missing values left out. A plain loop: a Python function per pandas group costs more."""
    values: dict[int, list[Any]] = {}
    for row, value in zip(data["row"], data[column], strict=True):
        if value is not None and value == value:
            values.setdefault(int(row), []).append(value)
    joined = {row: ";".join(str(v) for v in (sorted(set(vs)) if unique else vs)) for row, vs in values.items()}
    return pd.Series(joined, dtype=object)


def _stats(frame: pd.DataFrame, keys: list[str], value: str, prefix: str) -> pd.DataFrame:
    """Mean, sample std (0 for one run, as ``cells.mean_std``) and count of ``value`` per ``keys``."""
    grouped = frame.groupby(keys, sort=False)[value]
    stats = pd.DataFrame({f"{prefix}mean": grouped.mean(), f"{prefix}std": grouped.std(ddof=1),
                          f"{prefix}n": grouped.count()})
    stats.loc[stats[f"{prefix}n"] == 1, f"{prefix}std"] = 0.0
    return stats.reset_index()


def _kd_reference(runs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark and pair: plain KD's mean, std, n (the parameter set with most seeds; then by variant id)."""
    plain = runs[(runs["method"] == KD) & ~runs["ds"].astype(bool) & ~runs["lr"].astype(bool)
                 & (runs["teacher_key"] != "")]
    counts = plain.groupby([*PAIR_KEY, "variant"], sort=False)["seed"].nunique().rename("seeds").reset_index()
    counts = counts.sort_values([*PAIR_KEY, "seeds", "variant"], ascending=[True, True, True, False, True])
    chosen = counts.drop_duplicates(PAIR_KEY)[ROW_KEY]
    kd = rows.merge(chosen, on=ROW_KEY)[[*PAIR_KEY, "mean", "std", "n"]]
    return kd.rename(columns={"mean": "kd_mean", "std": "kd_std", "n": "kd_n"})


def _paper_values(runs: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """The published number for each row's signature on its pair (students from scratch: by student), on clean
    labels only (the published numbers are)."""
    first = run_signatures(runs.drop_duplicates("row"))
    first = first[first["noise_rate"].fillna(0.0) == 0.0]
    reference = load_reference()
    scratch = first["method"] == SCRATCH_METHOD
    on = ["dataset", "student", *SIGNATURE]
    found = pd.concat([
        first[~scratch].merge(reference.drop_duplicates([*on, "teacher"])[[*on, "teacher", "top1"]],
                              on=[*on, "teacher"]),
        first[scratch].merge(reference.drop_duplicates(on)[[*on, "top1"]], on=on),
    ])
    paper: pd.Series = found.set_index("row")["top1"].astype(float).reindex(rows.index)
    return paper


def board_rows(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """ROW_COLUMNS for the runs of one dataset, indexed by row id (``runs["row"]`` after :func:`number_rows`)."""
    column = f"{metric}_top1"
    data = runs.assign(
        _value=runs[column].astype(float),
        _gpu_s=runs["wall_time_s"].where(runs["cuda"].astype(bool), 0.0),
        _cpu_s=runs["wall_time_s"].where(~runs["cuda"].astype(bool), 0.0),
    ).sort_values("seed", kind="stable")
    grouped = data.groupby("row", sort=True)
    rows = grouped[[*ROW_KEY, "dataset", "method", "variant_label", "params", "teacher", "noise_rate"]].first()
    stats = _stats(data, ["row"], "_value", "").set_index("row")
    rows = rows.join(stats)
    rows["teacher_top1"] = grouped["teacher_top1"].first()
    rows["teacher"] = rows["teacher"].where(rows["teacher_key"] != "", "").fillna("")
    rows["seeds"] = _joined_per_row(data, "seed")  # sorted as numbers
    rows["gpu_hours"] = grouped["_gpu_s"].sum() / 3600.0
    rows["cpu_hours"] = grouped["_cpu_s"].sum() / 3600.0
    rows["images_per_s"] = grouped["train_images_per_s"].mean()
    rows["wall_time_s"] = grouped["wall_time_s"].mean()
    for column, source in (("devices", "device_name"), ("suites", "suite"), ("revisions", "revision"),
                           ("finished", "finished")):
        rows[column] = _joined_per_row(data, source)  # sorted
    rows["records"] = _joined_per_row(data, "file", unique=False)  # in seed order
    for column in ("seeds", "devices", "suites", "revisions", "finished", "records"):
        rows[column] = rows[column].fillna("")

    scratch_runs = data[(data["teacher_key"] == "") & (data["method"] == SCRATCH_METHOD)]
    scratch = _stats(scratch_runs, ["benchmark", "student"], "_value", "scratch_")
    rows = (rows.reset_index().merge(_kd_reference(data, rows), on=PAIR_KEY, how="left")
            .merge(scratch, on=["benchmark", "student"], how="left").set_index("row"))
    distilled = (rows["teacher_key"] != "") & (rows["method"] != SCRATCH_METHOD)
    rows.loc[~distilled, ["kd_mean", "kd_std", "kd_n"]] = np.nan
    rows["student_mean"] = rows["scratch_mean"]
    rows["delta_vs_kd"] = rows["mean"] - rows["kd_mean"]
    rows["p_vs_kd"] = welch_p(rows["mean"], rows["std"], rows["n"], rows["kd_mean"], rows["kd_std"], rows["kd_n"])
    rows["delta_vs_student"] = (rows["mean"] - rows["scratch_mean"]).where(distilled)
    rows["p_vs_student"] = pd.Series(welch_p(rows["mean"], rows["std"], rows["n"], rows["scratch_mean"],
                                             rows["scratch_std"], rows["scratch_n"]), index=rows.index).where(distilled)
    rows["paper"] = _paper_values(data, rows)
    rows["delta_vs_paper"] = rows["mean"] - rows["paper"]
    rows["ci95_low"], rows["ci95_high"] = confidence_interval(rows["mean"], rows["std"], rows["n"])
    ranks = tied_ranks(rows[distilled], PAIR_KEY)
    rows[["rank", "p_vs_best"]] = np.nan
    rows["tied"] = False
    rows.loc[ranks.index, ["rank", "tied", "p_vs_best"]] = ranks
    rows["tied"] = rows["tied"].astype(bool)
    rows["metric"] = f"{metric} top-1 (%)"
    rows = rows.rename(columns={"variant_label": "label"})
    keys = ["benchmark", "student", "teacher", "_scratch", "mean"]
    order = rows.assign(_scratch=rows["teacher"] == "").sort_values(keys, ascending=[True] * 4 + [False], kind="stable")
    board: pd.DataFrame = order[ROW_COLUMNS]
    return board


def number_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with ``row``: the id of the board row each belongs to (its variant on its pair and benchmark)."""
    numbered: pd.DataFrame = runs.assign(row=runs.groupby(ROW_KEY, sort=False).ngroup())
    return numbered


def board_summary(rows: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant of a benchmark: mean rank over the pairs it covers (1 = best, ties shared), mean Δ vs KD, pairs,
    and the variant's own rank among the benchmark's variants, with ties (see :data:`SUMMARY_NOTE`)."""
    keyed = rows.join(runs.drop_duplicates("row").set_index("row")[["teacher_key"]])
    distilled = keyed[keyed["teacher"] != ""]
    if distilled.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=SUMMARY_COLUMNS)
        return empty
    summary = distilled.groupby(SUMMARY_KEY, sort=False).agg(
        pairs=("student", "size"), mean_rank=("rank", "mean"), mean_delta_vs_kd=("delta_vs_kd", "mean"),
        runs=("n", "sum"),
    ).reset_index()
    # best first: lowest mean rank, then the largest mean Δ vs KD (missing last), then by name
    summary = summary.assign(_delta=-summary["mean_delta_vs_kd"].fillna(-math.inf)).sort_values(
        ["benchmark", "mean_rank", "_delta", "label"], kind="stable").reset_index(drop=True)
    best = summary.drop_duplicates("benchmark")[["benchmark", "variant"]]
    best_rows = distilled.merge(best, on=["benchmark", "variant"])[[*PAIR_KEY, "mean", "std", "n"]]
    shared = distilled.merge(best_rows, on=PAIR_KEY, suffixes=("", "_best"))
    p = {key: _summary_p(group) for key, group in shared.groupby(["benchmark", "variant"], sort=False)}
    summary["p_vs_best"] = [p.get((b, v), math.nan) for b, v in zip(summary["benchmark"], summary["variant"],
                                                                      strict=True)]
    is_best = pd.Series(summary.index.isin(summary.drop_duplicates("benchmark").index), index=summary.index)
    summary.loc[is_best, "p_vs_best"] = math.nan
    tied_with_best = ~is_best & (summary["p_vs_best"] >= SIGNIFICANCE)
    above = summary.groupby("benchmark")["mean_rank"].rank(method="min")
    summary["rank"] = np.where(is_best | tied_with_best, 1.0, above)
    any_tie = tied_with_best.groupby(summary["benchmark"]).transform("any")
    summary["tied"] = tied_with_best | (is_best & any_tie)
    ordered: pd.DataFrame = summary[SUMMARY_COLUMNS]
    return ordered


def _summary_p(shared: pd.DataFrame) -> float:
    """A variant against the best over the pairs both cover: one pair, Welch's test over seeds; more, the paired
    t-test of the per-pair mean differences (pairs as samples)."""
    if len(shared) == 1:
        r = shared.iloc[0]
        return float(welch_p(r["mean"], r["std"], r["n"], r["mean_best"], r["std_best"], r["n_best"]))
    return paired_p((shared["mean"] - shared["mean_best"]).to_numpy())


SUMMARY_NOTE = (f"Methods: mean rank over the pairs a method covers (ties shared, as below), mean Δ vs KD. A method "
                f"is tied with the best one (\"=\") when they cannot be told apart at p < {SIGNIFICANCE:g} over the "
                "pairs both cover: on one pair by Welch's t-test over seeds, on several by the paired t-test of "
                "their per-pair means.")


def boards(records: Iterable[RunRecord], metric: str = "best") -> list[Board]:
    """One board per dataset, datasets in name order."""
    runs = runs_frame(records)
    if runs.empty:
        return []
    out = []
    for dataset, group in runs.groupby("dataset", sort=True):
        numbered = number_rows(group.reset_index(drop=True))
        rows = board_rows(numbered, metric)
        out.append(Board(str(dataset), rows, board_summary(rows, numbered), numbered))
    return out


def number(value: float, digits: int = 2) -> str:
    """A number to ``digits`` decimals, "–" when missing."""
    return DASH if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def p_text(p: float) -> str:
    """"p 0.09", "p<0.001"; empty when there is no test."""
    if p is None or math.isnan(p):
        return ""
    return "p<0.001" if p < 0.001 else f"p\u00a0{p:.2g}" if p < 0.1 else f"p\u00a0{p:.2f}"


def delta_text(value: float, p: float = math.nan) -> str:
    """"+1.02* (p 0.01)": the Δ, "*" when significant (p < 0.05), and its p-value when there is one."""
    if value is None or math.isnan(value):
        return DASH
    shown = f"{value:+.2f}" + ("*" if p < SIGNIFICANCE else "")
    tested = p_text(p)
    return f"{shown} ({tested})" if tested else shown


def rank_text(rank: float, tied: bool) -> str:
    """"=1" for a row tied with the best, "3" otherwise, "–" without a rank."""
    if rank is None or math.isnan(rank):
        return DASH
    return f"={rank:.0f}" if tied else f"{rank:.0f}"


def ci_text(low: float, high: float) -> str:
    return "1 seed: none" if math.isnan(low) else f"{low:.2f}–{high:.2f}"


def pair_text(teacher: str, student: str) -> str:
    return f"{teacher} → {student}" if teacher else f"{student} (from scratch)"


def cost_text(gpu_hours: float, cpu_hours: float, images_per_s: float) -> str:
    hours = [f"{h:.3g}\u00a0{unit}-h" for h, unit in ((gpu_hours, "GPU"), (cpu_hours, "CPU")) if h > 0]
    speed = [] if math.isnan(images_per_s) else [f"{images_per_s:,.0f}\u00a0img/s"]
    return ", ".join(hours + speed) or DASH


def paper_text(paper: float, delta: float) -> str:
    return DASH if math.isnan(paper) else f"{paper:.2f} ({delta:+.2f})"


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows as a reader wants them (the page's and the Markdown's columns, links aside)."""
    r = rows
    shown: pd.DataFrame = pd.DataFrame({
        "method": r["label"],
        "rank": [rank_text(k, t) for k, t in zip(r["rank"], r["tied"], strict=True)],
        "pair": [pair_text(t, s) for t, s in zip(r["teacher"], r["student"], strict=True)],
        "top-1": [format_cell(m, s, int(n)) for m, s, n in zip(r["mean"], r["std"], r["n"], strict=True)],
        "95% CI": [ci_text(lo, hi) for lo, hi in zip(r["ci95_low"], r["ci95_high"], strict=True)],
        "seeds": r["n"].astype(int),
        "Δ vs KD": [delta_text(d, p) for d, p in zip(r["delta_vs_kd"], r["p_vs_kd"], strict=True)],
        "Δ vs student": [delta_text(d, p) for d, p in zip(r["delta_vs_student"], r["p_vs_student"], strict=True)],
        "teacher": r["teacher_top1"].map(number),
        "paper (Δ)": [paper_text(p, d) for p, d in zip(r["paper"], r["delta_vs_paper"], strict=True)],
        "cost": [cost_text(g, c, i) for g, c, i in zip(r["gpu_hours"], r["cpu_hours"], r["images_per_s"],
                                                          strict=True)],
        "params": r["params"].map(short_params),
    }, index=rows.index)
    return shown


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    shown: pd.DataFrame = pd.DataFrame({
        "method": s["label"], "rank": [rank_text(k, t) for k, t in zip(s["rank"], s["tied"], strict=True)],
        "pairs": s["pairs"], "mean rank": s["mean_rank"].map(number),
        "mean Δ vs KD": [delta_text(d) for d in s["mean_delta_vs_kd"]],
        "p vs best": [p_text(p) or DASH for p in s["p_vs_best"]], "runs": s["runs"],
        "params": s["params"].map(short_params),
    }, index=summary.index)
    return shown


#: The unrounded record column behind each formatted column of ``display_rows`` and ``display_summary``: the
#: leaderboard page sorts by these, so cells that print alike ("74.12") still sort by what they are.
ROW_SORT_KEYS = {"rank": "rank", "top-1": "mean", "95% CI": "ci95_low", "Δ vs KD": "delta_vs_kd",
                 "Δ vs student": "delta_vs_student", "teacher": "teacher_top1", "paper (Δ)": "paper"}
SUMMARY_SORT_KEYS = {"rank": "rank", "mean rank": "mean_rank", "mean Δ vs KD": "mean_delta_vs_kd",
                     "p vs best": "p_vs_best"}


def sort_keys(frame: pd.DataFrame, columns: dict[str, str]) -> dict[Hashable, list[float]]:
    """Displayed column → its unrounded values, row by row (NaN where the cell shows "–")."""
    return {shown: frame[raw].astype(float).tolist() for shown, raw in columns.items()}


def method_params(params: str) -> str:
    """The method's own parameters, compactly ("T=4, gamma=0.1"): what tells apart variants of one label."""
    return ", ".join(f"{k}={v}" for k, v in sorted(json.loads(params)["method"].items()))


def short_params(params: str) -> str:
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


NOTE = ("Top-1: mean ± std over seeds; 95% CI: Student's t over seeds (n − 1 degrees of freedom; none with one "
        "seed). Δ vs KD: against plain KD on the same pair and benchmark; Δ vs student: against the student from "
        f"scratch; each with its Welch p-value over seeds. {SIGNIFICANT_NOTE} {TIE_NOTE} Paper: the published number "
        "for the same method and settings (docs/methods.md §9) and our mean − it. Teacher: the teacher's own "
        "accuracy (on the page, in each pair's figure). Cost: summed wall time of the runs, mean training "
        "throughput.")


def row_records(runs: pd.DataFrame) -> dict[int, list[tuple[int, str]]]:
    """Per row id: (seed, record file under the results folder) of each of its runs, in seed order."""
    ordered = runs.sort_values(["row", "seed"], kind="stable")
    out: dict[int, list[tuple[int, str]]] = {}
    for row, seed, file in zip(ordered["row"], ordered["seed"], ordered["file"], strict=True):
        out.setdefault(int(row), []).append((int(seed), str(file)))
    return out


def _markdown_rows(rows: pd.DataFrame, records: dict[int, list[tuple[int, str]]]) -> pd.DataFrame:
    """The page's columns, and each seed's record as a link (relative to ``results/leaderboard/``)."""
    shown = display_rows(rows)
    shown["records"] = [" ".join(f"[{seed}](../{file})" for seed, file in records[int(row)]) for row in rows.index]
    shown["revision · date"] = [f"{rev} · {day}" for rev, day in zip(rows["revisions"], rows["finished"],
                                                                       strict=True)]
    return shown


def board_markdown(board: Board) -> str:
    """The dataset's leaderboard, one section per benchmark: the method summary, then method × pair."""
    parts = [f"## Leaderboard: {board.dataset}\n"]
    records = row_records(board.runs)
    for benchmark in board.rows["benchmark"].unique():
        summary = display_summary(board.summary[board.summary["benchmark"] == benchmark])
        rows = _markdown_rows(board.rows[board.rows["benchmark"] == benchmark], records)
        parts += [f"### {benchmark}\n", markdown(list(summary.columns), summary.astype(str).values.tolist()) + "\n",
                  markdown(list(rows.columns), rows.astype(str).values.tolist()) + "\n"]
    return "\n".join(parts) + f"\n{SUMMARY_NOTE}\n\n{NOTE}\n"
