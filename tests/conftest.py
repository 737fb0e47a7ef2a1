"""Shared fixtures: an isolated KDBENCH_HOME and a helper to write suite files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own teacher store and data root, so nothing leaks between tests."""
    home = tmp_path_factory.mktemp("kdbench_home")
    monkeypatch.setenv("KDBENCH_HOME", str(home))
    torch.set_num_threads(2)
    return home


@pytest.fixture
def write_suite(tmp_path):
    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture(scope="session")
def registry():
    from kdbench.registry import load_registry

    return load_registry()
