"""Published numbers as data, Welch's test, and yours beside the published: the reproduction gap in every table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kdbench.plan import ComponentRef, DatasetRef, RevisionSpec, SelectionSpec
from kdbench.registry import load_registry
from kdbench.store import RunStore
from kdbench.tables import write_suite_tables
from kdbench.tables.cells import format_delta, welch_p
from kdbench.tables.recipes import RECIPES_CSV, default_recipe, recipe_name
from kdbench.tables.reference import SIGNATURE, load_reference, paper_comparison
from tests.records import make_record, make_spec


def two_sided_tail(t: float, df: float, steps: int = 20_000) -> float:
    """P(|T| > |t|) for Student's t with ``df`` degrees of freedom: 1 − 2∫_0^|t| density, by Simpson's rule."""
    norm = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    density = [norm * (1 + (abs(t) * k / steps) ** 2 / df) ** (-(df + 1) / 2) for k in range(steps + 1)]
    integral = abs(t) / steps / 3 * (density[0] + density[-1] + 4 * sum(density[1:-1:2]) + 2 * sum(density[2:-1:2]))
    return 1 - 2 * integral


def test_welch_on_a_hand_made_example():
    """a = (1, 2, 3), b = (4, 5, 6): means 2 and 5, variances 1, so t = −3/√(2/3) and Welch's df = 4; with 4
    degrees of freedom the two-sided tail has the closed form 1 − u(1 + (1 − u²)/2), u = |t|/√(t² + 4)."""
    t = 3 / math.sqrt(2 / 3)
    u = t / math.sqrt(t * t + 4)
    by_hand = 1 - u * (1 + (1 - u * u) / 2)
    assert by_hand == pytest.approx(0.02131, abs=1e-5)
    assert welch_p((2.0, 1.0, 3), (5.0, 1.0, 3)) == pytest.approx(by_hand, rel=1e-9)
    # unequal spreads and sizes: t and Welch–Satterthwaite's df by hand, the tail by integrating Student's density
    v1, v2 = 1.0 / 3, 4.0 / 5
    t, df = (2.0 - 5.0) / math.sqrt(v1 + v2), (v1 + v2) ** 2 / (v1 * v1 / 2 + v2 * v2 / 4)
    assert welch_p((2.0, 1.0, 3), (5.0, 2.0, 5)) == pytest.approx(two_sided_tail(t, df), rel=1e-6)
    assert math.isnan(welch_p((2.0, 1.0, 1), (5.0, 1.0, 3)))  # one run: no test
    assert math.isnan(welch_p((2.0, 0.0, 3), (2.0, 0.0, 3)))  # no spread: no test
    assert format_delta(-3.0, by_hand) == "-3.00*" and format_delta(-3.0, 0.2) == "-3.00"


def test_the_published_numbers_are_complete_and_name_real_components():
    ref = load_reference()
    registry = load_registry()
    models = set(registry.names("model"))
    assert set(ref["teacher"]) <= models and set(ref["student"]) <= models
    assert set(ref["method"]) - {"teacher"} <= set(registry.names("method"))
    assert set(ref.loc[ref["ds_estimator"] != "", "ds_estimator"]) <= set(registry.names("estimator"))
    cifar = ref[ref["dataset"] == "cifar100"]
    in_table = cifar["tables"].str.split(";")
    for table in ("V", "VI"):  # 5 pairs × 9 methods × OA and LDA
        assert in_table.map(lambda names, t=table: t in names).sum() == 5 * 9 * 2, table
    kd_ours = cifar[(cifar["method"] == "kd") & (cifar["lr_lambda1"] == "4") & (cifar["student"] == "resnet8x4")]
    assert kd_ours["top1"].tolist() == [76.60] and set(kd_ours["tables"].iloc[0].split(";")) == {"IV", "VIII"}
    assert not ref.duplicated(["dataset", "teacher", "student", *SIGNATURE, "source"]).any()
    assert set(ref["recipe"]) <= set(pd.read_csv(RECIPES_CSV)["name"])  # every number names a known recipe
    pair = (cifar["teacher"] == "wrn_40_2") & (cifar["student"] == "wrn_40_1")
    wrn_teacher = cifar[pair & (cifar["method"] == "teacher")]
    assert dict(zip(wrn_teacher["source"], wrn_teacher["top1"], strict=True)) == {
        "paper": 76.31, "reference implementations": 75.61}  # the paper prints its own, docs/methods.md §8


def cifar_record(store, label, method, seed, acc, teacher="resnet32x4", student="resnet8x4", **fields):
    spec = make_spec(label, method, teacher, student, seed, suite="cifar", **fields)
    spec = type(spec)(**{**spec.__dict__, "dataset": DatasetRef("cifar100", {}, "1")})
    store.write_record(spec, make_record(spec, acc, acc, teacher_top1=79.0).model_copy(update={"dataset": "cifar100"}))


def test_suite_tables_show_the_published_number_beside_ours(tmp_path):
    store = RunStore(tmp_path)
    ds = SelectionSpec(0.8, "highest", ComponentRef("influence", {}, "1"))
    lr = RevisionSpec(ComponentRef("paper", {"eta": 0.8}, "1"), lambda1=4.0)
    for seed, acc in enumerate([74.0, 75.0, 76.0]):
        cifar_record(store, "Vanilla KD", "kd", seed, acc, order=(0, 1))
        cifar_record(store, "Our", "kd", seed, acc + 2, selection=ds, revision=lr, order=(0, 2))
    table, paths = write_suite_tables(store.suite_dir("cifar"), tmp_path / "out", layout="vanilla")
    assert "#### Published vs ours" in table.markdown
    paper = pd.read_csv(tmp_path / "out" / "paper.csv").set_index("row")
    assert paper.loc["KD", "paper"] == 74.12 and paper.loc["KD", "mean"] == 75.0
    assert paper.loc["KD+LR+DS (λ1 = 4)", "paper"] == 76.60
    assert paper.loc["KD+LR+DS (λ1 = 4)", "delta"] == pytest.approx(77.0 - 76.60)
    assert paper.loc["Teacher", "paper"] == 79.42 and paper.loc["Teacher", "mean"] == 79.0
    (line,) = [line for line in table.markdown.splitlines() if "KD+LR+DS (λ1 = 4)" in line]
    assert [cell.strip() for cell in line.strip("|").split("|")][:5] == [
        "resnet32x4 → resnet8x4", "KD+LR+DS (λ1 = 4)", "77.00 ± 1.00", "76.60", "+0.40"]


def test_digits_runs_have_no_published_numbers(tmp_path):
    store = RunStore(tmp_path)
    spec = make_spec("kd", "kd", "resnet20", "resnet8", 0)
    store.write_record(spec, make_record(spec, 90.0, 89.0))
    table, _ = write_suite_tables(store.suite_dir("s"), tmp_path / "out")
    assert "Published vs ours" not in table.markdown and not (tmp_path / "out" / "paper.csv").exists()
    assert paper_comparison(pd.DataFrame()).empty


def test_runs_are_named_by_the_published_recipe_they_followed():
    crd = (240, 64, 0.05, (150, 180, 210), 5e-4)
    assert recipe_name("cifar100", *crd) == "crd"
    assert recipe_name("cifar100", 240, 64, 0.01, (150, 180, 210), 5e-4) == "crd"  # a MobileNet/ShuffleNet student
    assert recipe_name("cifar100", 480, 64, 0.025, (150, 180, 210), 5e-4) == "mlkd"
    assert recipe_name("cifar100", 480, 64, 0.0025, (150, 180, 210), 5e-4) == "mlkd"  # its MobileNet students
    assert recipe_name("cifar100", 240, 64, 0.025, (150, 180, 210), 5e-4) == ""
    assert recipe_name("cifar100", 3, 64, 0.05, (1,), 5e-4) == ""  # a shortened run follows none
    assert recipe_name("imagenet", *crd) == ""  # recipes are per dataset
    assert recipe_name("imagenet", 100, 256, 0.1, (30, 60, 90), 1e-4) == "imagenet100"
    assert default_recipe("cifar100") == "crd" and default_recipe("digits") == ""


def test_a_published_number_is_matched_by_recipe_and_logit_standardization():
    """MLKD+LS (78.28) and KD+LS (76.62) were published on their own recipes: a run is compared with the number
    of its method, its logit_std and its recipe, and a run on no published recipe with the default one's."""
    base = {"dataset": "cifar100", "teacher": "resnet32x4", "student": "resnet8x4", "teacher_top1": 79.0,
            **{c: None for c in ("ds_estimator", "ds_fraction", "ds_order", "lr_name", "lr_eta", "lr_lambda1",
                                 "lr_lambda2")}}
    runs = pd.DataFrame([
        {**base, "method": "mlkd", "recipe": "mlkd", "logit_std": True, "best_top1": 78.0, "label": "a"},
        {**base, "method": "mlkd", "recipe": "mlkd", "logit_std": False, "best_top1": 77.0, "label": "b"},
        {**base, "method": "kd", "recipe": "", "logit_std": True, "best_top1": 76.0, "label": "c"},
        {**base, "method": "kd", "recipe": "crd", "logit_std": False, "best_top1": 74.0, "label": "d"},
        {**base, "method": "mlkd", "recipe": "crd", "logit_std": True, "best_top1": 70.0, "label": "e"},
    ])
    found = paper_comparison(runs).set_index("row")
    assert found.loc["MLKD+LS", "paper"] == 78.28 and found.loc["MLKD+LS", "mean"] == 78.0
    assert found.loc["MLKD", "paper"] == 77.08 and found.loc["MLKD", "mean"] == 77.0
    assert found.loc["KD+LS", "paper"] == 76.62 and found.loc["KD+LS", "mean"] == 76.0  # no recipe name: CRD's
    assert found.loc["KD", "paper"] == 74.12 and found.loc["KD", "mean"] == 74.0
    assert 70.0 not in set(found["mean"])  # MLKD+LS on the CRD recipe has no published number


def test_the_suite_table_shows_mlkd_ls_beside_its_number_only_on_its_recipe(tmp_path):
    """Through write_suite_tables, as `kdbench tables` runs it: MLKD+LS on MLKD's recipe (480 epochs, lr 0.025)
    gets the published 78.28 in the published block; the same method on the CRD recipe gets none."""
    from dataclasses import replace

    from tests.records import RECIPE

    mlkd_recipe = replace(RECIPE, epochs=480, batch_size=64, lr=0.025, milestones=(150, 180, 210),
                          weight_decay=5e-4)
    store = RunStore(tmp_path)
    for seed, acc in enumerate([78.0, 78.5, 79.0]):
        spec = make_spec("MLKD+LS", "mlkd", "resnet32x4", "resnet8x4", seed, suite="sota", order=(0, 1))
        spec = replace(spec, dataset=DatasetRef("cifar100", {}, "1"), recipe=mlkd_recipe,
                       method=ComponentRef("mlkd", {"T": 2.0, "alpha": 9.0, "logit_std": True}, "1"))
        store.write_record(spec, make_record(spec, acc, acc, teacher_top1=79.0).model_copy(
            update={"dataset": "cifar100"}))
    table, _ = write_suite_tables(store.suite_dir("sota"), tmp_path / "out")
    paper = pd.read_csv(tmp_path / "out" / "paper.csv").set_index("row")
    assert paper.loc["MLKD+LS", "paper"] == 78.28 and paper.loc["MLKD+LS", "mean"] == pytest.approx(78.5)
    assert "MLKD" not in paper.index  # the run standardizes its logits: plain MLKD's 77.08 is not its number
    other = RunStore(tmp_path / "crd")
    spec = make_spec("MLKD+LS", "mlkd", "resnet32x4", "resnet8x4", 0, suite="sota", order=(0, 1))
    crd = replace(RECIPE, epochs=240, batch_size=64, lr=0.05, milestones=(150, 180, 210), weight_decay=5e-4)
    spec = replace(spec, dataset=DatasetRef("cifar100", {}, "1"), recipe=crd,
                   method=ComponentRef("mlkd", {"T": 2.0, "alpha": 9.0, "logit_std": True}, "1"))
    record = make_record(spec, 78.0, 78.0, teacher_top1=79.0).model_copy(update={"dataset": "cifar100"})
    other.write_record(spec, record)
    write_suite_tables(other.suite_dir("sota"), tmp_path / "out_crd")
    crd_paper = pd.read_csv(tmp_path / "out_crd" / "paper.csv").set_index("row")
    assert "MLKD+LS" not in crd_paper.index and "Teacher" in crd_paper.index
