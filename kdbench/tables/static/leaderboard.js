/* The leaderboard page's sort script (kdbench/tables/html_page.py), inlined as it is and hashed into
   the page's CSP at each render. ES5, no libraries, no network. The keys come from the page
   (data-sort: the number to sort by; data-missing: sorts last), never from the cell's text;
   rows with equal keys keep the caller's order (data-order). */
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
