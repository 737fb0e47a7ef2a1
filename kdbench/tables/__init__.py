"""Tables, plots and CSVs derived from stored run records, never typed by hand.

``frame`` turns records into one tidy row per run; ``cells`` defines a cell (mean ± std over seeds), a
Δ and the order of pairs once; each paper layout has its own module, and ``layouts`` is their registry.
"""

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
