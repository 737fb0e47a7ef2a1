"""``results/runs.parquet``: its cells against values worked out by hand, byte-identical output, the README's schema
block and its pandas and DuckDB examples run against a file written from test records."""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdbench.cli import main
from kdbench.plan import ComponentRef, DatasetRef, RevisionSpec, SelectionSpec
from kdbench.plan.spec import LabelNoise
from kdbench.store import EpochRecord, RunStore, SuiteInfo
from kdbench.store.published_files import one_per_run, published_files
from kdbench.tables.runs_table import (
    COLUMNS,
    END,
    START,
    parquet_bytes,
    print_schema,
    runs_table,
    schema_markdown,
    write_runs_table,
)
from tests.records import make_record, make_spec

README = Path(__file__).resolve().parents[1] / "README.md"
DS = SelectionSpec(fraction=0.8, order="highest", estimator=ComponentRef("influence", {"score": "self"}, "1"))
LR = RevisionSpec(ComponentRef("paper", {"eta": 0.8}, "1"), lambda1=1.0, lambda2=2.0)
NOISY = DatasetRef("digits", {"image_size": 8}, "1", label_noise=LabelNoise(0.2, "symmetric", 3))
# (label, method, teacher, extra spec fields) → best top-1 over seeds 0, 1
RUNS = {
    ("ce", "ce", None): [80.0, 81.0],
    ("kd", "kd", "resnet20"): [83.0, 84.5],
    ("kd+DS", "kd", "resnet20"): [86.0, 87.0],
    ("kd+LR", "kd", "resnet20"): [85.0, 85.5],
}
EXTRA = {"kd+DS": {"selection": DS}, "kd+LR": {"revision": LR}}
FINISHED = 1_700_000_000.5  # 2023-11-14 22:13:20.5 UTC


def record(spec, best: float, **fields):
    """A test record (last top-1 one point below the best) that finished at FINISHED, after 1800 s."""
    made = make_record(spec, best, best - 1.0, wall_time_s=1800.0, **fields)
    return made.model_copy(update={"finished_at": FINISHED})


def publish(store: RunStore, suite: str = "s") -> dict:
    """The RUNS records under ``store``; the specs by (label, seed)."""
    specs = {}
    for (label, method, teacher), accs in RUNS.items():
        for seed, best in enumerate(accs):
            spec = make_spec(label, method, teacher, "resnet8", seed, suite=suite, **EXTRA.get(label, {}))
            store.write_record(spec, record(spec, best, teacher_top1=95.0 if teacher else None))
            specs[label, seed] = spec
    return specs


@pytest.fixture
def published(tmp_path):
    store = RunStore(tmp_path / "results")
    return store, publish(store)


def test_cells_are_the_records_fields(published):
    store, specs = published
    spec = specs["kd+DS", 1]
    # a record with three epochs, on a noisy dataset, to see the list column and the noise columns
    noisy = make_spec("kd", "kd", "resnet20", "resnet8", 7, suite="s", dataset=NOISY)
    epochs = [EpochRecord(epoch=e, lr=0.05, train_loss=1.0, train_top1=50.0, test_top1=t, epoch_time_s=1.0,
                          train_images_per_s=100.0) for e, t in ((1, 40.0), (2, 55.5), (3, 52.0))]
    store.write_record(noisy, make_record(noisy, 55.5, 52.0).model_copy(update={"metrics": epochs, "best_epoch": 2}))
    table = runs_table(published_files(store))
    frame = table.to_pandas()
    assert len(frame) == 9 and list(frame.columns) == [c.name for c in COLUMNS]
    assert list(frame["path"]) == sorted(frame["path"])
    row = frame.set_index("key").loc[spec.key]
    assert row["path"] == f"raw/s/{spec.key}/record.json"
    assert (row["label"], row["method"], row["teacher"], row["student"], row["seed"]) == ("kd+DS", "kd", "resnet20",
                                                                                          "resnet8", 1)
    assert row["pair"] == "resnet20 → resnet8" and row["best_top1"] == 87.0 and row["last_top1"] == 86.0
    assert row["ds"] and row["ds_estimator"] == "influence" and row["ds_fraction"] == 0.8
    assert row["ds_order"] == "highest" and row["ds_params"] == '{"score":"self"}'
    assert not row["lr"] and pd.isna(row["lr_name"]) and pd.isna(row["lr_lambda1"])
    assert row["dataset_params"] == '{"image_size":8}' and row["noise_rate"] == 0.0 and pd.isna(row["noise_kind"])
    assert row["recipe_epochs"] == 1 and row["recipe_batch_size"] == 32 and row["recipe_lr"] == 0.05
    assert list(row["recipe_milestones"]) == [] and row["recipe_weight_decay"] == 5e-4
    assert row["teacher_top1"] == 95.0 and row["wall_time_s"] == 1800.0
    assert row["finished_at"] == pd.Timestamp("2023-11-14 22:13:20.5", tz="UTC")
    assert (row["host"], row["device"], row["device_name"], row["executor"]) == ("testhost", "cpu", "test CPU",
                                                                                 "serial")
    assert row["torch_version"] == "test" and pd.isna(row["git_revision"]) and row["replaced"] == 0
    lr_row = frame.set_index("key").loc[specs["kd+LR", 0].key]
    assert lr_row["lr"] and lr_row["lr_name"] == "paper" and lr_row["lr_params"] == '{"eta":0.8}'
    assert (lr_row["lr_lambda1"], lr_row["lr_lambda2"]) == (1.0, 2.0) and not lr_row["ds"]
    scratch = frame.set_index("key").loc[specs["ce", 0].key]
    assert pd.isna(scratch["teacher"]) and scratch["pair"] == "- → resnet8" and pd.isna(scratch["teacher_top1"])
    noisy_row = frame.set_index("key").loc[noisy.key]
    assert list(noisy_row["test_top1_per_epoch"]) == [40.0, 55.5, 52.0] and noisy_row["best_epoch"] == 2
    assert (noisy_row["noise_rate"], noisy_row["noise_kind"], noisy_row["noise_seed"]) == (0.2, "symmetric", 3)


def test_the_file_keeps_its_schema_and_descriptions(published, tmp_path):
    store, _ = published
    path = write_runs_table(store.root, published_files(store))
    assert path == store.root / "runs.parquet"
    schema = pq.read_schema(path)
    assert schema.names == [c.name for c in COLUMNS]
    assert schema.pandas_metadata is None  # no pandas index or metadata: the table is Arrow's own
    assert str(schema.field("finished_at").type) == "timestamp[us, tz=UTC]"
    per_epoch = schema.field("test_top1_per_epoch").type
    assert pa.types.is_list(per_epoch) and per_epoch.value_type == pa.float64()
    assert not schema.field("best_top1").nullable and schema.field("teacher").nullable
    assert schema.field("ds_fraction").metadata[b"description"].startswith(b"the fraction of the training set")


def test_same_records_give_the_same_bytes(published):
    store, specs = published
    files = published_files(store)
    shuffled = files[:]
    random.Random(0).shuffle(shuffled)
    first = parquet_bytes(runs_table(files))
    assert parquet_bytes(runs_table(shuffled)) == first  # the order files come in does not matter
    spec = specs["kd", 0]
    store.write_record(spec, record(spec, 99.0, teacher_top1=95.0))
    assert parquet_bytes(runs_table(published_files(store))) != first


def test_a_run_under_two_suites_has_a_row_under_each(published):
    store, specs = published
    spec = specs["kd", 0]
    other = make_spec("kd", "kd", "resnet20", "resnet8", 0, suite="t")
    assert other.key == spec.key
    store.write_record(other, record(other, 83.0, teacher_top1=95.0))
    files = published_files(store)
    frame = runs_table(files).to_pandas()
    assert len(frame) == 9 and sorted(frame[frame["key"] == spec.key]["suite"]) == ["s", "t"]
    assert len(one_per_run(files)) == 8


def test_the_readme_schema_block_is_the_generated_one():
    """Fails until README.md carries the block that ``python -m kdbench.tables.runs_table`` prints."""
    text = README.read_text()
    found = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    assert found is not None, f"README.md has no {START} … {END} block"
    assert found.group(0) == schema_markdown()


# The README's examples, verbatim (tests below check that the README carries them, and run them).
PANDAS_EXAMPLE = '''\
import pandas as pd

runs = pd.read_parquet("results/runs.parquet").drop_duplicates("key")  # a run under two suites counts once
table = runs.groupby(["dataset", "pair", "label"])["best_top1"].agg(["mean", "std", "count"])
print(table.round(2))
'''
DUCKDB_EXAMPLE = '''\
import duckdb

best = duckdb.sql("""
    SELECT label, pair, count(*) AS seeds, round(avg(best_top1), 2) AS mean_best_top1,
           round(sum(wall_time_s) / 3600, 3) AS hours
    FROM 'results/runs.parquet'
    WHERE noise_rate = 0 AND teacher IS NOT NULL
    GROUP BY label, pair
    ORDER BY mean_best_top1 DESC, label
""")
best.show()
'''


@pytest.mark.parametrize("example", [PANDAS_EXAMPLE, DUCKDB_EXAMPLE], ids=["pandas", "duckdb"])
def test_the_readme_carries_the_examples(example):
    """Fails until README.md carries the examples below (the lead pastes them with the schema block)."""
    assert example in README.read_text()


@pytest.fixture
def results_cwd(published, monkeypatch):
    store, _ = published
    write_runs_table(store.root, published_files(store))
    monkeypatch.chdir(store.root.parent)
    return store


def test_the_pandas_example(results_cwd, capsys):
    scope: dict = {}
    exec(PANDAS_EXAMPLE, scope)
    table = scope["table"]
    assert len(table) == len(RUNS)
    for (label, _, teacher), accs in RUNS.items():
        pair = f"{teacher or '-'} → resnet8"
        mean, std, count = table.loc[("digits", pair, label)]
        assert mean == pytest.approx(statistics.mean(accs)) and std == pytest.approx(statistics.stdev(accs))
        assert count == 2
    assert "kd+DS" in capsys.readouterr().out


def test_the_duckdb_example(results_cwd, capsys):
    pytest.importorskip("duckdb")
    scope: dict = {}
    exec(DUCKDB_EXAMPLE, scope)
    rows = scope["best"].fetchall()
    want = sorted(((label, f"{teacher} → resnet8", 2, round(statistics.mean(accs), 2), round(2 * 1800 / 3600, 3))
                   for (label, _, teacher), accs in RUNS.items() if teacher), key=lambda r: (-r[3], r[0]))
    assert rows == want
    assert "kd+DS" in capsys.readouterr().out


def test_publish_and_leaderboard_write_the_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = RunStore(tmp_path / "runs")
    specs = publish(runs)
    runs.write_suite_info(SuiteInfo(name="s", table={"metric": "best", "layout": "method_pair"}))
    assert main(["publish", "s", "--runs", "runs"]) == 0
    parquet = tmp_path / "results" / "runs.parquet"
    frame = pd.read_parquet(parquet)
    assert sorted(frame["key"]) == sorted(spec.key for spec in specs.values())
    digest = hashlib.sha256(parquet.read_bytes()).hexdigest()
    parquet.unlink()
    assert main(["leaderboard"]) == 0
    assert hashlib.sha256(parquet.read_bytes()).hexdigest() == digest
    assert json.loads(frame.loc[frame["label"] == "kd+DS", "ds_params"].iloc[0]) == {"score": "self"}


def test_the_schema_module_prints_the_block(capsys):
    print_schema()
    out = capsys.readouterr().out
    assert out == schema_markdown() + "\n"
    assert out.count("\n| `") == len(COLUMNS) and "| `finished_at` | timestamp[us, tz=UTC] |" in out

