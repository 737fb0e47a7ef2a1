"""Suite file → validated model → typed run specs (the cross product); recipe; content keys."""

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
