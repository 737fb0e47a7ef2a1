"""Paper-layout tables (Tables II, III, VIII, IX) from synthetic run frames; numbers checked by hand."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from kdbench.tables.ablation import ablation_table
from kdbench.tables.eta_sweep import eta_table
from kdbench.tables.lambda_sweep import lambda_table
from kdbench.tables.layouts import LAYOUTS, detect_layout
from kdbench.tables.selection import selection_table

T, S = "resnet32x4", "resnet8x4"
SEEDS3 = (74.0, 75.0, 76.0)  # → "75.00 ± 1.00"


def runs(
    method: str = "kd",
    accs: tuple[float, ...] = SEEDS3,
    *,
    ds: bool = False,
    lr: bool = False,
    fraction: float = 0.8,
    order: str = "highest",
    estimator: str = "influence",
    eta: float | str = 0.8,
    lambda1: float = 1.0,
    lambda2: float = 1.0,
    teacher: str | None = T,
    student: str = S,
    pair_order: int = 0,
    method_order: int = 0,
) -> list[dict]:
    """One row per seed, with exactly the columns of ``kdbench.tables.results_frame``."""
    return [
        {
            "suite": "paper", "key": f"{method}-{ds}-{lr}-{fraction}-{order}-{eta}-{lambda1}-{lambda2}-{seed}",
            "label": method, "method": method, "method_params": {}, "teacher": teacher, "student": student,
            "seed": seed, "last_top1": acc - 1.0, "best_top1": acc, "teacher_top1": 79.42, "wall_time_s": 1.0,
            "train_images_per_s": 1.0, "pair_order": pair_order, "method_order": method_order,
            "ds": ds, "ds_estimator": estimator if ds else None, "ds_fraction": fraction if ds else None,
            "ds_order": order if ds else None, "lr": lr, "lr_name": "paper" if lr else None,
            "lr_eta": eta if lr else None, "lr_lambda1": lambda1 if lr else None, "lr_lambda2": lambda2 if lr else None,
        }
        for seed, acc in enumerate(accs)
    ]


def frame(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def body_rows(markdown: str) -> list[list[str]]:
    """Cells of every pipe-table line, header lines included, separator lines left out."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|:- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def cell(mean: float, std: float | None = None) -> str:
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


# ---------------------------------------------------------------- Table II


def selection_frame() -> pd.DataFrame:
    groups = [runs(accs=(74.12,))]  # vanilla KD baseline, a single seed
    for i, fraction in enumerate((0.8, 0.2, 0.5)):  # deliberately unsorted
        groups.append(runs(ds=True, fraction=fraction, order="highest", accs=(70.0 + i, 72.0 + i)))
        groups.append(runs(ds=True, fraction=fraction, order="random", accs=(60.0 + i,)))
        if fraction != 0.5:  # 50% Lowest has no runs → "–"
            groups.append(runs(ds=True, fraction=fraction, order="lowest", accs=SEEDS3))
    groups.append(runs("ce", (60.0,), teacher=None))  # scratch student: not part of Table II
    return frame(*groups)


def test_selection_rows_and_cells():
    table = selection_table(selection_frame())
    assert f"teacher {T}, student {S}" in table.markdown
    assert "Baseline Acc: 74.12%" in table.markdown
    rows = body_rows(table.markdown)
    assert rows[0] == ["PCT(%)", "Strategy", "Acc(%)"]
    highest_80 = cell(statistics.mean([70.0, 72.0]), statistics.stdev([70.0, 72.0]))  # fractions ran 80, 20, 50
    assert rows[1:] == [
        ["20", "Random", cell(61.0)],
        ["", "Lowest", "75.00 ± 1.00"],
        ["", "Highest", cell(72.0, statistics.stdev([71.0, 73.0]))],
        ["50", "Random", cell(62.0)],
        ["", "Lowest", "–"],
        ["", "Highest", cell(73.0, statistics.stdev([72.0, 74.0]))],
        ["80", "Random", cell(60.0)],
        ["", "Lowest", "75.00 ± 1.00"],
        ["", "Highest", highest_80],
    ]
    tidy = table.tidy.set_index(["pct", "strategy"])
    assert tidy.loc[(50.0, "Lowest"), "n"] == 0 and math.isnan(tidy.loc[(50.0, "Lowest"), "mean"])
    assert tidy.loc[(80.0, "Highest"), "mean"] == 71.0 and tidy.loc[(80.0, "Highest"), "n"] == 2
    baseline = table.tidy[table.tidy["strategy"] == "Baseline"].iloc[0]
    assert (baseline["mean"], baseline["n"]) == (74.12, 1)
    assert {"teacher", "student", "mean", "std", "n", "metric"} <= set(table.tidy.columns)
    assert "derived from 16 run records." in table.markdown  # 1 + 3×2 highest + 3 random + 2×3 lowest; ce no pair
    assert "mean ± std over 1–3 seeds" in table.markdown


def test_selection_random_estimator_and_last_metric():
    data = frame(runs(accs=(74.0,)), runs(ds=True, order="highest", estimator="random", accs=(73.0,)),
                 runs(ds=True, order="highest", accs=(75.0,)), runs(ds=True, fraction=0.2, accs=(71.0,)))
    markdown = selection_table(data, metric="last").markdown
    # A random estimator is random selection even with order "highest"; Lowest never ran, so no Lowest rows.
    assert body_rows(markdown)[1:] == [
        ["20", "Random", "–"], ["", "Highest", "70.00"], ["80", "Random", "72.00"], ["", "Highest", "74.00"]
    ]
    assert "Baseline Acc: 73.00%" in markdown and "last top-1 accuracy" in markdown


def test_selection_one_section_per_pair_in_suite_order():
    data = frame(runs(ds=True, teacher="wrn_40_2", student="wrn_16_2", pair_order=1, accs=(73.0,)),
                 runs(ds=True, fraction=0.2, order="random", accs=(70.0,)))
    markdown = selection_table(data).markdown
    assert markdown.index(f"teacher {T}") < markdown.index("teacher wrn_40_2")
    assert "Baseline Acc: –" in markdown
    assert set(selection_table(data).tidy["student"]) == {S, "wrn_16_2"}


# ---------------------------------------------------------------- Table III


def ablation_frame() -> pd.DataFrame:
    return frame(
        runs("kd", (74.0, 74.5, 74.0)),
        runs("mse_kd", (74.34,)),
        runs("kd", SEEDS3, lr=True),
        runs("kd", (74.8,), ds=True),
        runs("kd", (75.0, 76.5), ds=True, lr=True),
        runs("kd", (90.0,), ds=True, fraction=0.5),  # other DS setting: not Table III's DS row
        runs("pkt", (74.81,), method_order=3),
        runs("pkt", (75.5,), ds=True, lr=True, method_order=3),
        runs("fitnet", (71.0,), lr=True, method_order=2),  # no ×/× run → Δ "–"
        runs("ce", (70.0,), teacher=None),
    )


def test_ablation_blocks_rows_and_delta():
    table = ablation_table(ablation_frame())
    rows = body_rows(table.markdown)
    kl = statistics.mean([74.0, 74.5, 74.0])
    assert rows[0] == ["Method", "DS", "LR", "Acc (%)", "Δ"]
    assert rows[1:] == [
        ["KD", "×", "× (KL)", cell(kl, statistics.stdev([74.0, 74.5, 74.0])), "–"],
        ["", "×", "× (MSE)", "74.34", f"{74.34 - kl:+.2f}"],
        ["", "×", "✓", "75.00 ± 1.00", f"{75.0 - kl:+.2f}"],
        ["", "✓", "×", "74.80", f"{74.8 - kl:+.2f}"],
        ["", "✓", "✓", cell(75.75, statistics.stdev([75.0, 76.5])), f"{75.75 - kl:+.2f}"],
        ["FitNet", "×", "✓", "71.00", "–"],
        ["PKT", "×", "×", "74.81", "–"],
        ["", "✓", "✓", "75.50", f"{75.5 - 74.81:+.2f}"],
    ]
    tidy = table.tidy
    kd_ds = tidy[(tidy["block"] == "KD") & tidy["ds"] & ~tidy["lr"]].iloc[0]
    assert kd_ds["delta"] == pytest.approx(74.8 - kl) and kd_ds["n"] == 1
    assert math.isnan(tidy[tidy["block"] == "FitNet"].iloc[0]["delta"])
    assert {"teacher", "student", "block", "method", "ds", "lr", "mean", "std", "n", "delta"} <= set(tidy.columns)
    assert "1 other record(s) of this pair" in table.markdown  # the 50% DS run


def test_ablation_without_kd_baseline():
    rows = body_rows(ablation_table(frame(runs("kd", (75.0,), ds=True))).markdown)
    assert rows[1:] == [["KD", "✓", "×", "75.00", "–"]]


# ---------------------------------------------------------------- Table VIII


def lambda_frame() -> pd.DataFrame:
    groups = [runs("kd", (74.81,), ds=True), runs("kd", (74.0,))]  # DS-only baseline; plain KD is not it
    for value, acc in ((4.0, 76.6), (0.0, 72.96), (0.1, 73.73)):
        groups.append(runs(ds=True, lr=True, lambda1=value, accs=(acc,)))
        groups.append(runs(ds=True, lr=True, lambda2=value, accs=(acc - 1.0,)))
    groups.append(runs(ds=True, lr=True, accs=SEEDS3))  # λ1 = λ2 = 1: in both rows
    groups.append(runs(ds=True, lr=True, eta=0.9, accs=(99.0,)))  # other η: not part of Table VIII
    return frame(*groups)


def test_lambda_rows_sorted_and_shared_unit_run():
    table = lambda_table(lambda_frame())
    assert "Baseline: 74.81% (KD with DS only)" in table.markdown
    rows = body_rows(table.markdown)
    assert rows == [
        ["λ1", "0", "0.1", "1", "4"],
        ["Acc(%)", "72.96", "73.73", "75.00 ± 1.00", "76.60"],
        ["λ2", "0", "0.1", "1", "4"],
        ["Acc(%)", "71.96", "72.73", "75.00 ± 1.00", "75.60"],
    ]
    tidy = table.tidy
    assert list(tidy["parameter"]) == ["baseline"] + ["lambda1"] * 4 + ["lambda2"] * 4
    unit = tidy[(tidy["value"] == 1.0)]
    assert list(unit["mean"]) == [75.0, 75.0] and list(unit["n"]) == [3, 3]
    # 1 baseline + 3 λ1 values + 3 λ2 values + the 3 seeds of λ1 = λ2 = 1, counted once; η = 0.9 and plain KD left out
    assert "derived from 10 run records. 2 other record(s)" in table.markdown


# ---------------------------------------------------------------- Table IX


def eta_frame() -> pd.DataFrame:
    return frame(
        runs(ds=True, lr=True, eta="pttar", accs=(75.6,)),
        runs(ds=True, lr=True, eta=0.95, accs=(75.03,)),
        runs(ds=True, lr=True, eta="ptmax", accs=(75.34,)),
        runs(ds=True, lr=True, eta="0.5", accs=(75.45,)),  # numeric string → the number 0.5
        runs(ds=True, lr=True, eta=0.8, accs=SEEDS3),
        runs(ds=True, lr=True, eta=0.8, lambda1=4.0, accs=(99.0,)),  # λ1 ≠ 1: not part of Table IX
    )


def test_eta_columns_fixed_then_learnable():
    table = eta_table(eta_frame())
    assert "Baseline: – (KD with DS only)" in table.markdown  # no DS-only KD run
    rows = body_rows(table.markdown)
    assert rows == [
        ["η", "Fixed", "", "", "Learnable", ""],
        ["", "0.5", "0.8", "0.95", "ptmax", "pttar"],
        ["Acc(%)", "75.45", "75.00 ± 1.00", "75.03", "75.34", "75.60"],
    ]
    tidy = table.tidy
    assert list(tidy["kind"]) == ["baseline", "fixed", "fixed", "fixed", "learnable", "learnable"]
    assert list(tidy["eta"])[1:] == [0.5, 0.8, 0.95, "ptmax", "pttar"]
    assert tidy.iloc[0]["n"] == 0
    assert "Learnable" in table.markdown and "best top-1 accuracy" in table.markdown


# ---------------------------------------------------------------- detection, registry, errors


def method_pair_frame() -> pd.DataFrame:
    return frame(
        runs("ce", (70.0,), teacher=None),
        runs("kd", (74.0,)), runs("dkd", (76.0,), method_order=1),
        runs("kd", (73.0,), teacher="wrn_40_2", student="wrn_16_2", pair_order=1),
    )


def test_detect_layout_for_each_paper_table():
    assert detect_layout(selection_frame()) == "selection"
    assert detect_layout(ablation_frame().pipe(lambda f: f[f["ds_fraction"] != 0.5])) == "ablation"
    assert detect_layout(lambda_frame()) == "lambda"
    assert detect_layout(eta_frame()[lambda f: f["lr_lambda1"] == 1.0]) == "eta"
    assert detect_layout(method_pair_frame()) == "method_pair"
    assert detect_layout(pd.DataFrame()) == "method_pair"


def test_detect_layout_precedence_and_lookalikes():
    everything = pd.concat([selection_frame(), ablation_frame(), lambda_frame(), eta_frame()], ignore_index=True)
    assert detect_layout(everything) == "lambda"  # sweeps win: their frames contain the weaker signatures
    # Table IV shape: KD vs KD + DS + LR over several pairs stays in the method × pair layout.
    ours = frame(runs("kd", (74.0,)), runs("kd", (76.0,), ds=True, lr=True),
                 runs("kd", (73.0,), teacher="vgg13", student="vgg8", pair_order=1),
                 runs("kd", (74.0,), ds=True, lr=True, teacher="vgg13", student="vgg8", pair_order=1))
    assert detect_layout(ours) == "method_pair"
    # Comparing estimators at one fraction is not Table II (one strategy) nor III (DS setting varies).
    estimators = frame(runs(accs=(74.0,)), runs(ds=True, accs=(75.0,)), runs(ds=True, estimator="el2n", accs=(74.5,)))
    assert detect_layout(estimators) == "method_pair"


def test_layouts_registry_and_unknown_metric():
    from typing import get_args

    from kdbench.plan import TableLayout
    from kdbench.tables.estimators import estimators_table
    from kdbench.tables.imagenet import imagenet_table
    from kdbench.tables.method_pair import method_pair_table
    from kdbench.tables.noise import noise_table
    from kdbench.tables.oa_lda import oa_lda_table
    from kdbench.tables.removal import removal_table
    from kdbench.tables.teachers import teachers_table
    from kdbench.tables.vanilla import vanilla_table

    assert LAYOUTS == {"selection": selection_table, "ablation": ablation_table, "lambda": lambda_table,
                       "eta": eta_table, "method_pair": method_pair_table, "vanilla": vanilla_table,
                       "oa_lda": oa_lda_table, "imagenet": imagenet_table, "noise": noise_table,
                       "estimators": estimators_table, "teachers": teachers_table, "removal": removal_table}
    assert set(LAYOUTS) == set(get_args(TableLayout))  # every layout a suite may name has its renderer
    with pytest.raises(ValueError, match="metric"):
        selection_table(selection_frame(), metric="median")
    empty = ablation_table(pd.DataFrame())
    assert "No run records for this layout" in empty.markdown and empty.tidy.empty
    assert "No run records for this layout" in eta_table(method_pair_frame()).markdown


def test_label_revision_defaults_fill_missing_settings():
    """An LR record without η/λ ran at the defaults (η 0.8, λ1 = λ2 = 1): same cell as one spelling them out."""
    implicit = runs("kd", (76.0,), lr=True, method_order=1)
    for row in implicit:
        row.update(lr_eta=None, lr_lambda1=None, lr_lambda2=None)
    data = frame(runs("kd", (74.0,)), runs("kd", (74.0,), lr=True), implicit)
    assert body_rows(ablation_table(data).markdown)[2] == ["", "×", "✓", cell(75.0, statistics.stdev([74.0, 76.0])),
                                                          "+1.00"]
    assert detect_layout(data) == "ablation"
