"""One static, self-contained HTML page of leaderboard tables and figures (``kdbench leaderboard``).

Why a page at all: CSVs are for programs, Markdown for diffs; a researcher who wants to *look* at a
leaderboard opens one file from the file system and clicks column headers to sort.

Where things live: the markup is ``templates/leaderboard.html.j2``, the style and the sort script are
``static/leaderboard.css`` and ``static/leaderboard.js``, package data beside this module. This module
decides what goes in (element ids, cell texts, sort keys) and renders the template with Jinja2, autoescape
on. The page:

* fetches nothing: the style and the script are inlined as read, figures are ``data:image/png;base64``
  URIs, fonts are the system's, and a Content-Security-Policy with the sha256 of the two static files
  (computed from their bytes at each render, so an edited file carries its own hash) makes the browser
  refuse anything else; a page copied to a laptop or an air-gapped machine looks the same;
* shows every value as the caller formatted it (``str(value)``, missing values as "–"): numbers are
  formatted once, by the table modules, not a second time here;
* escapes every piece of text (labels such as ``<b>&"``, "→", "±", "Δ", "λ1" are text, never markup);
* is plain, readable tables without JavaScript; with it, every header is a button that sorts its column
  (click again to reverse) and sets ``aria-sort``.

How sorting is split: Python decides, per column, whether it is numeric and writes each cell's number
into ``data-sort``; missing cells ("–", None, NaN) get ``data-missing`` and sort last in both
directions. The script only compares those keys (numbers numerically, text with a natural,
case-insensitive collation). A cell's number is, first found:

1. the caller's unrounded value, from ``PageTable.sort_keys`` (the mean behind "74.12 ± 0.30*"), so cells
   that print alike still sort by what they are; a keyed column is numeric, a NaN key is missing;
2. the cell's own value when it is a real number (an int or float, not a bool);
3. the number its text reads as ("74.12", "+1.20*", "−0.35", "74.12 ± 0.30", "1e-05"), for callers that
   pass formatted text only; an unkeyed column is numeric when every non-missing cell has a number.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import numbers
import re
import unicodedata
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import jinja2
import numpy as np
import pandas as pd

from kdbench.tables.cells import DASH

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Cell texts that mean "no value": they sort last and do not make a numeric column textual.
MISSING_TEXTS = frozenset({"", DASH, "—", "-", "−", "nan", "NaN", "n/a", "N/A", "<NA>", "NaT"})

TEMPLATE = "leaderboard.html.j2"  # in templates/
#: The inlined style and script: package data, read at each render (tests point STATIC at a copy).
STATIC = resources.files("kdbench.tables") / "static"
STYLE, SCRIPT = "leaderboard.css", "leaderboard.js"

SortKeys = Mapping[Hashable, Sequence[Any]]  # column label → one number per row (a DataFrame is one)


@dataclass(frozen=True)
class PageTable:
    """A table as the caller formatted it; the page adds only escaping, "–" for missing and sorting."""

    title: str  # heading above the table
    frame: pd.DataFrame  # rendered as is: columns in order, values shown as str(value), NaN/None as "–"
    note: str = ""  # a paragraph under the table (plain text, escaped)
    #: The unrounded numbers the page sorts by, for any of the frame's columns: label → one number per row,
    #: by position (a DataFrame, or a dict of sequences); None or NaN sorts last.
    sort_keys: SortKeys | None = None
    #: ``sort_keys`` checked and as floats (NaN for missing), made at construction.
    keys: dict[Hashable, tuple[float, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Fail where the page is assembled, not later as a half-written file.
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"PageTable {self.title!r}: frame must be a pandas DataFrame, got {type(self.frame)}")
        keys: dict[Hashable, tuple[float, ...]] = {}
        for label, values in ({} if self.sort_keys is None else self.sort_keys).items():
            if sum(1 for column in self.frame.columns if column == label) != 1:
                raise ValueError(f"PageTable {self.title!r}: sort keys for {label!r}, which is not exactly one "
                                 "column of the frame")
            numbers = [_sort_key(value, self.title, label) for value in values]
            if len(numbers) != len(self.frame):
                raise ValueError(f"PageTable {self.title!r}: {len(numbers)} sort keys for column {label!r} "
                                 f"of {len(self.frame)} rows")
            keys[label] = tuple(numbers)
        object.__setattr__(self, "keys", keys)


@dataclass(frozen=True)
class PageFigure:
    """A figure embedded in the page itself (a data URI), so the page stays one file."""

    title: str
    png: bytes  # embedded as a data URI
    caption: str = ""

    def __post_init__(self) -> None:
        # The data URI says image/png; other bytes would show as a broken image with no error anywhere.
        if not isinstance(self.png, bytes) or not self.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"PageFigure {self.title!r}: png must be the bytes of a PNG image")


@dataclass(frozen=True)
class PageSection:
    """One part of the page with its own entry in the table of contents (one per dataset)."""

    title: str  # e.g. "digits" (one section per dataset)
    intro: str = ""
    tables: tuple[PageTable, ...] = ()
    figures: tuple[PageFigure, ...] = ()

    def __post_init__(self) -> None:
        # Callers naturally pass lists; keep the frozen value immutable all the way down.
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "figures", tuple(self.figures))


def render_page(title: str, sections: Sequence[PageSection], footer: str = "") -> str:
    """The whole HTML document as a string (UTF-8, <!DOCTYPE html>).

    Deterministic (no timestamps: the caller puts a date in ``footer`` if it wants one), so that a page
    re-rendered from the same records is byte-identical and diffs stay quiet.
    """
    ids = _Ids()
    contents_id = ids.new("contents")
    views = [_section(section, ids) for section in sections]
    style, style_hash = _static(STYLE, "style")
    script, script_hash = _static(SCRIPT, "script")
    # Nothing but the page's own inline style and script, and data: images, may load.
    csp = (f"default-src 'none'; img-src data:; style-src {style_hash}; script-src {script_hash}; "
           "base-uri 'none'; form-action 'none'")
    return _environment().get_template(TEMPLATE).render(
        title=title, contents_id=contents_id, sections=views, footer=_blocks(footer), csp=csp, style=style,
        script=script)


@functools.cache
def _environment() -> jinja2.Environment:
    # autoescape=True: every {{ value }} is text; only the static style and script are inserted as they are.
    return jinja2.Environment(loader=jinja2.PackageLoader("kdbench.tables", "templates"), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def _static(name: str, element: str) -> tuple[str, str]:
    """A static file's text, inlined as it is, and its CSP source ("'sha256-…'") from its bytes.

    Line ends are read as LF (a CRLF checkout would otherwise hash differently from what the browser's
    parser, which turns CRLF into LF, hashes); a file that is LF already is hashed exactly as stored.
    """
    data = (STATIC / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = data.decode("utf-8")
    if f"</{element}" in text.lower():
        raise ValueError(f"{name} contains '</{element}': inlined, it would end its <{element}> element early")
    return text, "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


def _section(section: PageSection, ids: _Ids) -> dict[str, Any]:
    section_id = ids.new(section.title, "section")
    return {
        "id": section_id, "title": section.title, "intro": _blocks(section.intro),
        "tables": [_table(table, ids.new(f"{section_id} {table.title}", f"{section_id}-table"))
                   for table in section.tables],
        "figures": [_figure(figure, ids.new(f"{section_id} {figure.title}", f"{section_id}-figure"))
                    for figure in section.figures],
    }


def _table(table: PageTable, table_id: str) -> dict[str, Any]:
    """Headers and rows of cells ({text, num, missing, sort}) for the template's sortable table."""
    frame = table.frame
    headers: list[dict[str, Any]] = []
    columns: list[list[dict[str, Any]]] = []
    for j, label in enumerate(frame.columns):
        values = list(frame.iloc[:, j])
        shown = [_cell(value) for value in values]
        keys: list[float | None]
        if label in table.keys:
            keys = [None if math.isnan(key) else key for key in table.keys[label]]
            numeric = True
        else:
            keys = [None if missing else _own_number(value) for value, (_, missing) in zip(values, shown, strict=True)]
            present = [key for key, (_, missing) in zip(keys, shown, strict=True) if not missing]
            numeric = bool(present) and all(key is not None for key in present)
        cells = []
        for (text, missing), key in zip(shown, keys, strict=True):
            sort = _sort_attr(key) if numeric and key is not None and not missing else None
            # A numeric cell without a number (a NaN key) shows its text and sorts last.
            cells.append({"text": text, "num": numeric, "missing": missing or (numeric and sort is None),
                          "sort": sort})
        headers.append({"text": _header_text(label), "num": numeric})
        columns.append(cells)
    rows = [[column[i] for column in columns] for i in range(frame.shape[0])]
    return {"id": table_id, "title": table.title, "headers": headers, "rows": rows, "note": _blocks(table.note)}


def _figure(figure: PageFigure, figure_id: str) -> dict[str, Any]:
    return {"id": figure_id, "title": figure.title, "caption": figure.caption,
            "alt": figure.title or figure.caption or "figure", "size": _png_size(figure.png),
            "src": "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")}


def _cell(value: object) -> tuple[str, bool]:
    """What a cell shows and whether it is missing: ``str(value)``, or "–" for None/NaN/NA/NaT."""
    if value is None:
        return DASH, True
    try:
        missing = pd.isna(cast(Any, value))
    except (TypeError, ValueError):
        missing = False
    if isinstance(missing, (bool, np.bool_)) and missing:  # pd.isna of a list is an array: a value, not missing
        return DASH, True
    text = str(value)
    return text, text.strip() in MISSING_TEXTS


def _sort_key(value: object, title: str, label: object) -> float:
    """A caller's sort key as a float; None and NA become NaN (missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    raise TypeError(f"PageTable {title!r}: sort key {value!r} of column {label!r} is not a number")


def _own_number(value: object) -> float | None:
    """A cell without a sort key sorts by its value when it is a real number; text is never parsed."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: its sign decides
            return -math.inf if str(value).startswith("-") else math.inf
    return None


def _header_text(column: object) -> str:
    """A column label; a MultiIndex label (a tuple) is its non-empty levels joined by " / "."""
    if isinstance(column, tuple):
        return " / ".join(str(level) for level in column if str(level) != "")
    return str(column)


def _sort_attr(number: float) -> str:
    """A number as JavaScript's ``Number()`` reads it back exactly (``repr`` round-trips; inf spelled out)."""
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(float(number))


def _png_size(png: bytes) -> tuple[int, int] | None:
    """Width and height from the IHDR chunk, so the browser reserves the space before decoding."""
    if len(png) >= 24 and png[12:16] == b"IHDR":
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        if width > 0 and height > 0:
            return width, height
    return None


def _blocks(text: str) -> list[str]:
    """Plain text as paragraphs, one per blank-line-separated block (the template escapes them)."""
    return [block for block in (b.strip() for b in re.split(r"\n\s*\n", text or "")) if block]


class _Ids:
    """Unique, URL-safe element ids from titles ("CIFAR-100 → λ1" → "cifar-100-l1"), suffixed on clash."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, title: str, fallback: str = "item") -> str:
        ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-") or fallback
        if not slug[0].isalpha():
            slug = f"s-{slug}"
        candidate, n = slug, 1
        # "-title" ids are derived from these, so reserve both forms.
        while candidate in self.used or f"{candidate}-title" in self.used:
            n += 1
            candidate = f"{slug}-{n}"
        self.used.update({candidate, f"{candidate}-title"})
        return candidate
