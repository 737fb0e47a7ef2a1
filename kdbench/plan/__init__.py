"""Suite file → validated model → typed run specs (the cross product); recipe; content keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
    from kdbench.plan.expand import Plan, expand, file_sha256, resolve_estimator
    from kdbench.plan.recipe import Recipe
    from kdbench.plan.spec import (
        ComponentRef,
        DatasetRef,
        LabelNoise,
        RevisionSpec,
        RunSpec,
        SelectionSpec,
        TeacherSpec,
        content_key,
    )
    from kdbench.plan.suite_file import Suite, SuiteFile, TableLayout, load_suite

__all__ = [
    "ComponentRef",
    "DatasetRef",
    "LabelNoise",
    "Plan",
    "Recipe",
    "RevisionSpec",
    "RunSpec",
    "SelectionSpec",
    "Suite",
    "SuiteFile",
    "TableLayout",
    "TeacherSpec",
    "content_key",
    "expand",
    "file_sha256",
    "load_suite",
    "resolve_estimator",
]

__getattr__, __dir__ = lazy_names(__name__, {
    "ComponentRef": "kdbench.plan.spec",
    "DatasetRef": "kdbench.plan.spec",
    "LabelNoise": "kdbench.plan.spec",
    "Plan": "kdbench.plan.expand",
    "Recipe": "kdbench.plan.recipe",
    "RevisionSpec": "kdbench.plan.spec",
    "RunSpec": "kdbench.plan.spec",
    "SelectionSpec": "kdbench.plan.spec",
    "Suite": "kdbench.plan.suite_file",
    "SuiteFile": "kdbench.plan.suite_file",
    "TableLayout": "kdbench.plan.suite_file",
    "TeacherSpec": "kdbench.plan.spec",
    "content_key": "kdbench.plan.spec",
    "expand": "kdbench.plan.expand",
    "file_sha256": "kdbench.plan.expand",
    "load_suite": "kdbench.plan.suite_file",
    "resolve_estimator": "kdbench.plan.expand",
})
