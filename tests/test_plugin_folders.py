"""Built-in plugins are found by folder: a new built-in method is one new file, with no edit anywhere else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kdbench_plugins
from kdbench.contracts.plugin_folders import folder_modules, register_folder
from kdbench.errors import KdbenchError
from kdbench.registry import load_registry
from tests.test_cli import reduced_quickstart

NEW_METHOD = '''
    """Label smoothing against the teacher's argmax: a built-in written as one file."""

    from kdbench.contracts import DistillationMethod, LossTerms, StepInputs, hookimpl
    import torch.nn.functional as F


    class TeacherArgmaxSmoothing(DistillationMethod):
        """CE on the label plus CE on the teacher's argmax, smoothed."""

        def __init__(self, weight: float = 0.5, smoothing: float = 0.1):
            super().__init__()
            self.weight, self.smoothing = weight, smoothing

        def loss_terms(self, step: StepInputs) -> LossTerms:
            hard = F.cross_entropy(step.student_logits, step.targets, reduction="none")
            soft = F.cross_entropy(step.student_logits, step.teacher_logits.argmax(1), reduction="none",
                                   label_smoothing=self.smoothing)
            return LossTerms(sample={"ce": hard, "argmax": self.weight * soft})


    @hookimpl
    def kdbench_register_methods(register):
        register("argmax_smoothing", TeacherArgmaxSmoothing)
'''


def test_every_module_of_every_builtin_folder_registers(registry):
    sources = {comp.source for comp in registry}
    for kind in ("methods", "estimators", "revisions", "datasets", "models", "executors"):
        assert f"builtin_{kind}" in sources
        assert folder_modules(f"kdbench_plugins.{kind}")  # a folder of at least one plugin module
    assert "kdbench_plugins.methods.kd" in folder_modules("kdbench_plugins.methods")
    assert not any(m.rsplit(".", 1)[1].startswith("_") for m in folder_modules("kdbench_plugins.estimators"))


def test_a_module_that_registers_nothing_is_a_clear_error(tmp_path, monkeypatch):
    package = tmp_path / "my_folder"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helpers.py").write_text("X = 1\n")  # helpers are skipped
    (package / "forgot.py").write_text("X = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KdbenchError, match="my_folder.forgot defines no kdbench_register_methods"):
        register_folder("my_folder", "kdbench_register_methods", lambda *a, **k: None)


def test_a_new_builtin_method_is_one_file(tmp_path):
    """Copy the built-in plugin package, add one file under methods/, and nothing else: `kdbench list` shows
    the method and a suite runs it (the copy shadows the installed package on the path)."""
    copy = tmp_path / "site" / "kdbench_plugins"
    shutil.copytree(Path(kdbench_plugins.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "methods" / "argmax_smoothing.py").write_text(textwrap.dedent(NEW_METHOD).lstrip())
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "2"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kdbench.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    listed = cli("list", "method")
    assert listed.returncode == 0, listed.stderr
    assert "argmax_smoothing" in listed.stdout and "weight=0.5" in listed.stdout
    suite = reduced_quickstart(tmp_path, methods=["argmax_smoothing"])
    ran = cli("run", str(suite), "--quiet", "--runs", str(tmp_path / "r"))
    assert ran.returncode == 0, ran.stderr
    assert "finished argmax_smoothing resnet20 → resnet8 seed 0" in ran.stdout
    assert "argmax_smoothing" not in {c.name for c in load_registry()}  # the installed package is untouched
