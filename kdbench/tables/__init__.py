"""Tables, plots and CSVs derived from stored run records, never typed by hand.

``frame`` turns records into one tidy row per run; ``cells`` defines a cell (mean ± std over seeds), a
Δ and the order of pairs once; each paper layout has its own module, and ``layouts`` is their registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
    from kdbench.tables.cells import Table, format_cell, mean_std
    from kdbench.tables.frame import results_frame
    from kdbench.tables.layouts import LAYOUTS, detect_layout, render
    from kdbench.tables.method_pair import STUDENT_ROW, TEACHER_ROW, method_pair_table
    from kdbench.tables.write import write_suite_tables

__all__ = [
    "LAYOUTS",
    "STUDENT_ROW",
    "TEACHER_ROW",
    "Table",
    "detect_layout",
    "format_cell",
    "mean_std",
    "method_pair_table",
    "render",
    "results_frame",
    "write_suite_tables",
]

__getattr__, __dir__ = lazy_names(__name__, {
    "LAYOUTS": "kdbench.tables.layouts",
    "STUDENT_ROW": "kdbench.tables.method_pair",
    "TEACHER_ROW": "kdbench.tables.method_pair",
    "Table": "kdbench.tables.cells",
    "detect_layout": "kdbench.tables.layouts",
    "format_cell": "kdbench.tables.cells",
    "mean_std": "kdbench.tables.cells",
    "method_pair_table": "kdbench.tables.method_pair",
    "render": "kdbench.tables.layouts",
    "results_frame": "kdbench.tables.frame",
    "write_suite_tables": "kdbench.tables.write",
})
