"""One static, self-contained HTML page of leaderboard tables and figures (``kdbench leaderboard``).

Why a page at all: CSVs are for programs, Markdown for diffs; a researcher who wants to *look* at a
leaderboard opens one file from the file system and clicks column headers to sort. So the page:

* fetches nothing: CSS and the sort script are inline, figures are ``data:image/png;base64`` URIs, fonts
  are the system's, and a Content-Security-Policy (hashes of the exact inline style and script) makes
  the browser refuse anything else, so a page copied to a laptop or an air-gapped machine looks the same;
* shows every value as the caller formatted it (``str(value)``, missing values as "–"): numbers are
  formatted once, by the table modules, not a second time here;
* escapes every piece of text (labels such as ``<b>&"``, "→", "±", "Δ", "λ1" are text, never markup);
* is plain, readable tables without JavaScript; with it, every header is a button that sorts its column
  (click again to reverse) and sets ``aria-sort``.

How sorting is split: Python decides, per column, whether it is numeric (every non-missing cell reads
as a number such as "74.12", "+1.20*", "−0.35", "74.12 ± 0.30", "1e-05") and writes each cell's number
into ``data-sort``; missing cells ("–", None, NaN) get ``data-missing`` and sort last in both
directions. The script only compares those keys (numbers numerically, text with a natural,
case-insensitive collation), so the parsing rules live, and are tested, in one place: here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdbench.tables.cells import DASH

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Cell texts that mean "no value": they sort last and do not make a numeric column textual.
MISSING_TEXTS = frozenset({"", DASH, "—", "-", "−", "nan", "NaN", "n/a", "N/A", "<NA>", "NaT"})

# A number as the table modules write it: optional sign (ASCII or Unicode minus), digits (optionally
# with thousands separators), optional exponent, optionally followed by "± spread" (sorted by the
# mean) and by significance or unit markers ("*", "†", "%").
_NUMBER = re.compile(
    r"""^(?P<sign>[+\-−]?)
        (?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)
        (?:[eE](?P<exp>[+\-−]?\d+))?
        (?:\s*±.*)?
        \s*[*†‡§%]*$""",
    re.VERBOSE | re.DOTALL | re.ASCII,
)
_INFINITY = re.compile(r"^(?P<sign>[+\-−]?)inf(?:inity)?$", re.IGNORECASE)


@dataclass(frozen=True)
class PageTable:
    """A table as the caller formatted it; the page adds only escaping, "–" for missing and sorting."""

    title: str  # heading above the table
    frame: pd.DataFrame  # rendered as is: columns in order, values shown as str(value), NaN/None as "–"
    note: str = ""  # a paragraph under the table (plain text, escaped)

    def __post_init__(self) -> None:
        # Fail where the page is assembled, not later as a half-written file.
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"PageTable {self.title!r}: frame must be a pandas DataFrame, got {type(self.frame)}")


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
    planned = []  # (section, section id, [(table, id)], [(figure, id)])
    for section in sections:
        section_id = ids.new(section.title, "section")
        table_ids = [ids.new(f"{section_id} {table.title}", f"{section_id}-table") for table in section.tables]
        figure_ids = [ids.new(f"{section_id} {figure.title}", f"{section_id}-figure") for figure in section.figures]
        planned.append((section, section_id, list(zip(section.tables, table_ids, strict=True)),
                        list(zip(section.figures, figure_ids, strict=True))))

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="kdbench">',
        '<link rel="icon" href="data:,">',  # no favicon request when served over HTTP
        f"<title>{_esc(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_esc(title)}</h1>",
        "</header>",
        "<main>",
        *_contents(contents_id, planned),
    ]
    if not planned:
        parts.append('<p class="empty">No sections.</p>')
    for section, section_id, tables, figures in planned:
        parts.extend(_section(section, section_id, tables, figures, contents_id))
    parts.append("</main>")
    if footer:
        parts.extend(["<footer>", *_paragraphs(footer), "</footer>"])
    parts.extend([f"<script>{_SCRIPT}</script>", "</body>", "</html>", ""])
    return "\n".join(parts)


def _contents(contents_id: str, planned: list) -> list[str]:
    """The table of contents: each section, and under it its tables and figures."""
    if not planned:
        return []
    lines = [f'<nav id="{contents_id}" class="toc" aria-labelledby="{contents_id}-title">',
             f'<h2 id="{contents_id}-title">Contents</h2>', "<ol>"]
    for section, section_id, tables, figures in planned:
        lines.append(f'<li><a href="#{section_id}">{_esc(section.title) or "(untitled)"}</a>')
        entries = [(t.title, i) for t, i in tables] + [(f.title, i) for f, i in figures]
        if entries:
            lines.append("<ul>")
            lines.extend(f'<li><a href="#{i}">{_esc(name) or "(untitled)"}</a></li>' for name, i in entries)
            lines.append("</ul>")
        lines.append("</li>")
    lines.extend(["</ol>", "</nav>"])
    return lines


def _section(section: PageSection, section_id: str, tables: list, figures: list, contents_id: str) -> list[str]:
    lines = [f'<section id="{section_id}" aria-labelledby="{section_id}-title">',
             f'<h2 id="{section_id}-title">{_esc(section.title)}</h2>', *_paragraphs(section.intro, "intro")]
    for table, table_id in tables:
        lines.extend(_table(table, table_id))
    for figure, figure_id in figures:
        lines.extend(_figure(figure, figure_id))
    lines.extend([f'<p class="top"><a href="#{contents_id}">↑ Contents</a></p>', "</section>"])
    return lines


def _table(table: PageTable, table_id: str) -> list[str]:
    """A sortable table inside a horizontally scrolling region (wide leaderboards on narrow screens)."""
    frame = table.frame
    headers = [_header_text(column) for column in frame.columns]
    columns = [[_cell(value) for value in frame.iloc[:, j]] for j in range(frame.shape[1])]
    numeric = [_is_numeric_column(cells) for cells in columns]

    head = []
    for text, is_number in zip(headers, numeric, strict=True):
        kind = "number" if is_number else "text"
        css = ' class="num"' if is_number else ""
        head.append(f'<th scope="col" data-type="{kind}" aria-sort="none"{css}>'
                    f'<button type="button">{_esc(text)}</button></th>')
    body = []
    for i in range(frame.shape[0]):
        cells = []
        for j, is_number in enumerate(numeric):
            text, missing = columns[j][i]
            attrs = ' class="num"' if is_number else ""
            if missing:
                attrs += " data-missing"
            elif is_number:
                attrs += f' data-sort="{_sort_attr(_parse_number(text))}"'
            cells.append(f"<td{attrs}>{_esc(text)}</td>")
        body.append(f'<tr data-order="{i}">{"".join(cells)}</tr>')

    lines = [f'<div class="table" id="{table_id}">',
             f'<h3 id="{table_id}-title">{_esc(table.title)}</h3>',
             f'<div class="scroll" role="region" aria-labelledby="{table_id}-title" tabindex="0">',
             f'<table class="sortable" aria-labelledby="{table_id}-title">',
             f"<thead><tr>{''.join(head)}</tr></thead>",
             "<tbody>", *body, "</tbody>", "</table>", "</div>"]
    if frame.shape[0] == 0:
        lines.append('<p class="empty">No rows.</p>')
    lines.extend(_paragraphs(table.note, "note"))
    lines.append("</div>")
    return lines


def _figure(figure: PageFigure, figure_id: str) -> list[str]:
    src = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
    alt = figure.title or figure.caption or "figure"
    size = _png_size(figure.png)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    caption = []
    if figure.title:
        caption.append(f"<strong>{_esc(figure.title)}</strong>")
    if figure.caption:
        caption.append(f"<span>{_esc(figure.caption)}</span>")
    lines = [f'<figure id="{figure_id}">', f'<img alt="{_esc(alt)}" src="{src}"{dims}>']
    if caption:
        lines.append(f"<figcaption>{' '.join(caption)}</figcaption>")
    lines.append("</figure>")
    return lines


def _cell(value: object) -> tuple[str, bool]:
    """What a cell shows and whether it is missing: ``str(value)``, or "–" for None/NaN/NA/NaT."""
    if value is None:
        return DASH, True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        missing = False
    if isinstance(missing, (bool, np.bool_)) and missing:  # pd.isna of a list is an array: a value, not missing
        return DASH, True
    text = str(value)
    return text, text.strip() in MISSING_TEXTS


def _header_text(column: object) -> str:
    """A column label; a MultiIndex label (a tuple) is its non-empty levels joined by " / "."""
    if isinstance(column, tuple):
        return " / ".join(str(level) for level in column if str(level) != "")
    return str(column)


def _parse_number(text: str) -> float | None:
    """The number a cell shows, as the sort sees it, or None when the text is not a number.

    "74.12" → 74.12, "+1.20*" → 1.2, "−0.35" → -0.35, "74.12 ± 0.30" → 74.12, "1,234" → 1234.0,
    "1e-05" → 1e-05, "inf" → inf; "resnet56", "8x4", "74.12 (3)" → None.
    """
    text = text.strip()
    match = _NUMBER.match(text)
    if match:
        literal = match["sign"].replace("−", "-") + match["digits"].replace(",", "")
        if match["exp"] is not None:
            literal += "e" + match["exp"].replace("−", "-")
        return float(literal)
    match = _INFINITY.match(text)
    if match:
        return -math.inf if match["sign"] in ("-", "−") else math.inf
    return None


def _is_numeric_column(cells: Iterable[tuple[str, bool]]) -> bool:
    """Numeric when every non-missing cell reads as a number and there is at least one such cell."""
    present = [text for text, missing in cells if not missing]
    return bool(present) and all(_parse_number(text) is not None for text in present)


def _sort_attr(number: float | None) -> str:
    """A number as JavaScript's ``Number()`` reads it back exactly (``repr`` round-trips; inf spelled out)."""
    if number is None or math.isnan(number):  # cannot happen for a numeric column; kept total
        return "NaN"
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


def _paragraphs(text: str, css: str = "") -> list[str]:
    """Plain text as escaped paragraphs, one per blank-line-separated block."""
    attr = f' class="{css}"' if css else ""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text or "")]
    return [f"<p{attr}>{_esc(block)}</p>" for block in blocks if block]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


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


_STYLE = """
:root { color-scheme: light; }
body { margin: 0 auto; max-width: 76rem; padding: 1rem 1.25rem 3rem; background: #fff; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05rem; margin: 1.75rem 0 .5rem; }
a { color: #0969da; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .25rem 1.25rem .75rem; }
nav.toc h2 { margin: .5rem 0; border: 0; font-size: 1.1rem; }
nav.toc ol, nav.toc ul { margin: 0; padding-left: 1.25rem; }
p.intro, p.note, p.empty { max-width: 60rem; }
p.note, figcaption, footer, p.top { color: #59636e; font-size: .9rem; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid #d0d7de; border-radius: 6px; }
.scroll:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .7rem; text-align: left; vertical-align: top; white-space: nowrap;
  border-bottom: 1px solid #eaeef2; }
th { background: #f6f8fa; font-weight: 600; border-bottom: 1px solid #d0d7de; }
.num { text-align: right; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tbody tr:hover { background: #eef4ff; }
th button { font: inherit; color: inherit; background: none; border: 0; margin: 0; padding: 0;
  text-align: inherit; cursor: pointer; }
html:not(.js) th button { cursor: text; }
th button:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
.js th button::after { content: "\\2195"; margin-left: .3em; opacity: .3; }
.js th[aria-sort="ascending"] button::after { content: "\\25B2"; opacity: .8; }
.js th[aria-sort="descending"] button::after { content: "\\25BC"; opacity: .8; }
figure { margin: 1.5rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { margin-top: .4rem; }
figcaption strong { color: #1f2328; margin-right: .4em; }
footer { margin-top: 3rem; border-top: 1px solid #d0d7de; padding-top: .5rem; }
@media print { nav.toc, p.top { display: none; } .scroll { overflow: visible; border: 0; } }
"""

# ES5, no libraries, no network. Keys come from the page (data-sort, data-missing), not from parsing
# here; see the module docstring. Rows with equal keys keep their original order (data-order).
_SCRIPT = """
(function () {
  "use strict";
  var root = document.documentElement;
  root.className = (root.className ? root.className + " " : "") + "js";
  var collator = (typeof Intl !== "undefined" && Intl.Collator) ?
    new Intl.Collator(undefined, {numeric: true, sensitivity: "base"}) : null;
  function compareText(a, b) {
    if (collator) { return collator.compare(a, b); }
    a = a.toLowerCase(); b = b.toLowerCase();
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  function sortKey(cell, numeric) {
    if (!cell || cell.getAttribute("data-missing") !== null) { return null; }
    if (numeric) {
      var value = Number(cell.getAttribute("data-sort"));
      return isNaN(value) ? null : value;
    }
    return cell.textContent.trim();
  }
  function sortTable(table, index) {
    var headers = table.tHead.rows[0].cells;
    var th = headers[index];
    var descending = th.getAttribute("aria-sort") === "ascending";
    var numeric = th.getAttribute("data-type") === "number";
    var body = table.tBodies[0];
    var rows = [];
    for (var i = 0; i < body.rows.length; i++) {
      var row = body.rows[i];
      var order = Number(row.getAttribute("data-order")) || 0;
      rows.push({row: row, key: sortKey(row.cells[index], numeric), order: order});
    }
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        if (a.key !== b.key) { return a.key === null ? 1 : -1; }
        return a.order - b.order;
      }
      var c = numeric ? (a.key < b.key ? -1 : (a.key > b.key ? 1 : 0)) : compareText(a.key, b.key);
      return (descending ? -c : c) || (a.order - b.order);
    });
    for (var j = 0; j < rows.length; j++) { body.appendChild(rows[j].row); }
    for (var k = 0; k < headers.length; k++) {
      headers[k].setAttribute("aria-sort", k === index ? (descending ? "descending" : "ascending") : "none");
    }
  }
  function wire(table) {
    if (!table.tHead || !table.tHead.rows.length || !table.tBodies.length) { return; }
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) {
      (function (index) {
        var button = headers[index].querySelector("button");
        if (button) { button.addEventListener("click", function () { sortTable(table, index); }); }
      })(i);
    }
  }
  var tables = document.querySelectorAll("table.sortable");
  for (var t = 0; t < tables.length; t++) { wire(tables[t]); }
})();
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


#: Nothing but the page's own inline style and script, and data: images, may load.
_CSP = (f"default-src 'none'; img-src data:; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
        "base-uri 'none'; form-action 'none'")
