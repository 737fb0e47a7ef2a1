"""The plugin registry: discovery, parameters, did-you-mean, third-party plugins."""

from __future__ import annotations

import textwrap

import pytest

from kdbench.contracts import DataValueEstimator, DistillationMethod, LossTerms, RunLogger, hookimpl
from kdbench.contracts.hookspecs import HOOK_KINDS, KINDS
from kdbench.errors import KdbenchError
from kdbench.registry import REQUIRED, Registry, load_registry
from kdbench.registry.kinds import CONTRACTS, contract_problem

BUILTIN = {
    "method": {"ce", "kd", "mse_kd"},
    "dataset": {"digits", "synthetic", "cifar10", "cifar100"},
    "executor": {"serial"},
    "logger": {"tensorboard", "wandb", "mlflow"},
}

THIRD_PARTY_METHOD = """
    from kdbench.contracts import hookimpl
    from kdbench.contracts import DistillationMethod, LossTerms, cross_entropy_per_sample


    class HalfCE(DistillationMethod):
        '''CE at half weight plus a teacher-logit L1 term: a throwaway third-party method.'''

        def __init__(self, weight: float = 0.5):
            super().__init__()
            self.weight = weight

        def loss_terms(self, step):
            ce = cross_entropy_per_sample(step.student_logits, step.targets)
            l1 = (step.student_logits - step.teacher_logits).abs().mean(dim=1)
            return LossTerms(sample={"ce": self.weight * ce, "l1": 0.01 * l1})


    @hookimpl
    def kdbench_register_methods(register):
        register("{name}", HalfCE, version="7")
"""


def write_plugin_file(path, name="half_ce"):
    path.write_text(textwrap.dedent(THIRD_PARTY_METHOD).replace("{name}", name))
    return path


def install_throwaway_package(root, monkeypatch, name="thirdparty_kd"):
    """A real distribution on sys.path: a package plus a dist-info with a `kdbench` entry point."""
    pkg = root / name
    pkg.mkdir()
    write_plugin_file(pkg / "__init__.py", name="entry_point_method")
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[kdbench]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(root))
    return name


def test_builtins_arrive_through_entry_points(registry):
    for kind, names in BUILTIN.items():
        assert names <= set(registry.names(kind)), kind
    assert len([n for n in registry.names("model") if not n.startswith("imagenet_")]) == 22
    assert registry.get("method", "kd").source == "builtin_methods"


def test_parameters_and_defaults_come_from_signatures(registry):
    kd = registry.get("method", "kd")
    # T and α default to None: 4 and 0.9, or with logit_std LS's 2 and 9 (filled in by resolve_params)
    assert kd.parameters() == {"T": None, "gamma": 0.1, "alpha": None, "logit_std": False}
    assert kd.resolve({"T": 2.0}) == {"T": 2.0, "gamma": 0.1, "alpha": None, "logit_std": False}
    assert "num_classes" not in registry.get("model", "resnet8").parameters()
    assert "root" not in registry.get("dataset", "digits").parameters()


def test_unknown_names_suggest_the_closest(registry):
    with pytest.raises(KdbenchError, match=r"unknown method 'kdd'.*did you mean 'kd'"):
        registry.get("method", "kdd")
    with pytest.raises(KdbenchError, match=r"did you mean 'resnet8x4'"):
        registry.get("model", "resnet8x5")
    with pytest.raises(KdbenchError, match=r"has no parameter 'temperature'"):
        registry.get("method", "kd").resolve({"temperature": 3})


def test_required_parameters_are_enforced():
    reg = Registry()

    class NeedsSize(DataValueEstimator):
        def __init__(self, size, scale=1.0):
            self.size, self.scale = size, scale

    reg.register("estimator", "needs_size", NeedsSize)
    assert reg.get("estimator", "needs_size").parameters()["size"] is REQUIRED
    with pytest.raises(KdbenchError, match="needs parameter 'size'"):
        reg.get("estimator", "needs_size").resolve({})


def test_duplicate_names_from_two_plugins_are_an_error():
    class A:
        @hookimpl
        def kdbench_register_methods(self, register):
            register("dup", DistillationMethod)

    class Other(DistillationMethod):
        pass

    class B:
        @hookimpl
        def kdbench_register_methods(self, register):
            register("dup", Other)

    with pytest.raises(KdbenchError, match="registered twice"):
        load_registry(plugins=[A(), B()], entry_points=False)


def test_single_file_plugin(tmp_path):
    path = write_plugin_file(tmp_path / "my_plugin.py")
    reg = load_registry([path])
    comp = reg.get("method", "half_ce")
    assert comp.version == "7" and comp.parameters() == {"weight": 0.5}
    assert comp.source.startswith("file:")


def test_broken_plugin_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import does_not_exist_anywhere\n")
    with pytest.raises(KdbenchError, match="broken.py failed to import: ModuleNotFoundError"):
        load_registry([bad])
    with pytest.raises(KdbenchError, match="plugin file not found"):
        load_registry([tmp_path / "missing.py"])


def test_entry_point_package_is_discovered(tmp_path, monkeypatch):
    install_throwaway_package(tmp_path, monkeypatch)
    reg = load_registry()
    assert reg.get("method", "entry_point_method").source == "thirdparty_kd"


def test_public_api(registry):
    import kdbench

    method = kdbench.get("method", "kd", T=2.0)
    assert method.T == 2.0
    model = kdbench.create_model("resnet8", num_classes=10)
    assert model.fc.out_features == 10 if hasattr(model, "fc") else True
    with pytest.raises(KdbenchError, match="did you mean"):
        kdbench.get("method", "dk")


# One plugin per kind whose component is not what its kind's contract asks: the body, the registered factory,
# and what the one-line error says about it.
BAD_COMPONENTS = {
    "method": (
        "class NotAMethod:\n    def loss_terms(self, step): ...",
        "NotAMethod",
        "as class NotAMethod, which is not a subclass of kdbench.contracts.DistillationMethod",
    ),
    "estimator": (
        "class Scorer:\n    higher_to_teacher = False\n    def score(self, inputs): ...",
        "Scorer",
        "as class Scorer, which is not a subclass of kdbench.contracts.DataValueEstimator",
    ),
    "revision": (
        "def revise(teacher_probs, targets):\n    return teacher_probs",
        "revise",
        "as function revise, which is not a subclass of kdbench.contracts.LabelRevision",
    ),
    "logger": (
        "class Printer:\n    def epoch(self, metrics): print(metrics)",
        "Printer",
        "as class Printer, which is not a subclass of kdbench.contracts.RunLogger",
    ),
    "model": ("class Net:\n    pass\nNET = Net()", "NET", "as an instance of Net, which is not callable"),
    "dataset": ("DATA = {'train': []}", "DATA", "as an instance of dict, which is not callable"),
    "executor": (
        "class Inline:\n    def execute(self, jobs): ...",
        "Inline",
        "as class Inline, which has no run() method",
    ),
}


def write_bad_plugin(path, kind, body, factory):
    hook = next(h for h, k in HOOK_KINDS.items() if k == kind)
    path.write_text(
        f"from kdbench.contracts import hookimpl\n{body}\n@hookimpl\ndef {hook}(register):\n"
        f"    register('bad', {factory})\n"
    )
    return path


def test_every_kind_has_one_contract_and_every_builtin_satisfies_it(registry):
    import kdbench.contracts

    assert set(CONTRACTS) == set(KINDS) == set(BAD_COMPONENTS)
    for contract in CONTRACTS.values():  # a base class is named by its public import path in messages
        assert contract.base is None or getattr(kdbench.contracts, contract.base.__name__) is contract.base
    for kind in KINDS:
        assert registry.names(kind), kind
    for comp in registry:
        assert contract_problem(comp.kind, comp.factory) is None, (comp.kind, comp.name)


def test_flags_are_read_off_the_factory(registry):
    assert registry.get("method", "ce").factory.uses_teacher is False
    assert registry.get("method", "kd").factory.uses_teacher is True
    assert registry.get("method", "fitnet").factory.needs_features is True
    assert registry.get("method", "dkd").factory.owns_logit_loss is True
    assert registry.get("estimator", "margin").factory.higher_to_teacher is False
    assert registry.get("estimator", "knn-shapley").factory.needs_validation is True
    assert registry.get("model", "resnet8").published_weights is None
    assert callable(registry.get("model", "imagenet_resnet34").published_weights)


@pytest.mark.parametrize("kind", list(BAD_COMPONENTS))
def test_a_component_that_breaks_its_contract_fails_at_registration(tmp_path, kind):
    body, factory, says = BAD_COMPONENTS[kind]
    path = write_bad_plugin(tmp_path / f"bad_{kind}.py", kind, body, factory)
    with pytest.raises(KdbenchError) as info:
        load_registry([path], entry_points=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"plugin file:{path.resolve()} registers {kind} 'bad' {says}"), message


def test_function_and_class_factories_fit_where_the_contract_allows():
    from torch import nn

    class Executor:
        def run(self, jobs, make_worker):
            yield from ()

    def published(name: str) -> str:
        return f"https://example.org/{name}.pth"

    def model(num_classes: int = 10) -> nn.Module:
        return nn.Linear(4, num_classes)

    model.published_weights = published
    reg = Registry()
    reg.register("model", "tiny", model)
    reg.register("model", "tiny_class", nn.Identity)
    reg.register("dataset", "data", lambda *, root=None, download=False: None)
    reg.register("executor", "inline", Executor)
    reg.register("executor", "made", lambda: Executor())
    assert reg.get("model", "tiny").published_weights is published
    assert reg.get("model", "tiny_class").published_weights is None

    model.published_weights = {"V1": "https://example.org/v1.pth"}
    with pytest.raises(
        KdbenchError,
        match=r"registers model 'tiny2' as function .*model, whose published_weights "
        r"is not callable",
    ):
        reg.register("model", "tiny2", model)


def test_a_plugin_object_or_a_direct_registration_is_named_too():
    class Plugin:
        @hookimpl
        def kdbench_register_loggers(self, register):
            register("bad", dict)

    with pytest.raises(
        KdbenchError,
        match=r"^plugin tests\.test_registry\..*Plugin registers logger 'bad' as class "
        r"dict, which is not a subclass of kdbench\.contracts\.RunLogger$",
    ):
        load_registry(plugins=[Plugin()], entry_points=False)
    with pytest.raises(
        KdbenchError,
        match=r"^plugin kdbench\.contracts\.methods registers method 'terms' as class "
        r"LossTerms, which is not a subclass",
    ):
        Registry().register("method", "terms", LossTerms)
    Registry().register("logger", "quiet", RunLogger)  # the base itself fits: every call does nothing


def test_cli_names_a_plugin_that_breaks_its_contract(tmp_path, capsys):
    from kdbench.cli import main

    body, factory, says = BAD_COMPONENTS["method"]
    path = write_bad_plugin(tmp_path / "bad.py", "method", body, factory)
    capsys.readouterr()
    assert main(["list", "--plugin", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"kdbench: error: plugin file:{path.resolve()} registers method 'bad' {says}"
