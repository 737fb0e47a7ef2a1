/* The leaderboard page's script (kdbench/tables/html_page.py), inlined as it is and hashed into the page's
   CSP at each render. ES5, no libraries, no network. Without it the page is plain tables; with it:
   - sorting: every header sorts its column. A numeric column's cell sorts by its data-sort, else by the
     number its text starts with (NUMBER, the pattern html_page.text_number mirrors: the page writes
     data-sort only where the text does not read as the right number), and last with data-missing or with
     neither; a text column sorts by the text. Rows with equal keys keep the page's order (numbered at load);
   - filters: the drop-downs show only the rows whose value holds the chosen one. A row's value is its
     data-<name> (a space-separated list: the student from scratch belongs to every pair of its student),
     else the option named by its cell in the column the select's data-column heads, else its section's
     data-<name> (the benchmark), else the select's data-default; a row with none is hidden while the
     filter is set. The search shows only rows whose text holds it; figures and sections with data-<name>
     follow the same filters; a section left without a row is hidden;
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
  var NUMBER = /^([+\-\u2212]?)([0-9]+(?:\.[0-9]+)?)(?![0-9.,eE])/;
  function sortKey(cell, numeric) {
    if (!cell || cell.getAttribute("data-missing") !== null) { return null; }
    if (numeric) {
      var given = cell.getAttribute("data-sort");
      var match = given === null ? NUMBER.exec(cell.textContent) : null;
      if (given === null && !match) { return null; }
      var value = given !== null ? Number(given) : Number((match[1] && match[1] !== "+" ? "-" : "") + match[2]);
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
      rows.push({row: row, key: sortKey(row.cells[index], numeric), order: row.kdOrder || 0});
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
    var body = table.tBodies[0];
    for (var r = 0; r < body.rows.length; r++) { body.rows[r].kdOrder = r; }  /* the page's order, for ties */
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
  function holds(values, value) {  /* values: a space-separated list, or null */
    return values !== null && (" " + values + " ").indexOf(" " + value + " ") >= 0;
  }
  function headerIndex(table, text) {  /* the column headed `text`, or -1 */
    var headers = table && table.tHead && table.tHead.rows.length ? table.tHead.rows[0].cells : [];
    for (var i = 0; i < headers.length; i++) {
      if (headers[i].textContent.trim() === text) { return i; }
    }
    return -1;
  }
  function valueOf(row, section, select) {  /* a row's value for a filter; see the top of this file */
    var name = select.getAttribute("data-filter");
    if (row.getAttribute("data-" + name) !== null) { return row.getAttribute("data-" + name); }
    var column = select.getAttribute("data-column");
    var table = row.parentNode ? row.parentNode.parentNode : null;
    var index = column ? headerIndex(table, column) : -1;
    if (index >= 0 && row.cells[index]) {
      var text = row.cells[index].textContent.trim();
      for (var o = 0; o < select.options.length; o++) {
        if (select.options[o].value && select.options[o].text === text) { return select.options[o].value; }
      }
      return text;
    }
    if (section.getAttribute("data-" + name) !== null) { return section.getAttribute("data-" + name); }
    return select.getAttribute("data-default");
  }
  function matches(row, section, wanted) {
    for (var i = 0; i < wanted.length; i++) {
      if (!holds(valueOf(row, section, wanted[i]), wanted[i].value)) { return false; }
    }
    return true;
  }
  function applyFilters() {
    var wanted = [], pair;
    var selects = bar.querySelectorAll("select[data-filter]");
    for (var i = 0; i < selects.length; i++) {
      if (selects[i].value) { wanted.push(selects[i]); }
      if (selects[i].value && selects[i].getAttribute("data-filter") === "pair") { pair = selects[i].value; }
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
        var shows = pair === undefined || holds(figures[f].getAttribute("data-pair"), pair);
        figures[f].hidden = !shows || !any;
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
