// The runs table's nested runs: a parent's toggle shows or hides the rows of its children (served as a
// file: the pages' content security policy allows no inline script). Collapsing hides every descendant;
// expanding shows the children, and their own children only where those are expanded too.
(function () {
  "use strict";
  function rowsUnder(table, runId) {
    return Array.prototype.filter.call(table.querySelectorAll("tr[data-ancestors]"), function (row) {
      return row.getAttribute("data-ancestors").split(" ").indexOf(runId) >= 0;
    });
  }
  function show(table, runId) {
    Array.prototype.forEach.call(table.querySelectorAll("tr[data-parent]"), function (row) {
      if (row.getAttribute("data-parent") !== runId) { return; }
      row.hidden = false;
      var own = row.querySelector("button.toggle");
      if (own && own.getAttribute("aria-expanded") === "true") { show(table, row.getAttribute("data-run")); }
    });
  }
  function toggle(button) {
    var table = button.closest("table");
    var runId = button.getAttribute("data-toggle");
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = (open ? "▾" : "▸") + button.textContent.slice(1);
    if (open) { show(table, runId); } else { rowsUnder(table, runId).forEach(function (row) { row.hidden = true; }); }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.toggle[data-toggle]") : null;
    if (button) { toggle(button); }
  });
}());
