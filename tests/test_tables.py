"""Tables come from run records only; cells are mean ± sample std over seeds."""

from __future__ import annotations

import statistics

from kdbench.store import RunStore
from kdbench.tables import method_pair_table, results_frame, write_suite_tables
from tests.records import make_record, make_spec


def record(tmp, label, method, teacher, student, seed, best, last, teacher_top1=None, order=(0, 0)):
    spec = make_spec(label, method, teacher, student, seed, order=order)
    RunStore(tmp).write_record(spec, make_record(spec, best, last, teacher_top1))


def test_table_cells_by_hand(tmp_path):
    for seed, (b, last) in enumerate([(70.0, 69.0), (72.0, 71.5), (74.0, 70.0)]):
        record(tmp_path, "kd", "kd", "resnet32x4", "resnet8x4", seed, b, last, 79.42, order=(0, 1))
    for seed, b in enumerate([65.0, 66.0]):
        record(tmp_path, "ce", "ce", None, "resnet8x4", seed, b, b - 1, order=(0, 0))
    record(tmp_path, "kd", "kd", "wrn_40_2", "wrn_16_2", 0, 73.0, 72.0, 75.61, order=(1, 1))
    # an unfinished run's directory is ignored
    (tmp_path / "raw" / "s" / "half").mkdir()
    (tmp_path / "raw" / "s" / "half" / "failure.json").write_text("{}")

    frame = results_frame(tmp_path / "raw" / "s")
    assert len(frame) == 6
    table = method_pair_table(frame, metric="best")
    tidy = table.tidy.set_index(["row", "pair"])
    kd = tidy.loc[("kd", "resnet32x4 → resnet8x4")]
    assert kd["mean"] == 72.0 and kd["std"] == statistics.stdev([70.0, 72.0, 74.0]) and kd["n"] == 3
    assert tidy.loc[("Teacher", "resnet32x4 → resnet8x4")]["mean"] == 79.42
    scratch = tidy.loc[("Student (scratch)", "resnet32x4 → resnet8x4")]
    assert scratch["mean"] == 65.5 and scratch["n"] == 2
    assert tidy.loc[("Student (scratch)", "wrn_40_2 → wrn_16_2")]["n"] == 0
    lines = table.markdown.splitlines()
    header = next(line for line in lines if "resnet32x4 → resnet8x4" in line)
    assert header.index("resnet32x4") < header.index("wrn_40_2")  # suite order of pairs
    assert any(line.startswith("| kd") and "72.00 ± 2.00" in line and "73.00" in line for line in lines)
    assert any(line.startswith("| Teacher") and "79.42" in line for line in lines)
    last = method_pair_table(frame, metric="last").tidy.set_index(["row", "pair"])
    assert last.loc[("kd", "resnet32x4 → resnet8x4")]["mean"] == statistics.mean([69.0, 71.5, 70.0])


def test_written_tables(tmp_path):
    record(tmp_path, "kd", "kd", "resnet20", "resnet8", 0, 90.0, 89.0, 95.0)
    table, paths = write_suite_tables(tmp_path / "raw" / "s", tmp_path / "s")
    assert [p.name for p in paths] == ["table.md", "table.csv", "runs.csv", "time_accuracy_resnet20_resnet8.png"]
    assert paths[-1].read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "s" / "table.md").read_text() == table.markdown
    assert "kd,resnet20 → resnet8,best top-1 (%),90.0" in (tmp_path / "s" / "table.csv").read_text()
