"""Tables IV–VI from records: OA/LDA grouping by §7, Δ as a difference of means, teacher/student rows."""

from __future__ import annotations

import pandas as pd

from kdbench.tables.oa_lda import oa_lda_table
from kdbench.tables.plots import time_accuracy_png
from kdbench.tables.vanilla import vanilla_table


def row(label, method, teacher, student, seed, best, ds=False, lr=False, teacher_top1=None, order=(0, 0)):
    return {"label": label, "method": method, "teacher": teacher, "student": student, "seed": seed,
            "best_top1": best, "last_top1": best - 1, "teacher_top1": teacher_top1, "ds": ds, "lr": lr,
            "pair_order": order[0], "method_order": order[1], "wall_time_s": 3600.0 * (2 if lr or ds else 1)}


def frame():
    rows = []
    for seed, (oa, lda) in enumerate([(74.0, 75.0), (76.0, 77.0)]):
        rows += [row("KD", "kd", "resnet32x4", "resnet8x4", seed, oa, teacher_top1=79.42, order=(0, 0)),
                 row("KD", "kd", "resnet32x4", "resnet8x4", seed, lda, ds=True, teacher_top1=79.42, order=(0, 0)),
                 row("PKT", "pkt", "resnet32x4", "resnet8x4", seed, oa - 1, teacher_top1=79.42, order=(0, 1)),
                 row("PKT", "pkt", "resnet32x4", "resnet8x4", seed, lda + 1, ds=True, lr=True, teacher_top1=79.42,
                     order=(0, 1)),
                 row("ce", "ce", None, "resnet8x4", seed, 72.0 + seed, order=(0, 2))]
    rows.append(row("KD", "kd", "vgg13", "vgg8", 0, 70.0, teacher_top1=74.64, order=(1, 0)))
    return pd.DataFrame(rows)


def test_oa_lda_by_hand():
    table = oa_lda_table(frame())
    lines = table.markdown.splitlines()
    kd = next(line for line in lines if "| KD " in line)
    pkt = next(line for line in lines if "| PKT " in line)
    assert "Logits" in kd and "75.00 ± 1.41" in kd and "76.00 ± 1.41" in kd and "+1.00" in kd
    assert "Features" in pkt and "74.00 ± 1.41" in pkt and "77.00 ± 1.41" in pkt and "+3.00" in pkt
    assert lines.index(kd) < lines.index(pkt)  # Logits before Features
    assert "resnet32x4 (79.42) → resnet8x4 (72.50 ± 0.71)" in table.markdown
    assert "| 70.00 | – | – |" in " ".join(kd.split())  # vgg13 → vgg8 has no LDA run: no Δ
    tidy = table.tidy.set_index(["row", "pair", "variant"])
    assert tidy.loc[("PKT", "resnet32x4 → resnet8x4", "LDA"), "mean"] == 77.0


def test_vanilla_by_hand():
    f = frame()
    f.loc[(f["label"] == "KD") & f["ds"], "lr"] = True  # "Our" = KD + LR + DS
    table = vanilla_table(f)
    lines = table.markdown.splitlines()
    assert lines[0].split("|")[2].strip() == "resnet32x4 → resnet8x4"
    assert any(line.startswith("| Teacher") and "79.42" in line and "74.64" in line for line in lines)
    assert any(line.startswith("| Student") and "72.50 ± 0.71" in line for line in lines)
    assert any(line.startswith("| Vanilla KD") and "75.00 ± 1.41" in line for line in lines)
    assert any(line.startswith("| Our") and "76.00 ± 1.41" in line for line in lines)
    assert any(line.startswith("| Δ") and "+1.00" in line for line in lines)


def test_time_accuracy_plot_is_a_png():
    assert time_accuracy_png(frame(), "resnet32x4", "resnet8x4").startswith(b"\x89PNG")
