"""Suite files: validation errors name file, line and field; the cross product is right."""

from __future__ import annotations

import pytest

from kdbench.errors import KdbenchError
from kdbench.plan import expand, load_suite

GOOD = """
    name: tiny
    dataset: {name: synthetic, params: {num_train: 64, num_test: 32, image_size: 16}}
    recipe: {epochs: 2, milestones: [1], batch_size: 32}
    seeds: [0, 1]
    pairs:
      - {teacher: resnet20, student: resnet8}
      - {teacher: resnet14, student: resnet8}
      - {teacher: resnet20, student: MobileNetV2}
    methods:
      - ce
      - kd
      - {name: kd, label: kd_T2, params: {T: 2}}
"""


def test_cross_product_and_dedup(write_suite, registry):
    plan = expand(load_suite(write_suite(GOOD)), registry)
    # ce runs do not depend on the teacher: resnet8 twice + MobileNetV2 once, per seed
    ce = [r for r in plan.runs if r.method.name == "ce"]
    assert len(ce) == 2 * 2
    assert len(plan.runs) == 2 * 3 * 2 + len(ce)
    assert len({r.key for r in plan.runs}) == len(plan.runs)
    assert {t.arch for t in plan.teachers} == {"resnet20", "resnet14"}
    kd2 = next(r for r in plan.runs if r.label == "kd_T2")
    assert kd2.method.params == {"T": 2, "gamma": 0.1, "alpha": 0.9}
    mobile = next(r for r in plan.runs if r.student == "MobileNetV2")
    assert mobile.recipe.lr == 0.01  # the small-student rule is resolved into the spec


def test_keys_are_stable_and_content_based(write_suite, registry, tmp_path):
    a = expand(load_suite(write_suite(GOOD)), registry)
    b = expand(load_suite(write_suite(GOOD.replace("name: tiny", "name: other"), "other.yaml")), registry)
    assert [r.key for r in a.runs] == [r.key for r in b.runs]  # suite name and file are not content
    c = expand(load_suite(write_suite(GOOD.replace("epochs: 2", "epochs: 3"), "c.yaml")), registry)
    assert not {r.key for r in a.runs} & {r.key for r in c.runs}


def test_spec_round_trips_through_json(write_suite, registry):
    import json

    from kdbench.plan import RunSpec

    plan = expand(load_suite(write_suite(GOOD)), registry)
    for spec in plan.runs:
        back = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert back == spec and back.key == spec.key


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("dataset: digits\npairs: [{student: resnet8}]\nmethods: [ce]\nrecipe: {epochs: zero}\n",
         r"suite.yaml:4: recipe.epochs: Input should be a valid integer"),
        ("dataset: digits\npairs:\n  - {student: resnet8}\nmethods: [ce]\nseed: [1]\n",
         r"suite.yaml:5: seed: Extra inputs are not permitted"),
        ("dataset: digits\npairs: []\nmethods: [ce]\n", r"suite.yaml:2: pairs: List should have at least 1"),
        ("dataset: digits\nmethods: [ce]\n", r"suite.yaml:1: pairs: Field required"),
        ("dataset: digits\npairs: [{student: resnet8\nmethods: [ce]\n", r"suite.yaml:3: not valid YAML"),
        ("- just\n- a list\n", r"suite.yaml:1: a suite file must be a mapping"),
    ],
)
def test_schema_errors_name_file_line_and_field(write_suite, text, pattern):
    with pytest.raises(KdbenchError, match=pattern):
        load_suite(write_suite(text))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods:\n  - ce\n  - kdd\n",
         r"suite.yaml:5: unknown method 'kdd'; did you mean 'kd'"),
        ("dataset: digitz\npairs: [{student: resnet8}]\nmethods: [ce]\n",
         r"suite.yaml:1: unknown dataset 'digitz'; did you mean 'digits'"),
        ("dataset: digits\npairs:\n  - {teacher: resnet20, student: resnet9}\nmethods: [ce]\n",
         r"suite.yaml:3: unknown model 'resnet9'"),
        ("dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods:\n  - {name: kd, params: {t: 3}}\n",
         r"suite.yaml:4: method 'kd' has no parameter 't'; did you mean 'T'"),
        ("dataset: digits\npairs: [{student: resnet8}]\nmethods: [kd]\n",
         r"method 'kd' needs a teacher but pair 0 has none"),
        ("dataset: digits\npairs:\n  - {teacher: resnet20, student: resnet8, checkpoint: nope.pth}\nmethods: [kd]\n",
         r"suite.yaml:3: checkpoint not found: .*nope.pth"),
    ],
)
def test_semantic_errors_name_file_line(write_suite, registry, text, pattern):
    with pytest.raises(KdbenchError, match=pattern):
        expand(load_suite(write_suite(text)), registry)


def test_missing_suite_file(tmp_path):
    with pytest.raises(KdbenchError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_shipped_suites_expand(registry):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "suites"
    quick = expand(load_suite(root / "quickstart.yaml"), registry)
    assert {r.method.name for r in quick.runs} >= {"ce", "kd", "mse_kd"}
    cifar = expand(load_suite(root / "cifar100_kd.yaml"), registry)
    kd_runs = [r for r in cifar.runs if r.method.name == "kd"]
    assert len(kd_runs) == 10 * 3
    assert all(r.recipe.epochs == 240 and r.recipe.batch_size == 64 for r in cifar.runs)


def test_teacher_recipe_overrides_are_validated(write_suite, registry):
    text = "dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods: [kd]\n"
    plan = expand(load_suite(write_suite(text + "teacher_recipe: {epochs: 7}\n")), registry)
    assert plan.teachers[0].recipe.epochs == 7 and plan.runs[0].recipe.epochs == 240
    with pytest.raises(KdbenchError, match=r"b.yaml:5: teacher_recipe.epoch: Extra inputs"):
        expand(load_suite(write_suite(text + "teacher_recipe:\n  epoch: 7\n", "b.yaml")), registry)


def test_a_method_entry_trains_with_its_own_recipe_overrides(write_suite, registry):
    """A method published with its own recipe runs with it beside the suite's; the other entries, their keys
    and the teachers keep the suite's recipe; a bad override names its line."""
    text = ("dataset: digits\nrecipe: {epochs: 5, milestones: [3]}\npairs: [{teacher: resnet20, student: resnet8}]\n"
            "methods:\n  - kd\n  - {name: kd, label: kd_long, recipe: {epochs: 9, milestones: [6, 8]}}\n")
    plan = expand(load_suite(write_suite(text)), registry)
    by_label = {r.label: r for r in plan.runs}
    assert by_label["kd"].recipe.epochs == 5 and by_label["kd_long"].recipe.epochs == 9
    assert by_label["kd_long"].recipe.milestones == (6, 8) and by_label["kd_long"].recipe.lr == by_label["kd"].recipe.lr
    plain = expand(load_suite(write_suite(text.split("  - {name")[0], "plain.yaml")), registry)
    assert plain.runs[0].key == by_label["kd"].key  # an entry without overrides keeps its key
    assert plan.teachers[0].recipe.epochs == 5
    bad = text.replace("epochs: 9", "epoch: 9")
    with pytest.raises(KdbenchError, match=r"c.yaml:6: recipe.epoch: Extra inputs"):
        expand(load_suite(write_suite(bad, "c.yaml")), registry)
