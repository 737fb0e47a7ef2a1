"""The leaderboard page: every value shown as given, all text escaped, nothing fetched, tables sortable.

The page is parsed back with ``html.parser`` into a small tree, so the tests check what a browser would
see (elements, attributes, text), not substrings of the markup. The sort script itself is run in Node
on a minimal stand-in for the DOM when ``node`` is installed. The template and the static style and
script are package data: a wheel built from the tree carries them and renders the same page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kdbench.tables import html_page
from kdbench.tables.html_page import PageFigure, PageSection, PageTable, render_page

NASTY = '<b>&"\'</b> → ± Δ λ1'  # markup characters, quotes and unicode in one label
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRS = {"src", "href", "action", "formaction", "poster", "srcset", "data", "background", "cite", "longdesc",
             "manifest", "ping", "xlink:href"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None):
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter(tag)

    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()


class TreeParser(HTMLParser):
    """Just enough of an HTML tree builder: elements, attributes, text (character references resolved)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        assert len(node.attrs) == len(attrs), f"duplicate attribute on <{tag}>"
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert tag not in VOID
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> tuple[Node, TreeParser]:
    parser = TreeParser()
    parser.feed(page)
    parser.close()
    assert parser.stack == [parser.root], "unclosed elements"
    return parser.root, parser


def table_texts(table: Node) -> tuple[list[str], list[list[str]]]:
    headers = [th.text() for th in next(table.iter("thead")).iter("th")]
    rows = [[td.text() for td in tr.iter("td")] for tr in next(table.iter("tbody")).iter("tr")]
    return headers, rows


@functools.cache
def png(width: int = 40, height: int = 30) -> bytes:
    figure = Figure(figsize=(width / 10, height / 10), dpi=10)
    figure.add_subplot().plot([0, 1, 2], [2, 0, 1])
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def leaderboard() -> pd.DataFrame:
    return pd.DataFrame({
        "method": ["KD", "dkd", "Crd", "FitNet", "at"],
        "top-1 (%)": ["74.12", "73.50", "–", "74.12 ± 0.30", None],
        "Δ": ["+1.20*", "−0.35", "+0.10", "+1.20", math.nan],
        "p": [0.002, math.nan, 0.04, 1e-05, 0.5],
    })


#: The unrounded numbers behind the formatted columns of :func:`leaderboard`, as the leaderboard passes them.
LEADERBOARD_KEYS = {"top-1 (%)": [74.12, 73.5, math.nan, 74.12, math.nan], "Δ": [1.2, -0.35, 0.1, 1.2, math.nan]}


def expected_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    return str(value)


def test_every_row_and_cell_appears_in_order_as_given() -> None:
    frame = pd.DataFrame({
        "pair": ["resnet56 → resnet20", "wrn40_2 → wrn16_2", NASTY, "  spaced  "],
        "top-1": [74.12, 1e-05, math.nan, 3.0],
        "n": pd.array([3, None, 1, 2], dtype="Int64"),
        "mixed": [None, [1, 2], True, "λ1=0.5"],
        NASTY: ["a", "b", "c", "d"],
    }, index=["w", "x", "y", "z"])  # the index is not shown: callers put what matters in columns
    other = leaderboard()
    root, parser = parse(render_page("t", [PageSection("s", tables=(PageTable("a", frame), PageTable("b", other)))]))
    assert parser.doctype.lower() == "doctype html"
    tables = list(root.iter("table"))
    assert len(tables) == 2
    for table, source in zip(tables, (frame, other), strict=True):
        headers, rows = table_texts(table)
        assert headers == [str(column) for column in source.columns]
        assert rows == [[expected_cell(source.iloc[i, j]) for j in range(source.shape[1])]
                        for i in range(source.shape[0])]
    # Spot checks, so the expected values are not only computed the same way as the rendered ones.
    _, rows = table_texts(tables[0])
    assert rows[0][:3] == ["resnet56 → resnet20", "74.12", "3"]
    assert rows[1][1:4] == ["1e-05", "–", "[1, 2]"]
    assert rows[2][0] == NASTY and rows[2][1] == "–" and rows[3][0] == "  spaced  "
    # Without JavaScript the rows are in the caller's order (the script numbers them at load for stable sorts).
    assert not [tr for tr in tables[0].iter("tr") if "data-order" in tr.attrs]


def test_multiindex_and_duplicate_columns_and_empty_frames() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=pd.MultiIndex.from_tuples([("KD", "top-1"), ("KD", "Δ"), ("pair", "")]))
    dup = pd.DataFrame([["a", "b"]], columns=["x", "x"])
    tables = (PageTable("multi", frame), PageTable("dup", dup), PageTable("empty", pd.DataFrame({"a": []})),
              PageTable("nothing", pd.DataFrame()))
    root, _ = parse(render_page("t", [PageSection("s", tables=tables)]))
    rendered = [table_texts(t) for t in root.iter("table")]
    assert rendered[0] == (["KD / top-1", "KD / Δ", "pair"], [["1", "2", "3"]])
    assert rendered[1] == (["x", "x"], [["a", "b"]])
    assert rendered[2] == (["a"], [])
    assert rendered[3] == ([], [])
    assert [p.text() for p in root.iter("p") if "empty" in p.classes()] == ["No rows.", "No rows."]


def test_text_is_escaped_and_never_markup() -> None:
    frame = pd.DataFrame({NASTY: [NASTY, "</td></tr></table><script>alert(1)</script>"]})
    section = PageSection(NASTY, intro=NASTY, tables=(PageTable(NASTY, frame, note=NASTY),),
                          figures=(PageFigure(NASTY, png(), caption=NASTY),))
    page = render_page(NASTY, [section], footer=NASTY)
    root, _ = parse(page)
    assert not list(root.iter("b")), "a label became markup"
    assert len(list(root.iter("script"))) == 1
    assert next(root.iter("title")).text() == NASTY
    assert next(root.iter("h1")).text() == NASTY
    assert [h.text() for h in root.iter("h2") if h.attrs.get("id") != "contents-title"] == [NASTY]
    assert next(root.iter("h3")).text() == NASTY
    paragraphs = [p.text() for p in root.iter("p")]
    assert paragraphs.count(NASTY) == 3  # intro, note, footer
    headers, rows = table_texts(next(root.iter("table")))
    assert headers == [NASTY] and rows == [[NASTY], ["</td></tr></table><script>alert(1)</script>"]]
    assert next(root.iter("img")).attrs["alt"] == NASTY
    assert NASTY in next(root.iter("figcaption")).text()
    toc = next(root.iter("nav"))
    assert [a.text() for a in toc.iter("a")] == [NASTY, NASTY, NASTY]  # section, table, figure


def test_nothing_points_outside_the_document() -> None:
    sections = [PageSection("digits", "intro", (PageTable("top-1", leaderboard(), "note"),), (PageFigure("f", png()),)),
                PageSection("cifar100", tables=(PageTable("t", leaderboard()),))]
    page = render_page("Leaderboard", sections, footer="kdbench")
    root, _ = parse(page)
    for node in root.iter():
        assert node.tag not in {"iframe", "object", "embed", "base", "form", "audio", "video", "source"}
        if node.tag == "link":
            assert node.attrs.get("rel") == "icon"
        if node.tag == "script":
            assert "src" not in node.attrs
        for name, value in node.attrs.items():
            if name in URL_ATTRS:
                assert value is not None and (value.startswith("data:") or value.startswith("#")), (node.tag, name)
            assert not name.startswith("on"), "inline handlers would be blocked by the CSP"
    # Outside the embedded images, no scheme and no protocol-relative URL anywhere, including CSS and JS.
    outside = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", page)
    for needle in ("http:", "https:", "ftp:", "file:", "//", "url(", "@import", "fetch(", "XMLHttpRequest", "import("):
        assert needle not in outside, needle
    style = next(root.iter("style")).text()
    assert "overflow-x: auto" in style  # wide tables scroll on narrow screens
    csp = next(m for m in root.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp.attrs["content"]
    assert next(root.iter("meta")).attrs == {"charset": "utf-8"}  # first in <head>


def test_inline_style_and_script_match_the_content_security_policy() -> None:
    root, _ = parse(render_page("t", [PageSection("s", tables=(PageTable("t", leaderboard()),))]))
    policy = next(m for m in root.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy")
    directives = dict(d.strip().split(" ", 1) for d in policy.attrs["content"].split(";"))
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (element,) = root.iter(tag)
        digest = base64.b64encode(hashlib.sha256(element.text().encode()).digest()).decode()
        assert directives[directive] == f"'sha256-{digest}'", f"the browser would block the inline {tag}"
    assert directives["img-src"] == "data:"


def test_figures_are_data_uris_of_the_given_png() -> None:
    images = [png(40, 30), png(20, 50)]
    section = PageSection("s", figures=(PageFigure("first", images[0], "a caption"), PageFigure("", images[1])))
    root, _ = parse(render_page("t", [section]))
    figures = list(root.iter("figure"))
    assert len(figures) == 2
    for figure, data, size in zip(figures, images, ((40, 30), (20, 50)), strict=True):
        (img,) = figure.iter("img")
        prefix = "data:image/png;base64,"
        assert img.attrs["src"].startswith(prefix)
        assert base64.b64decode(img.attrs["src"][len(prefix):], validate=True) == data
        assert (int(img.attrs["width"]), int(img.attrs["height"])) == size
        assert img.attrs["alt"]
    assert figures[0].children and next(figures[0].iter("figcaption")).text() == "first a caption"
    assert next(figures[0].iter("img")).attrs["alt"] == "first"


def test_section_ids_are_unique_and_the_contents_link_to_each() -> None:
    titles = ["digits", "digits", "Digits!", "", "Δ", "λ1", "1 digits", "contents", "digits-2", "x" * 200]
    sections = [PageSection(t, tables=(PageTable("top-1", leaderboard()), PageTable("top-1", leaderboard())),
                            figures=(PageFigure("top-1", png()),)) for t in titles]
    root, _ = parse(render_page("t", sections))
    ids = [node.attrs["id"] for node in root.iter() if "id" in node.attrs]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", i) for i in ids), ids
    section_ids = [s.attrs["id"] for s in root.iter("section")]
    assert len(section_ids) == len(titles)
    (toc,) = root.iter("nav")
    links = [a.attrs["href"] for a in toc.iter("a")]
    assert all(link.startswith("#") and link[1:] in ids for link in links)
    assert [link[1:] for link in links if link[1:] in section_ids] == section_ids  # each section, in order
    tables = [n.attrs["id"] for n in root.iter("div") if "table" in n.classes()]
    figures = [f.attrs["id"] for f in root.iter("figure")]
    assert set(tables) | set(figures) <= {link[1:] for link in links}
    assert [h.text() for h in root.iter("h2")][1:] == titles
    # Every in-page link resolves.
    assert all(a.attrs["href"][1:] in ids for a in root.iter("a"))


def test_every_sortable_table_has_clickable_headers_and_the_script_is_inline() -> None:
    sections = [PageSection("s", tables=(PageTable("a", leaderboard()), PageTable("b", pd.DataFrame({"x": [1]}))))]
    root, _ = parse(render_page("t", sections))
    tables = list(root.iter("table"))
    assert tables and all("sortable" in t.classes() for t in tables)
    for table in tables:
        assert "scroll" in _parent(root, table).classes()
        for th in table.iter("th"):
            assert th.attrs["aria-sort"] == "none" and th.attrs["data-type"] in {"number", "text"}
            (button,) = th.iter("button")
            assert button.attrs.get("type") == "button" and button.text() == th.text()
    (script,) = root.iter("script")
    source = script.text()
    assert "src" not in script.attrs
    for needed in ('querySelectorAll("table.sortable")', "addEventListener", '"aria-sort"', "data-sort",
                   "data-missing"):
        assert needed in source


@pytest.mark.parametrize(
    ("cells", "kind", "keys"),
    [
        ([74.12, 1.2, -0.35, 0.002, None, 3], "number", [74.12, 1.2, -0.35, 0.002, None, 3.0]),
        ([math.inf, -math.inf, math.nan, 10**400], "number", [math.inf, -math.inf, None, math.inf]),
        # formatted text is never parsed: without sort keys from the caller it sorts as text
        (["74.12", "+1.20*", "−0.35", "74.12 ± 0.30"], "text", None),
        (["resnet56", "8x4", 74.12], "text", None),
        (["–", None], "text", None),  # nothing to be numeric about
    ],
)
def test_numeric_columns_carry_sort_keys(cells: list, kind: str, keys: list | None) -> None:
    root, _ = parse(render_page("t", [PageSection("s", tables=(PageTable("t", pd.DataFrame({"c": cells},
                                                                                            dtype=object)),))]))
    (th,) = root.iter("th")
    assert th.attrs["data-type"] == kind
    tds = list(root.iter("td"))
    if keys is None:
        assert all("data-sort" not in td.attrs for td in tds)
        return
    assert "num" in th.classes() and "n1" in next(root.iter("table")).classes()  # right-aligned by the table
    assert sort_numbers(tds) == keys


def sort_numbers(tds: list[Node]) -> list[float | None]:
    """What the page's script sorts numeric cells by: data-sort, else the number the text starts with; None: last."""
    def number(td: Node) -> float | None:
        if "data-missing" in td.attrs:
            return None
        if "data-sort" in td.attrs:
            return float(str(td.attrs["data-sort"]).replace("Infinity", "inf"))
        return html_page.text_number(td.text())

    return [number(td) for td in tds]


def test_float_cells_are_not_reformatted() -> None:
    values = [74.1234567, 0.1 + 0.2, 1e20, -0.0, np.float32(0.5), 7]
    table = PageTable("t", pd.DataFrame({"v": values}, dtype=object))
    root, _ = parse(render_page("t", [PageSection("s", tables=(table,))]))
    assert [td.text() for td in root.iter("td")] == [str(v) for v in values]


def test_rendering_is_deterministic_and_validates_its_inputs() -> None:
    def build() -> str:
        section = PageSection("s", "i", [PageTable("t", leaderboard())], [PageFigure("f", png())])  # lists accepted
        return render_page("t", [section], "f")

    assert build() == build()
    assert isinstance(PageSection("s", tables=[PageTable("t", leaderboard())]).tables, tuple)
    with pytest.raises(ValueError, match="PNG"):
        PageFigure("f", b"GIF89a....")
    with pytest.raises(TypeError, match="DataFrame"):
        PageTable("t", [[1, 2]])  # type: ignore[arg-type]
    root, _ = parse(render_page("empty", []))
    assert not list(root.iter("nav")) and not list(root.iter("table"))


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_sort_script_sorts_numbers_text_and_missing_last(tmp_path) -> None:
    natural = pd.DataFrame({"model": ["resnet20", "ResNet8", "resnet110", "–"]})
    table = PageTable("a", leaderboard(), sort_keys=LEADERBOARD_KEYS)
    page = render_page("t", [PageSection("s", tables=(table, PageTable("b", natural)))])
    clicks = [[0, 0], [0, 0], [0, 1], [0, 1], [0, 2], [0, 2], [0, 3], [0, 3], [0, 3], [0, 1], [1, 0], [1, 0]]
    out = run_sort_script(page, clicks, tmp_path)
    assert out["rootClass"] == "js"
    orders = [step["order"] for step in out["steps"]]
    # Rows: 0 KD 74.12 +1.20* 0.002 | 1 dkd 73.50 −0.35 – | 2 Crd – +0.10 0.04 | 3 FitNet 74.12±0.30 +1.20 1e-05
    #       4 at – – 0.5
    assert orders == [
        [4, 2, 1, 3, 0],  # method, A→Z, case-insensitive
        [0, 3, 1, 2, 4],  # reversed
        [1, 0, 3, 2, 4],  # top-1 ascending, ties in original order, missing last
        [0, 3, 1, 2, 4],  # descending, missing still last
        [1, 2, 0, 3, 4],  # Δ: Unicode minus is negative, "+1.20*" is 1.20
        [0, 3, 2, 1, 4],
        [3, 0, 2, 4, 1],  # p: 1e-05 < 0.002 < 0.04 < 0.5, NaN last
        [4, 2, 0, 3, 1],
        [3, 0, 2, 4, 1],  # a third click sorts ascending again
        [1, 0, 3, 2, 4],  # ties keep the caller's order (0 before 3), whatever the order before the click
        [1, 0, 2, 3],  # natural order: ResNet8 < resnet20 < resnet110, "–" last
        [2, 0, 1, 3],
    ]
    aria = [step["ariaSort"] for step in out["steps"]]
    assert aria[0] == ["ascending", "none", "none", "none"]
    assert aria[1] == ["descending", "none", "none", "none"]
    assert aria[2] == ["none", "ascending", "none", "none"]
    assert aria[7] == ["none", "none", "none", "descending"]
    assert aria[9] == ["none", "ascending", "none", "none"]
    assert aria[11] == ["descending"]


def test_sort_keys_are_the_unrounded_values_behind_the_text() -> None:
    frame = pd.DataFrame({"method": ["KD", "DKD", "CRD", "AT", "FitNet"],
                          "top-1": ["74.12 ± 0.30*", "74.12", "–", "74.12", "74.12 (3)"],
                          "pairs": [3, 2, 1, 4, 5]}, index=[10, 11, 12, 13, 14])
    keys = pd.DataFrame({"top-1": [74.1249, 74.1151, 75.0, math.nan, 74.12]})  # by position, not by index
    root, _ = parse(render_page("t", [PageSection("s", tables=(PageTable("t", frame, sort_keys=keys),))]))
    assert [th.attrs["data-type"] for th in root.iter("th")] == ["text", "number", "number"]
    top1 = [list(tr.iter("td"))[1] for tr in next(root.iter("tbody")).iter("tr")]
    assert [td.text() for td in top1] == ["74.12 ± 0.30*", "74.12", "–", "74.12", "74.12 (3)"]  # shown as given
    assert next(root.iter("table")).classes() == ["sortable", "n2", "n3"]  # numeric columns, right-aligned
    # Only as many digits as keep the keys' order: the text "74.12 (3)" is its key, the others need one.
    assert [td.attrs.get("data-sort") for td in top1] == ["74.125", "74", None, None, None]
    assert sort_numbers(top1) == [74.125, 74.0, None, None, 74.12]  # 74.1151 < 74.12 < 74.1249, as the keys
    assert "data-missing" not in top1[2].attrs  # "–" reads as no number: last without saying so
    assert "data-missing" in top1[3].attrs  # a NaN key sorts last, though its text reads as a number
    # An unkeyed column of real numbers sorts by their values, here the numbers the cells print.
    pairs = [list(tr.iter("td"))[2] for tr in next(root.iter("tbody")).iter("tr")]
    assert sort_numbers(pairs) == [3, 2, 1, 4, 5] and not [td for td in pairs if "data-sort" in td.attrs]


def test_real_number_cells_sort_by_their_own_values() -> None:
    frame = pd.DataFrame({"v": [74.1234567, np.float32(0.1), 7, 10**400], "flag": [True, False, True, False]},
                         dtype=object)
    root, _ = parse(render_page("t", [PageSection("s", tables=(PageTable("t", frame),))]))
    rows = [list(tr.iter("td")) for tr in next(root.iter("tbody")).iter("tr")]
    assert sort_numbers([row[0] for row in rows]) == [74.1234567, 0.1, 7, math.inf]  # in the values' order
    assert not [row for row in rows if "data-sort" in row[0].attrs]  # each text reads as its number (10**400: inf)
    assert [th.attrs["data-type"] for th in root.iter("th")] == ["number", "text"]  # booleans are not numbers


def test_sort_keys_are_validated_where_the_table_is_made() -> None:
    frame = pd.DataFrame({"a": ["1", "2"], "b": ["x", "y"]})
    table = PageTable("t", frame, sort_keys={"a": (1, None), "b": np.array([0.5, np.nan])})
    assert table.keys["a"][0] == 1.0 and math.isnan(table.keys["a"][1])
    assert isinstance(table.keys["b"], tuple) and table.keys["b"][0] == 0.5
    with pytest.raises(ValueError, match="not exactly one column"):
        PageTable("t", frame, sort_keys={"c": [1, 2]})
    with pytest.raises(ValueError, match="not exactly one column"):
        PageTable("t", pd.DataFrame([[1, 2]], columns=["x", "x"]), sort_keys={"x": [1]})
    with pytest.raises(ValueError, match="1 sort keys for column 'a' of 2 rows"):
        PageTable("t", frame, sort_keys={"a": [1]})
    for bad in ("1", True):
        with pytest.raises(TypeError, match="not a number"):
            PageTable("t", frame, sort_keys={"a": [bad, 2]})


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_cells_that_print_alike_sort_by_their_unrounded_values(tmp_path) -> None:
    frame = pd.DataFrame({"method": ["a", "b", "c", "d"], "top-1": ["74.12 ± 0.30*", "74.12", "74.12 ± 0.01", "–"],
                          "Δ vs KD": ["+0.00", "−0.00", "+0.00*", "+0.00"]})
    keys = {"top-1": [74.1249, 74.1151, 74.12, 73.0], "Δ vs KD": [0.004, -0.004, 0.001, math.nan]}
    page = render_page("t", [PageSection("s", tables=(PageTable("t", frame, sort_keys=keys),))])
    out = run_sort_script(page, [[0, 1], [0, 1], [0, 2], [0, 2]], tmp_path)
    assert [step["order"] for step in out["steps"]] == [
        [1, 2, 0, 3],  # 74.1151 < 74.12 < 74.1249, the "–" last (its key is ignored)
        [0, 2, 1, 3],
        [1, 2, 0, 3],  # −0.004 < 0.001 < 0.004, the NaN key last
        [0, 2, 1, 3],
    ]


def csp_directives(root: Node) -> dict[str, str]:
    policy = next(m for m in root.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy")
    return dict(d.strip().split(" ", 1) for d in policy.attrs["content"].split(";"))


def sha256_source(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode() + "'"


def test_csp_hashes_are_the_sha256_of_the_static_files_bytes() -> None:
    static = resources.files("kdbench.tables") / "static"
    css, js = (static / "leaderboard.css").read_bytes(), (static / "leaderboard.js").read_bytes()
    root, _ = parse(render_page("t", [PageSection("s", tables=(PageTable("t", leaderboard()),))]))
    directives = csp_directives(root)
    assert directives["style-src"] == sha256_source(css)
    assert directives["script-src"] == sha256_source(js)
    assert next(root.iter("style")).text().encode() == css  # inlined exactly as stored
    assert next(root.iter("script")).text().encode() == js


def test_an_edited_static_file_carries_its_own_hash(tmp_path, monkeypatch) -> None:
    static = resources.files("kdbench.tables") / "static"
    for name in ("leaderboard.css", "leaderboard.js"):
        (tmp_path / name).write_bytes((static / name).read_bytes())
    before = csp_directives(parse(render_page("t", []))[0])
    monkeypatch.setattr(html_page, "STATIC", tmp_path)
    assert csp_directives(parse(render_page("t", []))[0]) == before  # a copy hashes the same
    css = (tmp_path / "leaderboard.css").read_bytes() + b"h1 { color: #000; }\n"
    (tmp_path / "leaderboard.css").write_bytes(css)
    js = b"/* edited */\n" + (tmp_path / "leaderboard.js").read_bytes()
    (tmp_path / "leaderboard.js").write_bytes(js.replace(b"\n", b"\r\n"))  # a CRLF checkout
    page = render_page("t", [])
    root, _ = parse(page)
    after = csp_directives(root)
    assert after["style-src"] == sha256_source(css) != before["style-src"]
    # The browser's parser reads CRLF as LF, and so does the page: the hash is of what the browser sees.
    assert after["script-src"] == sha256_source(js) != before["script-src"]
    assert "\r" not in page and next(root.iter("style")).text().encode() == css
    (tmp_path / "leaderboard.js").write_text('var x = "</SCRIPT><script>alert(1)";')
    with pytest.raises(ValueError, match="</script"):
        render_page("t", [])


def test_a_script_in_a_method_label_cannot_inject_markup() -> None:
    label = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    frame = pd.DataFrame({"method": [label, "KD"], label: ["74.12", "73.00"], "params": [f"T={label}", "T=4"]})
    table = PageTable(label, frame, note=label, sort_keys={label: [74.1, 73.0]})
    section = PageSection(label, intro=label, tables=(table,), figures=(PageFigure(label, png(), caption=label),))
    page = render_page(label, [section], footer=label)
    assert "<script>alert" not in page and "<img src=x" not in page
    root, _ = parse(page)
    (script,) = root.iter("script")  # the page's own, nothing else
    assert "alert" not in script.text()
    (img,) = root.iter("img")
    assert img.attrs["src"].startswith("data:image/png;base64,") and img.attrs["alt"] == label
    assert not any(name.startswith("on") for node in root.iter() for name in node.attrs)
    headers, rows = table_texts(next(root.iter("table")))
    assert headers == ["method", label, "params"] and rows[0] == [label, "74.12", f"T={label}"]
    assert next(root.iter("title")).text() == label and next(root.iter("h1")).text() == label


@pytest.mark.slow
def test_the_template_and_static_files_are_package_data(tmp_path) -> None:
    """A wheel built from the tree carries them, and kdbench installed from it renders the same page."""
    pytest.importorskip("setuptools.build_meta")
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    for name in ("kdbench", "plugins"):
        shutil.copytree(repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    build = "import sys, setuptools.build_meta as b; b.build_wheel(sys.argv[1])"
    subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=source, check=True,
                   capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    tables = repo / "kdbench" / "tables"
    expected = {f"kdbench/tables/{path.relative_to(tables).as_posix()}"
                for folder in ("templates", "static") for path in (tables / folder).rglob("*") if path.is_file()}
    assert {"kdbench/tables/templates/leaderboard.html.j2", "kdbench/tables/static/leaderboard.css",
            "kdbench/tables/static/leaderboard.js"} <= expected
    with zipfile.ZipFile(wheel) as archive:
        assert expected <= set(archive.namelist())
        archive.extractall(tmp_path / "site")
    render = ("import sys; from pathlib import Path; import kdbench.tables.html_page as h; "
              "assert Path(h.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), h.__file__; "
              "sys.stdout.write(h.render_page('t', []))")
    result = subprocess.run([sys.executable, "-c", render, str(tmp_path / "site")], cwd=tmp_path, check=True,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert result.stdout == render_page("t", [])


def run_sort_script(page: str, clicks: list[list[int]], tmp_path: Path) -> dict:
    """The page's own script run in Node on the page's sortable tables; ``clicks`` are [table, column]."""
    root, _ = parse(page)
    (script,) = root.iter("script")

    def attrs(node: Node) -> dict[str, str]:
        return {k: "" if v is None else v for k, v in node.attrs.items()}

    tables = [{"headers": [{"attrs": attrs(th), "button": bool(list(th.iter("button")))} for th in table.iter("th")],
               "rows": [{"attrs": attrs(tr), "cells": [{"attrs": attrs(td), "text": td.text()} for td in tr.iter("td")]}
                        for tr in next(table.iter("tbody")).iter("tr")]}
              for table in root.iter("table") if "sortable" in table.classes()]
    harness = tmp_path / "harness.js"
    harness.write_text(_HARNESS)
    spec = json.dumps({"script": script.text(), "tables": tables, "clicks": clicks})
    result = subprocess.run(["node", str(harness)], input=spec, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def _parent(root: Node, child: Node) -> Node:
    for node in root.iter():
        if any(c is child for c in node.children):
            return node
    raise AssertionError("no parent")


# A stand-in for the few DOM features the sort script uses (ES5 in the page; this harness is Node only).
_HARNESS = r"""
const spec = JSON.parse(require("fs").readFileSync(0, "utf8"));
function element(attrs) {
  return {
    attrs: Object.assign({}, attrs),
    getAttribute(name) { return Object.prototype.hasOwnProperty.call(this.attrs, name) ? this.attrs[name] : null; },
    setAttribute(name, value) { this.attrs[name] = String(value); },
  };
}
const tables = spec.tables.map((t) => {
  const headers = t.headers.map((h) => {
    const th = element(h.attrs);
    const listeners = [];
    const button = h.button ? { addEventListener(type, fn) { if (type === "click") listeners.push(fn); } } : null;
    th.querySelector = (selector) => (selector === "button" ? button : null);
    th.click = () => listeners.forEach((fn) => fn());
    return th;
  });
  const rows = t.rows.map((r, i) => {
    const tr = element(r.attrs);
    tr.index = i;  // the page's order, for the results (not read by the script)
    tr.cells = r.cells.map((c) => Object.assign(element(c.attrs), { textContent: c.text }));
    return tr;
  });
  const body = {
    rows: rows.slice(),
    appendChild(row) { const i = this.rows.indexOf(row); if (i >= 0) this.rows.splice(i, 1); this.rows.push(row); },
  };
  return { tHead: { rows: [{ cells: headers }] }, tBodies: [body], headers };
});
global.document = {
  documentElement: { className: "" },
  querySelectorAll(selector) { return selector === "table.sortable" ? tables : []; },
};
(0, eval)(spec.script);
const steps = spec.clicks.map(([t, column]) => {
  tables[t].headers[column].click();
  return {
    order: tables[t].tBodies[0].rows.map((r) => r.index),
    ariaSort: tables[t].headers.map((h) => h.getAttribute("aria-sort")),
  };
});
console.log(JSON.stringify({ rootClass: document.documentElement.className, steps }));
"""


# --- links, rich cells, row data, filters, inline SVG and code blocks ----------------------------------------------


def test_cells_link_only_within_the_page_or_to_files_beside_it() -> None:
    from kdbench.tables.html_page import Link, Rich

    frame = pd.DataFrame({"method": ["KD", "DKD"],
                          "records": [Rich(("seeds ", Link("0", "../raw/s/k0/record.json"), " ",
                                            Link("1", "../raw/s/k1/record.json", title=NASTY))),
                                      Link(NASTY, "#fig-1")]})
    page = render_page("t", [PageSection("s", tables=(PageTable("t", frame),))])
    root, _ = parse(page)
    cells = [list(tr.iter("td"))[1] for tr in next(root.iter("tbody")).iter("tr")]
    assert [c.text() for c in cells] == ["seeds 0 1", NASTY]  # the text as given, markup escaped
    assert [(a.attrs["href"], a.text()) for a in cells[0].iter("a")] == [("../raw/s/k0/record.json", "0"),
                                                                         ("../raw/s/k1/record.json", "1")]
    assert list(cells[0].iter("a"))[1].attrs["title"] == NASTY
    for bad in ("https://example.org/x", "//example.org/x", "javascript:alert(1)", "file:///etc/passwd",
                "data:text/html,x", "a b", "#", "#1x", 'x"onclick="1'):
        with pytest.raises(ValueError, match="not an anchor or a relative path"):
            Link("x", bad)
    with pytest.raises(TypeError, match="text or a Link"):
        Rich(("a", 1))  # type: ignore[arg-type]


def test_rows_carry_their_filter_values_and_the_filters_are_hidden_without_javascript() -> None:
    from kdbench.tables.html_page import PageFilter

    frame = pd.DataFrame({"method": ["KD", "DKD"], "top-1": [70.0, 71.0]})
    table = PageTable("t", frame, row_data=[{"pair": "p1", "method": "kd"}, {"pair": "p1 p2", "method": NASTY}],
                      css="main")
    filters = [PageFilter("pair", "pair", (("p1", "resnet20 → resnet8"), ("p2", NASTY)))]
    root, _ = parse(render_page("t", [PageSection("s", tables=(table,), data={"benchmark": "b1"})], filters=filters))
    rows = list(next(root.iter("tbody")).iter("tr"))
    assert [(tr.attrs["data-pair"], tr.attrs["data-method"]) for tr in rows] == [("p1", "kd"), ("p1 p2", NASTY)]
    assert "main" in next(root.iter("table")).classes() and next(root.iter("section")).attrs["data-benchmark"] == "b1"
    (bar,) = [div for div in root.iter("div") if "filters" in div.classes()]
    assert "hidden" in bar.attrs  # the script shows it; without it the page is plain tables
    (select,) = bar.iter("select")
    assert select.attrs["data-filter"] == "pair"
    assert [(o.attrs["value"], o.text()) for o in select.iter("option")] == [
        ("", "all"), ("p1", "resnet20 → resnet8"), ("p2", NASTY)]
    assert not list(root.iter("form"))  # nothing is ever submitted
    # a filter may read a row's value from a column's text, or give the value of rows that say nothing
    page = render_page("t", [PageSection("s", tables=(table,))],
                       filters=[PageFilter("pair", "pair", (("p1", "a"),), column="pair", default="p1")])
    (select,) = parse(page)[0].iter("select")
    assert (select.attrs["data-column"], select.attrs["data-default"]) == ("pair", "p1")
    with pytest.raises(ValueError, match="row data for 1 rows of 2"):
        PageTable("t", frame, row_data=[{"pair": "p1"}])
    with pytest.raises(ValueError, match="lowercase letters"):
        PageTable("t", frame, row_data=[{"Pair": "p1"}, {"pair": "p1"}])


SVG = ('<svg class="plot" viewBox="0 0 10 10" width="10" height="10" role="img" aria-label="a">'
       '<path class="m c1" d="M1,1h2"><title>kd &lt;b&gt;</title></path><text class="tick" x="1" y="2">1</text></svg>')


def test_inline_svg_is_drawing_only() -> None:
    from kdbench.tables.html_page import PageSvg

    root, _ = parse(render_page("t", [PageSection("s", figures=(PageSvg("f", SVG, NASTY, anchor="fig-1",
                                                                         data={"pair": "p1"}),))]))
    (figure,) = root.iter("figure")
    assert figure.attrs["id"] == "fig-1" and figure.attrs["data-pair"] == "p1"
    (svg,) = figure.iter("svg")
    assert next(svg.iter("title")).text() == "kd <b>"
    assert next(figure.iter("figcaption")).text() == f"f {NASTY}"
    for bad in ('<svg><script>alert(1)</script></svg>', '<svg onload="alert(1)"></svg>',
                '<svg><path style="fill:red"/></svg>', '<svg><a href="https://x.org"><text>x</text></a></svg>',
                '<svg><foreignObject><div>x</div></foreignObject></svg>', '<svg></svg><svg></svg>',
                '<svg><path d="M0,0"/>', 'text<svg></svg>', '<path d="M0,0"/>', '<svg><!-- x --></svg>',
                '<svg><image href="data:image/png;base64,AA=="/></svg>'):
        with pytest.raises(ValueError, match="PageSvg"):
            PageSvg("f", bad)


def test_code_blocks_have_their_anchors_and_escape_their_text() -> None:
    from kdbench.tables.html_page import PageCode

    code = PageCode("yaml-1", NASTY, f"name: x\nmethods: [{NASTY}]\n")
    root, _ = parse(render_page("t", [PageSection("s", codes=(code,), codes_title="Suite entries")]))
    (details,) = root.iter("details")
    assert next(details.iter("summary")).text() == "Suite entries"
    (block,) = [div for div in details.iter("div") if div.attrs.get("id") == "yaml-1"]
    assert next(block.iter("pre")).text() == f"name: x\nmethods: [{NASTY}]\n"
    with pytest.raises(ValueError, match="not an element id"):
        PageCode("1 x", "t", "")
    with pytest.raises(ValueError, match="used twice"):
        render_page("t", [PageSection("s", codes=(code, code))])
