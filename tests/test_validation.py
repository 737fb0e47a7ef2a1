"""Component parameters are validated, not trusted: wrong values end in one line and exit 2, never a traceback.

Every registered component's parameters are fed values of the wrong type through a suite file, and
suite files themselves are fuzzed; whatever happens, ``kdbench run --dry-run`` answers 0 or one line
with exit code 2. Which values are "of the wrong type" is worked out here from the type hints alone,
independently of the validator under test.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdbench.cli import main
from kdbench.registry import load_registry

REGISTRY = load_registry()

# Where a component's parameters go in a suite file, per kind (models and executors take none from users).
BASE = {"name": "fuzz", "dataset": {"name": "digits", "params": {"image_size": 8, "val_fraction": 0.1}},
        "recipe": {"epochs": 1, "milestones": []}, "pairs": [{"teacher": "resnet20", "student": "resnet8"}],
        "methods": ["kd"]}


def suite_with(kind: str, name: str, params: dict) -> dict:
    suite = json.loads(json.dumps(BASE))
    if kind == "dataset":
        suite["dataset"] = {"name": name, "params": params}
    elif kind == "method":
        suite["methods"] = [{"name": name, "params": params}]
    elif kind == "estimator":
        suite["methods"] = [{"name": "kd", "selection": {"estimator": name, "params": params}}]
    elif kind == "revision":
        suite["methods"] = [{"name": "kd", "revision": {"name": name, "params": params}}]
    elif kind == "logger":
        suite["loggers"] = [{"name": name, "params": params}]
    else:
        raise AssertionError(kind)
    return suite


KIND_OF_VALUE = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def accepted(hint: object) -> set[str]:
    """The JSON kinds a hint accepts (an int is a number; a bool is not an int; a list stands for a tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(accepted(a) for a in args))
    if origin is typing.Literal:
        return {KIND_OF_VALUE[type(a)] for a in args}
    if hint is type(None):
        return {"null"}
    if hint is float:
        return {"int", "float"}
    if hint in (int, str, bool):
        return {hint.__name__}
    if origin in (list, tuple) or hint in (list, tuple):
        return {"list"}
    if origin is dict or hint is dict:
        return {"dict"}
    return set(KIND_OF_VALUE.values())  # anything else: not judged here


def typed_parameters() -> list[tuple[str, str, str, object]]:
    out = []
    for comp in REGISTRY:
        if comp.kind in ("model", "executor"):
            assert not comp.parameters() or comp.kind == "executor", comp.name
            continue
        out += [(comp.kind, comp.name, key, hint) for key, hint in comp.hints().items()]
    return out


PARAMETERS = typed_parameters()
WRONG_EXAMPLES = {"null": None, "bool": True, "int": 7, "float": 0.5, "str": "1e-3", "list": [0.8], "dict": {"a": 1}}


def run_dry(path: Path, tmp_path: Path, capsys) -> tuple[int, list[str]]:
    code = main(["run", str(path), "--dry-run", "--runs", str(tmp_path / "r")])
    return code, capsys.readouterr().err.strip().splitlines()


def test_every_user_parameter_has_a_type_hint():
    for comp in REGISTRY:
        missing = set(comp.parameters()) - set(comp.hints())
        assert not missing, f"{comp.kind} {comp.name!r} has parameters without a type hint: {missing}"


@pytest.mark.parametrize(("kind", "name", "key", "hint"), PARAMETERS, ids=[f"{k}-{n}-{p}" for k, n, p, _ in PARAMETERS])
def test_each_parameter_rejects_every_wrong_kind(kind, name, key, hint, tmp_path, capsys):
    wrong = [kind_ for kind_ in WRONG_EXAMPLES if kind_ not in accepted(hint)]
    assert wrong, f"{kind} {name}.{key}: the hint {hint} accepts everything"
    for value_kind in wrong:
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(suite_with(kind, name, {key: WRONG_EXAMPLES[value_kind]})))
        code, lines = run_dry(path, tmp_path, capsys)
        assert code == 2 and len(lines) == 1 and lines[0].startswith("kdbench: error: "), (value_kind, lines)
        assert "suite.yaml:" in lines[0] and repr(key) in lines[0], lines


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_wrong_values_for_every_component_exit_2(data, tmp_path, capsys):
    kind, name, key, hint = data.draw(st.sampled_from(PARAMETERS))
    ok = accepted(hint)
    value = data.draw(json_values.filter(lambda v: KIND_OF_VALUE[type(v)] not in ok))
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite_with(kind, name, {key: value})))
    code, lines = run_dry(path, tmp_path, capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("kdbench: error: "), lines


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every location in a nested suite: mapping keys and list positions."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replace(node: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, *rest = path
    copy = list(node) if isinstance(node, list) else dict(node)
    copy[head] = _replace(copy.get(head) if isinstance(copy, dict) else copy[head], tuple(rest), value)
    return copy


FUZZ_BASE = {**BASE, "methods": ["ce", {"name": "kd", "params": {"T": 2.0}, "selection": {"estimator": "influence"},
                                        "revision": {"name": "paper", "params": {"eta": 0.8}}}],
             "seeds": [0], "teacher_recipe": {"epochs": 1}, "table": {"metric": "best"}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_suite_files_never_end_in_a_traceback(data, tmp_path, capsys):
    """Any location of a valid suite replaced by any YAML value (or a key added): exit 0, or 2 with one line."""
    suite = FUZZ_BASE
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(_paths(suite)))
        if data.draw(st.booleans()) or not where:
            parent = where if isinstance(_get(suite, where), dict) else where[:-1]
            if isinstance(_get(suite, parent), dict):
                key = data.draw(st.text(max_size=6) | st.sampled_from(["params", "label", "name", "fraction"]))
                suite = _replace(suite, (*parent, key), data.draw(json_values))
                continue
        suite = _replace(suite, where, data.draw(json_values))
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, allow_unicode=True))
    code, lines = run_dry(path, tmp_path, capsys)
    assert code in (0, 2)
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("kdbench: error: "), lines


def _get(node: object, path: tuple) -> object:
    for part in path:
        node = node[part]
    return node


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"dataset: digits\npairs: [{student: resnet8}]\nmethods: [ce]\n# caf\xe9\n", "suite.yaml:4: not UTF-8 text"),
        ("dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods:\n"
         "  - {name: kd, revision: {name: paper, params: {eta: [0.8]}}}\n",
         "suite.yaml:4: revision 'paper': parameter 'eta' must be a number or a string, got [0.8]"),
        ("dataset: {name: synthetic, params: {num_train: \"1e-3\"}}\npairs: [{student: resnet8}]\nmethods: [ce]\n",
         "suite.yaml:1: dataset 'synthetic': parameter 'num_train' must be an integer, got '1e-3'"),
        ("dataset: {name: synthetic, params: {num_classes: null}}\npairs: [{student: resnet8}]\nmethods: [ce]\n",
         "suite.yaml:1: dataset 'synthetic': parameter 'num_classes' must be an integer, got None"),
        ("dataset: {name: synthetic, params: {num_classes: 1e6}}\npairs: [{student: resnet8}]\nmethods: [ce]\n",
         "suite.yaml:1: dataset 'synthetic': parameter 'num_classes' must be an integer, got '1e6'"),
        ("dataset: digits\npairs: [{student: resnet8}]\nmethods: [ce]\nrecipe:\n  eval_batch_size: 256\n",
         "suite.yaml:5: recipe.eval_batch_size was removed"),
        ("name: ../escape\ndataset: digits\npairs: [{student: resnet8}]\nmethods: [ce]\n",
         "suite.yaml:1: name: Value error, a suite name may use letters"),
        ("dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods:\n"
         "  - {name: crd, params: {momentum: 2}}\n", "suite.yaml:4: crd: momentum must lie in [0, 1], got 2"),
    ],
    ids=["not-utf8", "eta-list", "num_train-string", "num_classes-null", "num_classes-1e6", "removed-field",
         "name-escapes", "value-rejected"],
)
def test_failing_inputs_found_by_fuzzing_exit_2_with_one_line(text, message, tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, lines = run_dry(path, tmp_path, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("kdbench: error: ") and message in lines[0], lines


def test_dataset_values_a_loader_rejects_are_one_line(tmp_path):
    """Values of the right type that a dataset cannot use fail when it is built, with a KdbenchError."""
    from kdbench.errors import KdbenchError
    from kdbench.plan import ComponentRef
    from kdbench.run.components import Components
    from kdbench.run.options import RunOptions

    components = Components(RunOptions(runs_root=str(tmp_path), device="cpu"))
    for params in ({"num_classes": 1_000_000}, {"num_train": 0}, {"image_size": 100_000}, {"val_fraction": 1.5}):
        with pytest.raises(KdbenchError, match="synthetic"):
            components.dataset(ComponentRef("synthetic", params))
