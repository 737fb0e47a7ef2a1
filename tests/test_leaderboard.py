"""The leaderboard: its numbers against an independent computation over the records (plain pandas and scipy's own
t-tests), its ties, its suite entries (loaded and expanded again), its files and its page."""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from kdbench.errors import KdbenchWarning
from kdbench.plan import ComponentRef, SelectionSpec, expand, load_suite
from kdbench.store import RunStore, iter_records, published_records
from kdbench.tables.cells import welch_p as scalar_welch_p
from kdbench.tables.html_page import text_number
from kdbench.tables.leaderboard import boards, variant_of
from kdbench.tables.leaderboard_entry import suite_entries
from kdbench.tables.leaderboard_files import write_leaderboard
from kdbench.tables.leaderboard_stats import confidence_interval, tied_ranks, welch_p
from tests.records import make_record, make_spec

REPO = Path(__file__).resolve().parents[1]
ACC = {  # (label, teacher, student) → accuracies over seeds 0, 1, 2
    ("ce", None, "resnet8"): [80.0, 81.0, 82.0],
    ("kd", "resnet20", "resnet8"): [83.0, 84.0, 85.5],
    ("kd+DS", "resnet20", "resnet8"): [86.0, 86.5, 87.0],
    ("mse_kd", "resnet20", "resnet8"): [70.0, 70.5, 71.0],
    ("ce", None, "resnet14"): [82.0, 82.0, 83.0],
    ("kd", "resnet32", "resnet14"): [84.0, 84.5, 83.0],
    ("kd+DS", "resnet32", "resnet14"): [83.0, 84.0, 83.5],
}
DS = SelectionSpec(fraction=0.8, order="highest", estimator=ComponentRef("influence", {"score": "self"}, "1"))
T_975_2DOF = 4.302652729749462  # Student's t, 97.5% quantile, 2 degrees of freedom (tables; three seeds)
DAY = 1796256000.0  # 2026-12-03 00:00 UTC


def write_published(store: RunStore) -> None:
    for (label, teacher, student), accs in ACC.items():
        for seed, acc in enumerate(accs):
            method = {"ce": "ce", "mse_kd": "mse_kd"}.get(label, "kd")
            extra = {"selection": DS} if label == "kd+DS" else {}
            spec = make_spec(label, method, teacher, student, seed, suite="board", **extra)
            record = make_record(spec, acc, acc - 1, teacher_top1=90.0, wall_time_s=36.0 * (seed + 1))
            store.write_record(spec, record.model_copy(update={"git_revision": f"{seed:x}" * 40,
                                                               "finished_at": DAY + 86400 * seed}))


@pytest.fixture
def published(tmp_path):
    store = RunStore(tmp_path / "results")
    write_published(store)
    return store


def build(store: RunStore, **options):
    return write_leaderboard(store, published_records(store), **options)


def expected() -> pd.DataFrame:
    """The same numbers computed from ACC with plain pandas and scipy, nothing of kdbench's."""
    rows = []
    for (label, teacher, student), accs in ACC.items():
        values = pd.Series(accs)
        kd = pd.Series(ACC[("kd", teacher, student)]) if teacher else None
        scratch = pd.Series(ACC[("ce", None, student)])
        half = T_975_2DOF * values.std() / math.sqrt(3)
        rows.append({"label": label, "teacher": teacher or "", "student": student, "mean": values.mean(),
                     "std": values.std(), "delta_vs_kd": values.mean() - kd.mean() if teacher else math.nan,
                     "p_vs_kd": stats.ttest_ind(accs, kd, equal_var=False).pvalue if teacher else math.nan,
                     "delta_vs_student": values.mean() - scratch.mean() if teacher else math.nan,
                     "p_vs_student": stats.ttest_ind(accs, scratch, equal_var=False).pvalue if teacher else math.nan,
                     "ci95_low": values.mean() - half, "ci95_high": values.mean() + half, "cpu_hours": 36.0 * 6 / 3600})
    return pd.DataFrame(rows)


def read_csv(store: RunStore, name: str) -> pd.DataFrame:
    frame = pd.read_csv(store.root / "leaderboard" / name)  # no options: pandas reads it as is
    if "teacher" in frame.columns:
        frame["teacher"] = frame["teacher"].fillna("")
    return frame


def test_rows_equal_an_independent_computation(published):
    boards_, _ = build(published)
    (board,) = boards_
    csv = read_csv(published, "digits.csv")
    assert len(csv) == len(ACC) and list(csv.columns) == list(board.rows.columns)
    merged = csv.merge(expected(), on=["label", "teacher", "student"], suffixes=("", "_expected"))
    assert len(merged) == len(ACC)
    for column in ("mean", "std", "delta_vs_kd", "p_vs_kd", "delta_vs_student", "p_vs_student", "ci95_low",
                   "ci95_high", "cpu_hours"):
        got, want = merged[column], merged[f"{column}_expected"]
        assert ((got - want).abs() < 1e-9).where(want.notna(), got.isna()).all(), column
    assert (csv["seeds"] == "0;1;2").all() and (csv["n"] == 3).all() and (csv["gpu_hours"] == 0).all()
    assert set(csv["suites"]) == {"board"} and (csv["devices"] == "test CPU").all()
    assert set(csv["finished"]) == {"2026-12-03;2026-12-04;2026-12-05"}  # each day a run of the row finished
    assert (csv["revisions"] == ";".join(f"{s:x}" * 12 for s in range(3))).all()  # 12 characters of each
    kd_ds = csv[(csv["label"] == "kd+DS") & (csv["student"] == "resnet8")].iloc[0]
    assert json.loads(kd_ds["params"])["selection"]["estimator"]["params"] == {"score": "self"}
    files = kd_ds["records"].split(";")  # one per seed, in seed order, relative to results/
    assert len(files) == 3 and all((published.root / f).is_file() for f in files)
    assert [json.loads((published.root / f).read_text())["seed"] for f in files] == [0, 1, 2]


def test_rows_tied_with_the_best_share_its_rank(published):
    build(published)
    csv = read_csv(published, "digits.csv").set_index(["label", "student"])
    # resnet8: kd+DS is best (86.5); kd (84.17) cannot be told from it (Welch p 0.069): tied, rank 1, not 2;
    # mse_kd (70.5) is below both at p < 0.05: rank 3 (two rows above it), not tied
    p_kd = stats.ttest_ind(ACC[("kd", "resnet20", "resnet8")], ACC[("kd+DS", "resnet20", "resnet8")],
                           equal_var=False).pvalue
    assert 0.05 <= p_kd < 0.1
    assert csv.loc[("kd", "resnet8"), "p_vs_best"] == pytest.approx(p_kd)
    assert csv.loc[("kd+DS", "resnet8"), ["rank", "tied"]].tolist() == [1, True]
    assert csv.loc[("kd", "resnet8"), ["rank", "tied"]].tolist() == [1, True]
    assert csv.loc[("mse_kd", "resnet8"), ["rank", "tied"]].tolist() == [3, False]
    assert math.isnan(csv.loc[("kd+DS", "resnet8"), "p_vs_best"])  # the best is not tested against itself
    # resnet14: kd (83.83) is best, kd+DS (83.5) tied with it
    assert csv.loc[("kd", "resnet14"), ["rank", "tied"]].tolist() == [1, True]
    assert csv.loc[("kd+DS", "resnet14"), ["rank", "tied"]].tolist() == [1, True]
    assert csv.loc[("ce", "resnet8"), "rank"] != csv.loc[("ce", "resnet8"), "rank"]  # not ranked (NaN)
    markdown = (published.root / "leaderboard" / "digits.md").read_text()
    assert re.search(r"\| kd\+DS +\| =1 +\| resnet20 → resnet8", markdown)
    assert re.search(r"\| mse_kd +\| 3 +\| resnet20 → resnet8", markdown)


def test_summary_ranks_ties_and_means(published):
    build(published)
    summary = read_csv(published, "digits_summary.csv")
    by_label = summary.set_index("label")
    # per-pair ranks with ties shared: kd+DS 1, 1; kd 1, 1; mse_kd 3 (resnet8 only)
    assert by_label["mean_rank"].to_dict() == {"kd+DS": 1.0, "kd": 1.0, "mse_kd": 3.0}
    delta = lambda label, t, s: np.mean(ACC[(label, t, s)]) - np.mean(ACC[("kd", t, s)])  # noqa: E731
    want = (delta("kd+DS", "resnet20", "resnet8") + delta("kd+DS", "resnet32", "resnet14")) / 2
    assert by_label.loc["kd+DS", "mean_delta_vs_kd"] == pytest.approx(want)
    assert list(summary["label"]) == ["kd+DS", "kd", "mse_kd"]  # equal mean ranks: the larger mean Δ first
    # kd against the best (kd+DS) over their two pairs: the paired t-test of the per-pair means
    differences = [np.mean(ACC[("kd", t, s)]) - np.mean(ACC[("kd+DS", t, s)])
                   for t, s in (("resnet20", "resnet8"), ("resnet32", "resnet14"))]
    assert by_label.loc["kd", "p_vs_best"] == pytest.approx(stats.ttest_1samp(differences, 0.0).pvalue)
    # mse_kd shares one pair with kd+DS: Welch's test over the seeds there
    p = stats.ttest_ind(ACC[("mse_kd", "resnet20", "resnet8")], ACC[("kd+DS", "resnet20", "resnet8")],
                        equal_var=False).pvalue
    assert by_label.loc["mse_kd", "p_vs_best"] == pytest.approx(p)
    assert by_label[["rank", "tied"]].to_dict("index") == {
        "kd+DS": {"rank": 1, "tied": True}, "kd": {"rank": 1, "tied": True}, "mse_kd": {"rank": 3, "tied": False}}
    assert "ce" not in by_label.index  # the student from scratch is a reference, not a contender


def test_the_vectorised_statistics_equal_the_scalar_ones():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(70, 2, 200), rng.normal(70, 2, 200)
    s1, s2 = rng.uniform(0, 1.5, 200), rng.uniform(0, 1.5, 200)
    n1, n2 = rng.integers(0, 6, 200), rng.integers(0, 6, 200)
    s1[:5] = s2[:5] = 0.0  # no spread on either side: no test
    m1[5] = np.nan
    got = welch_p(m1, s1, n1, m2, s2, n2)
    want = [scalar_welch_p((a, b, int(c)), (d, e, int(f)))
            for a, b, c, d, e, f in zip(m1, s1, n1, m2, s2, n2, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    low, high = confidence_interval(np.array([10.0, 5.0]), np.array([2.0, 1.0]), np.array([3, 1]))
    assert low[0] == pytest.approx(10 - T_975_2DOF * 2 / math.sqrt(3)) and high[0] == pytest.approx(
        10 + T_975_2DOF * 2 / math.sqrt(3))
    assert math.isnan(low[1]) and math.isnan(high[1])  # one seed: no interval


def test_tied_ranks_with_one_seed_and_equal_means():
    frame = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 2, "mean": [80.0, 79.0, 75.0, 80.0, 60.0, 61.0],
                          "std": [1.0, 1.0, 0.1, 0.0, 0.0, 0.0], "n": [3, 3, 3, 1, 1, 1]})
    ranks = tied_ranks(frame, ["g"])
    # group a: the first 80.0 is best; 79 ± 1 is tied with it; 75 ± 0.1 is not (p < 0.05) and has two rows above
    # it... and a one-seed 80.0 cannot be tested: it ranks by mean (1, as the best's equal)
    assert ranks["rank"].tolist() == [1, 1, 4, 1, 2, 1]
    assert ranks["tied"].tolist() == [True, True, False, False, False, False]
    assert math.isnan(ranks["p_vs_best"][0]) and math.isnan(ranks["p_vs_best"][3])


def test_runs_that_follow_their_seed_share_one_variant():
    random_subset = [make_spec("kd+DS", "kd", "resnet20", "resnet8", seed,
                               selection=SelectionSpec(fraction=0.5, order="random", seed=seed)) for seed in range(3)]
    unseeded = [make_spec("kd+DS", "kd", "resnet20", "resnet8", seed, selection=SelectionSpec(
        fraction=0.5, order="highest", estimator=ComponentRef("random", {"seed": seed}, "1"))) for seed in range(3)]
    fixed = make_spec("kd+DS", "kd", "resnet20", "resnet8", 1, selection=SelectionSpec(
        fraction=0.5, order="highest", estimator=ComponentRef("random", {"seed": 7}, "1")))
    variants = {variant_of(make_record(spec, 80.0, 80.0))[1] for spec in random_subset}
    assert len(variants) == 1  # one row over the seeds, not one per seed
    assert len({variant_of(make_record(spec, 80.0, 80.0))[1] for spec in unseeded}) == 1
    assert variant_of(make_record(fixed, 80.0, 80.0))[1] not in variants | {
        variant_of(make_record(unseeded[1], 80.0, 80.0))[1]}


ROUND_TRIP = """
name: roundtrip
dataset: {name: digits, params: {image_size: 8}}
label_noise: {rate: [0, 0.2]}
recipe: {epochs: 2, batch_size: 32, lr: 0.1, small_student_lr: 0.02, milestones: [1], momentum: 0.8}
teacher_recipe: {epochs: 3, lr: 0.07}
teacher_seed: 3
seeds: [0, 1]
pairs:
  - {teacher: resnet20, student: resnet8}
  - {teacher: resnet32, student: MobileNetV2}
  - {teacher: resnet56, student: resnet14}
methods:
  - ce
  - {name: kd, params: {T: 2}}
  - {name: kd, label: KD random, selection: {order: random, fraction: 0.5}}
  - {name: kd, selection: {estimator: random, fraction: 0.7}}
  - {name: kd, revision: {name: paper, lambda1: 0.5}}
"""


def expand_keys(text: str, folder: Path, registry) -> list[str]:
    path = folder / f"entry_{len(list(folder.glob('entry_*.yaml')))}.yaml"
    path.write_text(text)
    return sorted(spec.key for spec in expand(load_suite(path), registry).runs)


def test_suite_entries_expand_to_the_runs_they_were_written_from(write_suite, tmp_path, registry):
    """Suite → specs → records → entries → suite files → the same run keys: label noise, a small student's lr, the
    teachers' own recipe and seed, a random DS subset, an unseeded estimator and LR all survive."""
    specs = expand(load_suite(write_suite(ROUND_TRIP)), registry).runs
    records = [make_record(spec, 80.0, 79.0) for spec in specs]
    runs = {record.key: record for record in records}
    (board, *others) = boards(records)
    rows = board.runs.groupby("row")["key"].agg(list)
    entries, anchors = suite_entries([[(key, runs[key].spec) for key in keys] for keys in rows])
    assert not others and set(anchors) == set(runs)
    assert len(entries) < len(board.rows)  # one entry serves a method on several pairs
    expanded = {entry.anchor: expand_keys(entry.yaml, tmp_path, registry) for entry in entries}
    for entry in entries:
        assert expanded[entry.anchor] == sorted(entry.keys), entry.yaml
    assert sorted(key for entry in entries for key in entry.keys) == sorted(runs)
    for keys in rows:  # each row's runs are among its entry's
        (anchor,) = {anchors[key] for key in keys}
        assert set(keys) <= set(expanded[anchor])
    methods = [method for entry in entries for method in entry.suite["methods"]]
    assert any(len(entry.suite["methods"]) > 1 for entry in entries)  # methods on the same pairs share a suite
    random = next(m for m in methods if m.get("label") == "KD random")
    assert random["selection"] == {"fraction": 0.5, "order": "random"}
    assert "seed" not in next(m for m in methods if m.get("selection", {}).get(
        "estimator") == "random")["selection"]["params"]  # it follows the run's seed again


class Page(HTMLParser):
    """The page's main-table rows (cells and their links), its code blocks, svg figures and images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict] = []
        self.codes: dict[str, str] = {}
        self.ids: set[str] = set()
        self.svgs = self.images = 0
        self.subtitle = ""
        self._in: list[str] = []
        self._main = False
        self._code: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self._in.append(tag)
        if tag == "table":
            self._main = "main" in (a.get("class") or "")
        elif tag == "tr" and self._main and "tbody" in self._in:
            self.rows.append({"data": a, "cells": [], "links": []})
        elif tag == "td" and self._main and self.rows:
            self.rows[-1]["cells"].append("")
            self.rows[-1]["links"].append([])
        elif tag == "a" and self._main and self.rows and self._in[-2] == "td":
            self.rows[-1]["links"][-1].append(a["href"])
        elif tag == "div" and (a.get("class") or "") == "code":
            self._code = a["id"]
        elif tag == "svg":
            self.svgs += 1
        elif tag == "img":
            self.images += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._in.pop()

    def handle_endtag(self, tag):
        if tag == "table":
            self._main = False
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._main and self.rows and "td" in self._in:
            self.rows[-1]["cells"][-1] += data
        if self._code and self._in and self._in[-1] == "pre":
            self.codes[self._code] = self.codes.get(self._code, "") + data
        if self._in and self._in[-1] == "p" and not self.subtitle and "published runs" in data:
            self.subtitle = data


def parse_page(store: RunStore) -> tuple[str, Page]:
    page = (store.root / "leaderboard" / "index.html").read_text()
    parser = Page()
    parser.feed(page)
    return page, parser


def test_the_page_holds_every_row_with_its_records_entry_and_figures(published):
    build(published, release="v2", built_on="2026-12-04")
    page, parsed = parse_page(published)
    csv = read_csv(published, "digits.csv")
    header = re.findall(r"<th [^>]*><button type=\"button\">([^<]*)</button>", page.split('class="sortable main')[1]
                        .split("</thead>")[0])
    column = {name: i for i, name in enumerate(header)}
    assert len(parsed.rows) == len(csv)
    records = {r.key: r for r in published_records(published)}
    linked = []
    for row, record in zip(parsed.rows, csv.itertuples(), strict=True):  # the page's rows in the CSV's order
        cells = row["cells"]
        pair = f"{record.teacher} → {record.student}" if record.teacher else f"{record.student} (from scratch)"
        assert [cells[column["method"]], cells[column["pair"]]] == [record.label, pair]
        assert cells[column["top-1"]] == f"{record.mean:.2f}\u00a0±\u00a0{record.std:.2f}"
        assert cells[column["95% CI"]] == f"{record.ci95_low:.2f}–\u2060{record.ci95_high:.2f}"
        assert cells[column["rank"]] in ({"–"} if not record.teacher else {"=1", "1", "3"})
        # each seed links to its record file, which is beside the page where the link says
        seeds = row["links"][column["seeds"]]
        assert cells[column["seeds"]] == "0 1 2" and len(seeds) == 3
        files = [(published.root / "leaderboard" / href).resolve() for href in seeds]
        keys = [json.loads(f.read_text())["key"] for f in files]
        linked += keys
        # the suite entry: a YAML block of the page for this method, these seeds and this pair (these records' specs
        # are not resolved by a registry, so their keys are not a suite's: the next tests expand real ones)
        (yaml_link,) = [h for h in row["links"][column["YAML · revision · date"]] if h.startswith("#")]
        entry = yaml.safe_load(parsed.codes[yaml_link[1:]])
        assert entry["seeds"] == [0, 1, 2] and entry["name"] == "board"
        assert {"kd+DS": "kd"}.get(record.label, record.label) in [m["name"] for m in entry["methods"]]
        assert {"student": record.student, **({"teacher": record.teacher} if record.teacher else {})} in entry["pairs"]
        # three revisions: counted, not listed; the day the row's last run finished
        assert cells[column["YAML · revision · date"]] == "YAML · 3 revisions · 2026-12-05"
        assert row["data"]["data-method"] == {"kd+DS": "kd"}.get(record.label, record.label)
        # "none", the +LR/+DS filter's default, is not written; a distilled row's pair is its pair cell's text
        assert row["data"].get("data-lrds") == ("DS" if record.label == "kd+DS" else None)
        assert ("data-pair" in row["data"]) == (not record.teacher)
    assert sorted(linked) == sorted(records)  # every record once
    assert parsed.svgs == 2 and parsed.images == 0  # a figure per pair, drawn as SVG; no PNG any more
    assert "teacher" not in column and page.count("teacher: 90.00") == 2  # the pair's teacher: in its figure
    assert "Release v2 · built 2026-12-04 · 21 published runs" in parsed.subtitle
    assert "http://" not in page and "https://" not in page
    # the pair links to its figure
    assert all(href[1:] in parsed.ids for row in parsed.rows for href in row["links"][column["pair"]])


def test_an_unreleased_page_says_so_and_carries_todays_date(published):
    build(published)
    _, parsed = parse_page(published)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert parsed.subtitle.startswith(f"Unreleased · built {today} · ")


def test_the_content_security_policy_is_strict_and_matches_the_inline_code(published):
    import base64
    import hashlib

    build(published)
    page = (published.root / "leaderboard" / "index.html").read_text()
    (policy,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    policy = html.unescape(policy)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    assert "unsafe" not in policy and "*" not in policy
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (body,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert directives[directive] == f"'sha256-{digest}'"
    assert not re.search(r"\sstyle=", page)  # a style attribute would need 'unsafe-inline'
    assert not re.search(r"\son[a-z]+=", page)


def test_the_page_sorts_by_the_unrounded_numbers_of_the_csv(published):
    build(published)
    page = (published.root / "leaderboard" / "index.html").read_text()
    csv = read_csv(published, "digits.csv")
    # Each "top-1" cell ("84.17 ± 1.26") sorts by its data-sort, else by the number its text reads as; those
    # numbers are in the order of the CSV's unrounded means (row order is the CSV's), ties and all.
    cells = re.findall(r'<td(?: data-sort="([^"]+)")?>(\d+\.\d\d\u00a0±[^<]*)</td>', page)
    shown = [float(key) if key else text_number(text) for key, text in cells]
    means = list(csv["mean"])
    assert len(shown) == len(means) > 1
    assert all((a < b) == (m < n) and (a == b) == (m == n) for a, m in zip(shown, means, strict=True)
               for b, n in zip(shown, means, strict=True))


def test_the_committed_records_make_a_page_whose_entries_rerun_them(tmp_path, registry):
    """The published quickstart: every row's suite entry expands to the row's published runs (among those of the
    other methods on its pairs), and the entries together to exactly the published runs."""
    store = RunStore(tmp_path / "results")
    for record in iter_records(REPO / "results" / "raw" / "quickstart"):
        store.write_record(record.spec, record)
    (board,), _ = build(store)
    _, parsed = parse_page(store)
    records = published_records(store)
    assert len(parsed.rows) == len(board.rows) == 6 and parsed.codes
    expanded = {anchor: expand_keys(text, tmp_path, registry) for anchor, text in parsed.codes.items()}
    for row, files in zip(parsed.rows, board.rows["records"], strict=True):
        keys = sorted(f.split("/")[2] for f in files.split(";"))
        (anchor,) = [h for links in row["links"] for h in links if h.startswith("#yaml-")]
        assert set(keys) <= set(expanded[anchor[1:]])  # the row's runs are among its entry's
    # and the entries expand to exactly the published runs, each once
    assert sorted(k for keys in expanded.values() for k in keys) == sorted(r.key for r in records)
    assert sorted(r.key for r in records) == sorted(k for f in board.rows["records"] for k in
                                                      [p.split("/")[2] for p in f.split(";")])


def test_published_records_read_fast_as_the_store_reads_them(published):
    slow = {r.key: r for r in iter_records(published.root / "raw")}
    fast = published_records(published)  # held without per-epoch metrics (kdbench.store.published_files)
    assert {r.key: r.model_copy(update={"metrics": slow[r.key].metrics}) for r in fast} == slow
    assert len(fast) == len(slow) and all(r.metrics == [] for r in fast)
    (path, *_) = sorted((published.root / "raw").rglob("record.json"))
    path.write_text(path.read_text()[:100])  # a partial file: skipped with the store's one-line warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = published_records(published)
    assert len(again) == len(slow) - 1
    assert [str(w.message) for w in caught if issubclass(w.category, KdbenchWarning)] == [
        f"{path}: not readable as JSON (a partial or corrupt file); skipped"]


def test_a_run_trained_on_a_gpu_and_on_a_cpu_is_two_results_in_two_benchmarks(published):
    """The same keys published again from a GPU (another suite): both kept, never averaged or ranked together;
    the same key under a second suite from the same device class still counts once."""
    gpu = published.root / "raw" / "board_gpu"
    cpu_again = published.root / "raw" / "board_again"
    for record in iter_records(published.root / "raw" / "board"):
        environment = record.environment.model_copy(update={"device": "cuda", "gpu": "H200"})
        shifted = record.model_copy(update={"environment": environment, "best_top1": record.best_top1 - 5})
        for folder, copy in ((gpu, shifted), (cpu_again, record)):
            (folder / record.key).mkdir(parents=True)
            (folder / record.key / "record.json").write_text(copy.model_dump_json())
    records = published_records(published)
    assert len(records) == 2 * len(ACC) * 3
    (board,) = boards(records)
    benchmarks = sorted(board.rows["benchmark"].unique())
    assert [b.rsplit(" · ", 1)[1] for b in benchmarks] == ["CPU", "GPU"]
    for benchmark, offset in zip(benchmarks, (0.0, 5.0), strict=True):
        rows = board.rows[board.rows["benchmark"] == benchmark]
        kd = rows[(rows["label"] == "kd") & (rows["student"] == "resnet8")]
        published_mean = np.mean(ACC[("kd", "resnet20", "resnet8")])
        assert kd["n"].tolist() == [3] and kd["mean"].iloc[0] == pytest.approx(published_mean - offset)
