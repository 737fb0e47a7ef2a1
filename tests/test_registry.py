"""The plugin registry: discovery, parameters, did-you-mean, third-party plugins."""

from __future__ import annotations

import textwrap

import pytest

from kdbench.contracts import DistillationMethod, LossTerms, hookimpl
from kdbench.errors import KdbenchError
from kdbench.registry import REQUIRED, Registry, load_registry

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
    assert kd.parameters() == {"T": 4.0, "gamma": 0.1, "alpha": 0.9}
    assert kd.resolve({"T": 2.0}) == {"T": 2.0, "gamma": 0.1, "alpha": 0.9}
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

    def factory(size, scale=1.0):
        return size * scale

    reg.register("estimator", "needs_size", factory)
    assert reg.get("estimator", "needs_size").parameters()["size"] is REQUIRED
    with pytest.raises(KdbenchError, match="needs parameter 'size'"):
        reg.get("estimator", "needs_size").resolve({})


def test_duplicate_names_from_two_plugins_are_an_error():
    class A:
        @hookimpl
        def kdbench_register_methods(self, register):
            register("dup", DistillationMethod)

    class B:
        @hookimpl
        def kdbench_register_methods(self, register):
            register("dup", LossTerms)

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
