/* The leaderboard page's script (kdbench/tables/html_page.py), inlined as it is and hashed into the page's
   CSP at each render. ES5, no libraries, no network. Without it the page is plain tables; with it:
   - sorting: every header sorts its column. The keys come from the page (data-sort: the number to sort by;
     data-missing: sorts last), never from the cell's text; rows with equal keys keep the caller's order
     (data-order);
   - filters: the drop-downs show only the rows whose data-<name> holds the chosen value (a space-separated
     list: the student from scratch belongs to every pair of its student; a row without that attribute is
     hidden while the filter is set), and the search only rows whose text holds it; figures
     and sections with data-<name> follow the same filters; a section left without a row is hidden;
   - a link to a code block inside a folded <details> unfolds it. */
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

  var bar = document.querySelector ? document.querySelector("div.filters") : null;
  function holds(element, name, value) {  /* data-<name> is a space-separated list of values */
    var values = element.getAttribute("data-" + name);
    return values !== null && (" " + values + " ").indexOf(" " + value + " ") >= 0;
  }
  function matches(element, section, wanted) {  /* what a row does not say, its section may (its benchmark) */
    for (var name in wanted) {
      if (Object.prototype.hasOwnProperty.call(wanted, name) &&
          !holds(element.getAttribute("data-" + name) !== null ? element : section, name, wanted[name])) {
        return false;
      }
    }
    return true;
  }
  function applyFilters() {
    var wanted = {};
    var selects = bar.querySelectorAll("select[data-filter]");
    for (var i = 0; i < selects.length; i++) {
      if (selects[i].value) { wanted[selects[i].getAttribute("data-filter")] = selects[i].value; }
    }
    var text = bar.querySelector("input[data-filter-text]").value.trim().toLowerCase();
    var shown = 0, total = 0;
    var sections = document.querySelectorAll("section");
    for (var s = 0; s < sections.length; s++) {
      var rows = sections[s].querySelectorAll("tbody tr");
      var any = rows.length === 0;
      for (var r = 0; r < rows.length; r++) {
        var keep = matches(rows[r], sections[s], wanted) &&
          (!text || rows[r].textContent.toLowerCase().indexOf(text) >= 0);
        rows[r].hidden = !keep;
        any = any || keep;
        total += 1;
        shown += keep ? 1 : 0;
      }
      var figures = sections[s].querySelectorAll("figure[data-pair]");
      for (var f = 0; f < figures.length; f++) {
        var pair = wanted.pair === undefined || holds(figures[f], "pair", wanted.pair);
        figures[f].hidden = !pair || !any;
      }
      var tablesHere = sections[s].querySelectorAll("div.table");
      for (var d = 0; d < tablesHere.length; d++) {
        tablesHere[d].hidden = tablesHere[d].querySelectorAll("tbody tr:not([hidden])").length === 0 &&
          tablesHere[d].querySelectorAll("tbody tr").length > 0;
      }
      sections[s].hidden = !any;
    }
    bar.querySelector("output").textContent = shown === total ? total + " rows" : shown + " of " + total + " rows";
  }
  function reveal() {
    var id = window.location.hash ? decodeURIComponent(window.location.hash.slice(1)) : "";
    var target = id ? document.getElementById(id) : null;
    for (var node = target; node; node = node.parentNode) {
      if (node.tagName === "DETAILS") { node.open = true; }
      if (node.hidden) { node.hidden = false; }
    }
    if (target) { target.scrollIntoView(); }
  }
  if (bar) {
    bar.hidden = false;
    var controls = bar.querySelectorAll("select, input");
    for (var c = 0; c < controls.length; c++) {
      controls[c].addEventListener(controls[c].tagName === "INPUT" ? "input" : "change", applyFilters);
    }
    bar.querySelector("button[data-filter-reset]").addEventListener("click", function () {
      for (var i = 0; i < controls.length; i++) { controls[i].value = ""; }
      applyFilters();
    });
    applyFilters();
  }
  if (typeof window !== "undefined" && window.addEventListener && document.getElementById) {
    window.addEventListener("hashchange", reveal);
    reveal();
  }
})();
