"""One static, self-contained HTML page of leaderboard tables and figures (``kdbench leaderboard``).

Why a page at all: CSVs are for programs, Markdown for diffs; a researcher who wants to *look* at a
leaderboard opens one file from the file system and clicks column headers to sort.

Where things live: the markup is ``templates/leaderboard.html.j2``, the style and the script (sorting,
filters) are ``static/leaderboard.css`` and ``static/leaderboard.js``, package data beside this module. This module
decides what goes in (element ids, cell texts, sort keys) and renders the template with Jinja2, autoescape
on. The page:

* fetches nothing: the style and the script are inlined as read, figures are ``data:image/png;base64``
  URIs or inline SVG, fonts are the system's, and a Content-Security-Policy with the sha256 of the two static files
  (computed from their bytes at each render, so an edited file carries its own hash) makes the browser
  refuse anything else; a page copied to a laptop or an air-gapped machine looks the same;
* shows every value as the caller formatted it (``str(value)``, missing values as "–"): numbers are
  formatted once, by the table modules, not a second time here;
* escapes every piece of text (labels such as ``<b>&"``, "→", "±", "Δ", "λ1" are text, never markup);
* is plain, readable tables without JavaScript; with it, every header is a button that sorts its column
  (click again to reverse) and sets ``aria-sort``, and the filters above the tables (hidden without it) show
  only the rows whose ``data-*`` attributes (``PageTable.row_data``) match, and whose text holds the search;
* links only within the page (``#id``) and to files beside it (relative paths such as
  ``../raw/<suite>/<key>/record.json``): a :class:`Link` with a scheme or a protocol-relative URL is refused;
* draws figures as PNG data URIs (:class:`PageFigure`) or as inline SVG markup (:class:`PageSvg`), which is
  checked to be drawing elements only: no script, no event handler, no link, no style attribute.

How sorting is split: Python decides, per column, whether it is numeric and writes a cell's number into
``data-sort`` only where the cell's text does not already read as that number in the right order (the
script reads "+1.20*" as 1.2, :func:`text_number`; a page of tens of thousands of cells stays small);
missing cells ("–", None, NaN) sort last in both directions, with ``data-missing`` where their text
would read as a number. The script only compares those keys (numbers numerically, text with a natural,
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
from html.parser import HTMLParser
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
#: ``data-*`` attribute names the page's filters read (``data-benchmark``): lowercase letters only.
DATA_NAME = re.compile(r"^[a-z]+$")
#: An element id the caller gives (a figure's or a code block's anchor): letters, digits, "-", "_".
ANCHOR = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
#: What a link may point to: an anchor in the page, or a relative path to a file beside it.
RELATIVE_HREF = re.compile(r"^(#[A-Za-z][A-Za-z0-9_-]*|(?![a-zA-Z][a-zA-Z0-9+.-]*:)(?!//)(?!#)[^\s\\<>\"']+)$")
#: The elements and attributes inline SVG may use: drawing and text only.
SVG_ELEMENTS = frozenset({"svg", "g", "path", "rect", "circle", "line", "polyline", "polygon", "text", "tspan",
                          "title"})
SVG_ATTRIBUTES = frozenset({"class", "d", "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height",
                            "points", "viewbox", "transform", "text-anchor", "role", "aria-label"})


@dataclass(frozen=True)
class Link:
    """A link in a table cell: to an anchor of the page (``#id``) or a file beside it (a relative path)."""

    text: str
    href: str
    title: str = ""  # the browser's tooltip

    def __post_init__(self) -> None:
        if not RELATIVE_HREF.match(self.href):
            raise ValueError(f"Link {self.text!r}: {self.href!r} is not an anchor or a relative path")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Rich:
    """A cell of text pieces and links, e.g. ``Rich(("seeds ", Link("0", "../raw/s/k/record.json")))``; it shows and
    sorts as its text."""

    parts: tuple[str | Link, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts))
        for part in self.parts:
            if not isinstance(part, str | Link):
                raise TypeError(f"Rich: a part is text or a Link, not {type(part).__name__}")

    def __str__(self) -> str:
        return "".join(str(part) for part in self.parts)


@dataclass(frozen=True)
class PageTable:
    """A table as the caller formatted it; the page adds only escaping, "–" for missing and sorting."""

    title: str  # heading above the table
    frame: pd.DataFrame  # rendered as is: columns in order, values shown as str(value), NaN/None as "–"
    note: str = ""  # a paragraph under the table (plain text, escaped)
    #: The unrounded numbers the page sorts by, for any of the frame's columns: label → one number per row,
    #: by position (a DataFrame, or a dict of sequences); None or NaN sorts last.
    sort_keys: SortKeys | None = None
    #: Per row, by position: ``data-*`` attributes the page's filters match (name → value); a row without the
    #: attribute of a filter in use is hidden by it.
    row_data: Sequence[Mapping[str, str]] | None = None
    css: str = ""  # an extra class of the table ("main": the method × pair table)
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
        if self.row_data is not None:
            data = tuple(dict(row) for row in self.row_data)
            if len(data) != len(self.frame):
                raise ValueError(f"PageTable {self.title!r}: row data for {len(data)} rows of {len(self.frame)}")
            if any(not DATA_NAME.match(name) for row in data for name in row):
                raise ValueError(f"PageTable {self.title!r}: row data names are lowercase letters")
            object.__setattr__(self, "row_data", data)


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
class PageSvg:
    """A figure drawn as inline SVG markup (one ``<svg>`` element), checked to hold drawing elements only."""

    title: str
    svg: str
    caption: str = ""
    anchor: str = ""  # its element id (links point to it); empty: made from the title
    data: Mapping[str, str] = field(default_factory=dict)  # ``data-*`` attributes the filters match

    def __post_init__(self) -> None:
        _check_svg(self.svg, self.title)
        _check_anchor(self.anchor, self.title)
        if any(not DATA_NAME.match(name) for name in self.data):
            raise ValueError(f"PageSvg {self.title!r}: data names are lowercase letters")


@dataclass(frozen=True)
class PageCode:
    """A block of preformatted text with its own anchor, e.g. a suite entry as YAML to copy."""

    anchor: str
    title: str
    text: str

    def __post_init__(self) -> None:
        _check_anchor(self.anchor, self.title)
        if not self.anchor:
            raise ValueError(f"PageCode {self.title!r}: an anchor is needed (rows link to it)")


@dataclass(frozen=True)
class PageFilter:
    """A drop-down above the tables: rows whose ``data-<name>`` is the chosen value stay shown."""

    name: str  # the data attribute, e.g. "pair" for data-pair
    label: str  # what the drop-down is called on the page
    options: tuple[tuple[str, str], ...]  # (value, text shown)
    #: The header of the column whose cell text names a row's value when the row has no ``data-<name>`` (the
    #: option of that text, or the text itself): rows need not repeat what a cell shows.
    column: str = ""
    #: The value of a row that says nothing (no attribute, no such column, no section's): the common value
    #: need not be written on every row.
    default: str = ""

    def __post_init__(self) -> None:
        if not DATA_NAME.match(self.name):
            raise ValueError(f"PageFilter {self.label!r}: its name is lowercase letters")
        object.__setattr__(self, "options", tuple(tuple(option) for option in self.options))


@dataclass(frozen=True)
class PageSection:
    """One part of the page with its own entry in the table of contents (one per dataset, or per benchmark)."""

    title: str  # e.g. "digits" (one section per dataset)
    intro: str = ""
    tables: tuple[PageTable, ...] = ()
    figures: tuple[PageFigure | PageSvg, ...] = ()
    codes: tuple[PageCode, ...] = ()  # shown last, folded under ``codes_title``
    codes_title: str = ""
    data: Mapping[str, str] = field(default_factory=dict)  # ``data-*`` attributes the filters match

    def __post_init__(self) -> None:
        # Callers naturally pass lists; keep the frozen value immutable all the way down.
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "figures", tuple(self.figures))
        object.__setattr__(self, "codes", tuple(self.codes))
        if any(not DATA_NAME.match(name) for name in self.data):
            raise ValueError(f"PageSection {self.title!r}: data names are lowercase letters")


def _check_anchor(anchor: str, title: str) -> None:
    if anchor and not ANCHOR.match(anchor):
        raise ValueError(f"{title!r}: anchor {anchor!r} is not an element id (letters, digits, '-', '_')")


class _SvgCheck(HTMLParser):
    """Walks SVG markup and refuses anything but drawing elements and their plain attributes."""

    def __init__(self, title: str) -> None:
        super().__init__(convert_charrefs=True)
        self.title, self.depth, self.roots = title, 0, 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)
        self.roots += self.depth == 0
        self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)
        self.roots += self.depth == 0

    def handle_endtag(self, tag: str) -> None:
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth == 0 and data.strip():
            raise ValueError(f"PageSvg {self.title!r}: text outside the <svg> element")

    def handle_comment(self, data: str) -> None:
        raise ValueError(f"PageSvg {self.title!r}: no comments in the markup")

    def handle_decl(self, decl: str) -> None:
        raise ValueError(f"PageSvg {self.title!r}: no declarations in the markup")

    def handle_pi(self, data: str) -> None:
        raise ValueError(f"PageSvg {self.title!r}: no processing instructions in the markup")

    def unknown_decl(self, data: str) -> None:
        raise ValueError(f"PageSvg {self.title!r}: no CDATA or declarations in the markup")

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SVG_ELEMENTS or (self.depth == 0) != (tag == "svg"):
            raise ValueError(f"PageSvg {self.title!r}: <{tag}> is not allowed here (one <svg> of drawing elements)")
        for name, _ in attrs:
            if name not in SVG_ATTRIBUTES:
                raise ValueError(f"PageSvg {self.title!r}: attribute {name!r} of <{tag}> is not allowed")


def _check_svg(markup: str, title: str) -> None:
    check = _SvgCheck(title)
    check.feed(markup)
    check.close()
    if check.roots != 1 or check.depth != 0:
        raise ValueError(f"PageSvg {title!r}: the markup must be exactly one closed <svg> element")


def render_page(title: str, sections: Sequence[PageSection], footer: str = "", subtitle: str = "",
                filters: Sequence[PageFilter] = ()) -> str:
    """The whole HTML document as a string (UTF-8, <!DOCTYPE html>).

    Deterministic (no timestamps: the caller puts a date in ``subtitle`` or ``footer`` if it wants one), so
    that a page re-rendered from the same records is byte-identical and diffs stay quiet. ``filters`` are
    drop-downs over the rows' ``data-*`` attributes, with a text search beside them (shown with JavaScript).
    """
    ids = _Ids()
    contents_id = ids.new("contents")
    for section in sections:  # the caller's anchors are taken first, so generated ids never clash with them
        for item in (*section.figures, *section.codes):
            anchor = getattr(item, "anchor", "")
            if anchor:
                if anchor in ids.used:
                    raise ValueError(f"anchor {anchor!r} is used twice")
                ids.used.update({anchor, f"{anchor}-title"})
    views = [_section(section, ids) for section in sections]
    style, style_hash = _static(STYLE, "style")
    script, script_hash = _static(SCRIPT, "script")
    # Nothing but the page's own inline style and script, and data: images, may load.
    csp = (f"default-src 'none'; img-src data:; style-src {style_hash}; script-src {script_hash}; "
           "base-uri 'none'; form-action 'none'")
    return _environment().get_template(TEMPLATE).render(
        title=title, subtitle=subtitle, contents_id=contents_id, sections=views, footer=_blocks(footer), csp=csp,
        style=style, script=script, filters=[_filter(f) for f in filters])


def _filter(page_filter: PageFilter) -> dict[str, Any]:
    return {"name": page_filter.name, "label": page_filter.label, "column": page_filter.column,
            "default": page_filter.default,
            "options": [{"value": value, "text": text} for value, text in page_filter.options]}


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
    figures = []
    for figure in section.figures:
        figure_id = getattr(figure, "anchor", "") or ids.new(f"{section_id} {figure.title}", f"{section_id}-figure")
        figures.append(_figure(figure, figure_id) if isinstance(figure, PageFigure) else _svg(figure, figure_id))
    return {
        "id": section_id, "title": section.title, "intro": _blocks(section.intro), "data": dict(section.data),
        "tables": [_table(table, ids.new(f"{section_id} {table.title}", f"{section_id}-table"))
                   for table in section.tables],
        "figures": figures,
        "codes": [{"id": code.anchor, "title": code.title, "text": code.text} for code in section.codes],
        "codes_title": section.codes_title or "Code",
    }


def _svg(figure: PageSvg, figure_id: str) -> dict[str, Any]:
    return {"id": figure_id, "title": figure.title, "caption": figure.caption, "svg": figure.svg,
            "data": dict(figure.data)}


def _table(table: PageTable, table_id: str) -> dict[str, Any]:
    """Headers and rows of cells ({text, missing, sort, parts}) for the template's sortable table; ``numeric``
    lists the numeric columns (1-based), which the style sheet right-aligns by the table's class, not per cell."""
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
        if numeric:
            # A numeric cell without a number (a NaN key) shows its text and sorts last.
            keys = [None if missing else key for key, (_, missing) in zip(keys, shown, strict=True)]
            cells = _numeric_cells(values, [text for text, _ in shown], keys)
        else:
            cells = [{"text": text, "missing": missing, "sort": None, "parts": _parts(value)}
                     for value, (text, missing) in zip(values, shown, strict=True)]
        headers.append({"text": _header_text(label), "num": numeric})
        columns.append(cells)
    data = table.row_data or [{}] * frame.shape[0]
    rows = [{"cells": [column[i] for column in columns], "data": data[i]} for i in range(frame.shape[0])]
    return {"id": table_id, "title": table.title, "headers": headers, "rows": rows, "note": _blocks(table.note),
            "css": table.css, "numeric": [j + 1 for j, h in enumerate(headers) if h["num"]]}


def _numeric_cells(values: list[object], texts: list[str], keys: list[float | None]) -> list[dict[str, Any]]:
    """A numeric column's cells with the fewest bytes that still sort them by ``keys`` (None: last).

    Why: a published page holds tens of thousands of such cells. The script sorts a cell by its ``data-sort``,
    else by the number its text starts with (:func:`text_number`), and a cell with neither sorts last; so a cell
    whose text already reads as its sort number carries no attribute, and ``data-missing`` is written only where
    the text of a missing cell would read as a number.
    """
    numbers = [text_number(text) for text in texts]
    chosen = _order_keys(keys, numbers)
    cells = []
    for value, text, key, number, sort in zip(values, texts, keys, numbers, chosen, strict=True):
        spelled = None if key is None or number == sort[1] else sort[0]
        cells.append({"text": text, "missing": key is None and number is not None, "sort": spelled,
                      "parts": _parts(value)})
    return cells


def _order_keys(keys: list[float | None], numbers: list[float | None]) -> list[tuple[str, float]]:
    """Per cell, a sort number (as written and as read) in the same order as ``keys``, as short as that allows.

    Walking the distinct keys upward, each gets the number its cells' text reads as when that is the key rounded
    as printed and still lies above the previous key's choice and below the next key; else the key rounded to the
    fewest decimals that does. Equal keys get equal numbers, distinct keys distinct ones in the same order, so
    rows sort exactly as by the unrounded keys (ties in the caller's order) with fewer digits on the page.
    """
    distinct = sorted({key for key in keys if key is not None})
    texts: dict[float, set[float | None]] = {}
    for key, number in zip(keys, numbers, strict=True):
        if key is not None:
            texts.setdefault(key, set()).add(number)
    chosen: dict[float, tuple[str, float]] = {}
    low: float | None = None
    for i, key in enumerate(distinct):
        high = distinct[i + 1] if i + 1 < len(distinct) else None
        read = texts[key]
        (number,) = read if len(read) == 1 else (None,)
        if number is not None and _rounds_to(key, number) and _between(number, low, high):
            chosen[key] = (_spell(number), number)
        else:
            chosen[key] = _shortest(key, low, high)
        low = chosen[key][1]
    return [chosen[key] if key is not None else ("", math.nan) for key in keys]


def _between(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value > low) and (high is None or value < high)


def _rounds_to(key: float, number: float) -> bool:
    """Whether ``number`` is ``key`` as printed to some count of decimals (the text shows the key, not another)."""
    return any(float(f"{key:.{d}f}") == number for d in range(0, 18)) if math.isfinite(key) else False


def _shortest(key: float, low: float | None, high: float | None) -> tuple[str, float]:
    """``key`` to the fewest decimals that stay strictly between ``low`` and ``high`` (the key itself always does)."""
    if math.isinf(key):
        return _sort_attr(key), key
    for decimals in range(0, 18):
        text = f"{key:.{decimals}f}"
        if _between(float(text), low, high):
            return _spell(float(text)), float(text)
    return _sort_attr(key), key


def _spell(number: float) -> str:
    """A number as few characters as JavaScript's ``Number()`` reads back exactly ("3", "62.7164", "1e-05")."""
    if math.isinf(number):
        return _sort_attr(number)
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


#: The number a cell's text starts with, as the page's script reads it (the same pattern is in leaderboard.js):
#: an optional sign (Unicode minus too) and decimal digits, not followed by more of a number ("1,959", "1e-05").
TEXT_NUMBER = re.compile(r"^([+\-\u2212]?)([0-9]+(?:\.[0-9]+)?)(?![0-9.,eE])")


def text_number(text: str) -> float | None:
    """The number the page's script reads from a cell's text when it has no ``data-sort`` ("+1.20*" → 1.2)."""
    match = TEXT_NUMBER.match(text)
    if match is None:
        return None
    return -float(match.group(2)) if match.group(1) in ("-", "\u2212") else float(match.group(2))


def _parts(value: object) -> list[dict[str, str]] | None:
    """A :class:`Rich` cell's or a :class:`Link`'s pieces for the template (text, and href and title of links)."""
    parts = value.parts if isinstance(value, Rich) else (value,) if isinstance(value, Link) else None
    if parts is None:
        return None
    return [{"text": part.text, "href": part.href, "title": part.title} if isinstance(part, Link)
            else {"text": part} for part in parts]


def _figure(figure: PageFigure, figure_id: str) -> dict[str, Any]:
    return {"id": figure_id, "title": figure.title, "caption": figure.caption,
            "alt": figure.title or figure.caption or "figure", "size": _png_size(figure.png),
            "src": "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")}


def _cell(value: object) -> tuple[str, bool]:
    """What a cell shows and whether it is missing: ``str(value)``, or "–" for None/NaN/NA/NaT."""
    if isinstance(value, str):  # most cells: formatted text (checked first, a page holds tens of thousands)
        return value, value.strip() in MISSING_TEXTS
    if isinstance(value, Rich | Link):
        return str(value), False
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
