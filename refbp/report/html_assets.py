"""The inline style sheet and script of ``report.html`` (no external file, no network).

The script is small and optional: without it the page reads the same, with it the tables of
class ``sortable`` sort by a click on a column header (numbers by their ``data-v`` value), a
filter box (``data-filter-for`` = a table id) hides the rows not matching its text and result,
and following a link to a scenario inside a collapsed ``<details>`` opens it.
"""

from __future__ import annotations

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 1em auto;
       max-width: 1180px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin: 0.3em 0; } h2 { font-size: 1.2em; margin: 1.1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.3em 0 0.8em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.15em 0.45em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.scroll { max-height: 62vh; overflow: auto; border: 1px solid #ddd; margin-bottom: 0.8em; }
.scroll table { margin: 0; } .scroll th { position: sticky; top: 0; z-index: 1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass { background: #d7f5d7; } td.noise { background: #fff1c2; }
td.fail { background: #f8d0d0; font-weight: bold; }
.verdict { font-size: 1.15em; font-weight: bold; margin: 0.2em 0; }
.badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 0.25em; color: #fff;
         margin-right: 0.4em; }
.ok { color: #17701a; } .bad { color: #b00020; } .warn { color: #8a6100; }
.badge.ok { background: #17701a; color: #fff; } .badge.bad { background: #b00020; color: #fff; }
nav { font-size: 0.9em; margin: 0.3em 0 0.6em; } nav a { margin-right: 1em; }
code, .mono { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: 0.9em; }
img { max-width: 100%; height: auto; } .note { color: #555; font-size: 0.9em; margin: 0.2em 0; }
.explain { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; }
details { margin: 0.3em 0; } summary { cursor: pointer; }
details.scenario { border-top: 1px solid #ddd; padding-top: 0.3em; }
details.scenario > summary { font-weight: bold; }
details.group > summary { font-size: 1.05em; font-weight: bold; }
.filter { margin: 0.3em 0; font-size: 0.9em; } .filter input { width: 18em; }
ul.messages { font-size: 0.85em; padding-left: 1.2em; }
figure.trend { display: inline-block; margin: 0.2em 0.4em; vertical-align: top; }
"""

JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) { return cell.textContent.trim().toLowerCase(); }
    return v === '' ? -Infinity : parseFloat(v);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.tHead.querySelectorAll('th').forEach(function (th) {
      th.addEventListener('click', function () {
        var col = th.cellIndex, asc = th.getAttribute('aria-sort') !== 'ascending';
        table.tHead.querySelectorAll('th').forEach(function (h) {
          h.removeAttribute('aria-sort');
        });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]), c;
          if (typeof x === 'number' && typeof y === 'number') { c = (x - y) || 0; }
          else { c = String(x).localeCompare(String(y)); }
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('[data-filter-for]').forEach(function (box) {
    var table = document.getElementById(box.getAttribute('data-filter-for'));
    var text = box.querySelector('input'), pick = box.querySelector('select');
    var count = box.querySelector('.count');
    function apply() {
      var q = text.value.trim().toLowerCase(), want = pick ? pick.value : '';
      var rows = table.tBodies[0].rows, shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var ok = (!q || rows[i].textContent.toLowerCase().indexOf(q) >= 0) &&
                 (!want || rows[i].getAttribute('data-result') === want);
        rows[i].hidden = !ok;
        if (ok) { shown++; }
      }
      count.textContent = shown + ' of ' + rows.length + ' shown';
    }
    text.addEventListener('input', apply);
    if (pick) { pick.addEventListener('change', apply); }
    apply();
  });
  function reveal() {
    var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!el) { return; }
    for (var p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') { p.open = true; } }
    el.scrollIntoView();
  }
  window.addEventListener('hashchange', reveal);
  reveal();
})();
"""
