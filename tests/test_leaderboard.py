"""The leaderboard: its numbers against an independent pandas computation over the records, its files, its page."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from kdbench.plan import ComponentRef, SelectionSpec
from kdbench.store import RunStore
from kdbench.tables.cells import welch_p
from kdbench.tables.leaderboard_files import write_leaderboard
from tests.records import make_record, make_spec

PAIRS = [("resnet20", "resnet8"), ("resnet32", "resnet14")]
ACC = {  # (label, teacher, student) → accuracies over seeds 0, 1, 2
    ("ce", None, "resnet8"): [80.0, 81.0, 82.0],
    ("kd", "resnet20", "resnet8"): [83.0, 84.0, 85.5],
    ("kd+DS", "resnet20", "resnet8"): [86.0, 86.5, 87.0],
    ("ce", None, "resnet14"): [82.0, 82.0, 83.0],
    ("kd", "resnet32", "resnet14"): [84.0, 84.5, 83.0],
    ("kd+DS", "resnet32", "resnet14"): [83.0, 84.0, 83.5],
}
DS = SelectionSpec(fraction=0.8, order="highest", estimator=ComponentRef("influence", {"score": "self"}, "1"))


@pytest.fixture
def published(tmp_path):
    store = RunStore(tmp_path / "results")
    for (label, teacher, student), accs in ACC.items():
        for seed, acc in enumerate(accs):
            method = "ce" if teacher is None else "kd"
            extra = {"selection": DS} if label == "kd+DS" else {}
            spec = make_spec(label, method, teacher, student, seed, suite="board", **extra)
            store.write_record(spec, make_record(spec, acc, acc - 1, teacher_top1=90.0, wall_time_s=36.0 * (seed + 1)))
    return store


def expected() -> pd.DataFrame:
    """The same numbers computed from ACC with plain pandas, nothing of kdbench's."""
    rows = []
    for (label, teacher, student), accs in ACC.items():
        values = pd.Series(accs)
        kd = pd.Series(ACC[("kd", teacher, student)]) if teacher else None
        scratch = pd.Series(ACC[("ce", None, student)])
        rows.append({"label": label, "teacher": teacher or "", "student": student, "mean": values.mean(),
                     "std": values.std(), "delta_vs_kd": values.mean() - kd.mean() if teacher else math.nan,
                     "delta_vs_student": values.mean() - scratch.mean() if teacher else math.nan,
                     "cpu_hours": 36.0 * 6 / 3600})
    return pd.DataFrame(rows)


def test_rows_equal_an_independent_computation(published):
    boards, paths = write_leaderboard(published)
    (board,) = boards
    csv = pd.read_csv(published.root / "leaderboard" / "digits.csv")  # no options: pandas reads it as is
    assert len(csv) == len(ACC) and list(csv.columns) == list(board.rows.columns)
    csv["teacher"] = csv["teacher"].fillna("")
    merged = csv.merge(expected(), on=["label", "teacher", "student"], suffixes=("", "_expected"))
    assert len(merged) == len(ACC)
    for column in ("mean", "std", "delta_vs_kd", "delta_vs_student", "cpu_hours"):
        got, want = merged[column], merged[f"{column}_expected"]
        assert ((got - want).abs() < 1e-9).where(want.notna(), got.isna()).all(), column
    assert (csv["seeds"] == "0;1;2").all() and (csv["n"] == 3).all() and (csv["gpu_hours"] == 0).all()
    assert set(csv["suites"]) == {"board"} and (csv["devices"] == "test CPU").all()
    kd_ds = merged[merged["label"] == "kd+DS"].set_index("student")
    kd = pd.Series(ACC[("kd", "resnet20", "resnet8")])
    p = welch_p((kd_ds.loc["resnet8", "mean"], kd_ds.loc["resnet8", "std"], 3), (kd.mean(), kd.std(), 3))
    assert kd_ds.loc["resnet8", "p_vs_kd"] == pytest.approx(p)
    assert json.loads(kd_ds.loc["resnet8", "params"])["selection"]["estimator"]["params"] == {"score": "self"}


def test_summary_ranks_and_means(published):
    (board,), _ = write_leaderboard(published)
    summary = pd.read_csv(published.root / "leaderboard" / "digits_summary.csv")
    by_label = summary.set_index("label")
    # resnet8: kd+DS 86.5 > kd 84.17; resnet14: kd 83.83 > kd+DS 83.5 → each method ranks 1 once and 2 once
    assert by_label.loc["kd+DS", "mean_rank"] == 1.5 and by_label.loc["kd", "mean_rank"] == 1.5
    assert by_label.loc["kd+DS", "pairs"] == 2 and by_label.loc["kd", "mean_delta_vs_kd"] == 0
    want = ((86.5 - pd.Series(ACC[("kd", "resnet20", "resnet8")]).mean())
            + (83.5 - pd.Series(ACC[("kd", "resnet32", "resnet14")]).mean())) / 2
    assert by_label.loc["kd+DS", "mean_delta_vs_kd"] == pytest.approx(want)
    assert "ce" not in by_label.index  # the student from scratch is a reference, not a contender


class Cells(HTMLParser):
    """Every table row of a page as the list of its cell texts; every image source."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_page_parses_and_holds_every_row_of_the_csv(published):
    write_leaderboard(published)
    page = (published.root / "leaderboard" / "index.html").read_text()
    parser = Cells()
    parser.feed(page)
    csv = pd.read_csv(published.root / "leaderboard" / "digits.csv").fillna({"teacher": "–"})
    body = [row for row in parser.rows if row and row[0] in set(csv["label"])]
    pair_rows = [row for row in body if len(row) > 4 and row[4] in set(csv["seeds"])]
    assert len(pair_rows) == len(csv)
    for record in csv.itertuples():
        assert any(row[:3] == [record.label, record.teacher, record.student] and row[4] == record.seeds
                   for row in pair_rows), record
    assert len(parser.images) == len(PAIRS) and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert "http://" not in page and "https://" not in page


def test_the_page_sorts_by_the_unrounded_numbers_of_the_csv(published):
    write_leaderboard(published)
    page = (published.root / "leaderboard" / "index.html").read_text()
    csv = pd.read_csv(published.root / "leaderboard" / "digits.csv")
    # Each "top-1" cell ("84.17 ± 1.26") carries its row's unrounded mean; row order is the CSV's.
    shown = [float(key) for key in re.findall(r'<td class="num" data-sort="([^"]+)">\d+\.\d\d ± ', page)]
    assert shown == pytest.approx(list(csv["mean"]), rel=0, abs=0)
