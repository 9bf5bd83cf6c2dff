// Metric charts (run page and compare page): one uPlot chart per <figure class="mchart">, one series per run.
// Data comes from /runs/<id>/metrics/<key>/series, downsampled by the server (min and max per bucket) to at
// most POINTS points per series; the caption says how many of how many points it shows. Dragging across a
// chart asks the server again for that x range only (more detail), "reset zoom" goes back to the whole run.
// The controls above the charts (x axis: step or wall time; log scale; EMA smoothing) redraw every chart.
(function () {
  "use strict";
  var POINTS = 1000;
  var COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#116329", "#0550ae", "#953800", "#57606a"];
  var settings = { x: "step", log: false, smooth: 0 };

  function seriesUrl(run, key, range) {
    var path = "/runs/" + encodeURIComponent(run) + "/metrics/" + key.split("/").map(encodeURIComponent).join("/") + "/series";
    var query = "?x=" + settings.x + "&points=" + POINTS;
    if (range) { query += "&from=" + Math.floor(range[0]) + "&to=" + Math.ceil(range[1]); }
    return path + query;
  }

  function ema(values, weight) {
    if (!weight) { return values; }
    var out = new Array(values.length), last = null;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      last = last === null ? v : weight * last + (1 - weight) * v;
      out[i] = last;
    }
    return out;
  }

  function caption(figure, answers) {
    var parts = answers.map(function (a) {
      var what = a.downsampled
        ? "showing " + a.shown.toLocaleString() + " of " + a.total.toLocaleString() + " points (min and max per bucket)"
        : "all " + a.total.toLocaleString() + " points";
      if (a.gaps) { what += ", " + a.gaps + " gaps (NaN or ±inf)"; }
      return (answers.length > 1 ? (figure.runNames[a.run_id] || a.run_id.slice(0, 8)) + ": " : "") + what;
    });
    figure.querySelector(".mchart-note").textContent = parts.join(" · ");
  }

  function draw(figure, answers) {
    var key = figure.getAttribute("data-key");
    var holder = figure.querySelector(".mchart-plot");
    if (figure.plot) { figure.plot.destroy(); figure.plot = null; }
    var tables = answers.map(function (a) {
      var xs = settings.x === "time" ? a.data[0].map(function (ms) { return ms / 1000; }) : a.data[0];
      var ys = ema(a.data[1], settings.smooth);
      if (settings.log) { ys = ys.map(function (y) { return y !== null && y > 0 ? y : null; }); }
      return [xs, ys];
    });
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    var series = [{}].concat(answers.map(function (a, i) {
      return {
        label: answers.length > 1 ? (figure.runNames[a.run_id] || a.run_id.slice(0, 8)) : key,
        stroke: COLOURS[i % COLOURS.length],
        width: 1.25,
        spanGaps: answers.length > 1,
        points: { show: false }
      };
    }));
    var opts = {
      width: Math.max(holder.clientWidth, 320),
      height: 240,
      series: series,
      scales: { x: { time: settings.x === "time" }, y: settings.log ? { distr: 3 } : {} },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [function (u) {
          if (u.select.width < 3) { return; }
          var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          if (settings.x === "time") { lo *= 1000; hi *= 1000; }
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          figure.range = [lo, hi];
          load(figure);
        }]
      }
    };
    figure.plot = new uPlot(opts, data, holder);
    var shown = answers.reduce(function (n, a) { return n + a.shown; }, 0);
    figure.setAttribute("data-shown", String(shown));
    figure.setAttribute("data-total", String(answers.reduce(function (n, a) { return n + a.total; }, 0)));
    figure.setAttribute("data-downsampled", answers.some(function (a) { return a.downsampled; }) ? "true" : "false");
    figure.setAttribute("data-range", figure.range ? figure.range.map(Math.round).join(",") : "");
    figure.querySelector(".mchart-reset").hidden = !figure.range;
    caption(figure, answers);
    figure.setAttribute("data-state", "drawn");
  }

  function load(figure) {
    var runs = figure.getAttribute("data-runs").split(",");
    var key = figure.getAttribute("data-key");
    figure.setAttribute("data-state", "loading");
    Promise.all(runs.map(function (run) {
      return fetch(seriesUrl(run, key, figure.range), { credentials: "same-origin" }).then(function (res) {
        if (!res.ok) { throw new Error(key + ": " + res.status); }
        return res.json();
      });
    })).then(function (answers) {
      figure.answers = answers;
      if (!figure.range && answers.every(function (a) { return a.total <= 1; })) {
        figure.hidden = true;  // a single point is the table's latest value; no line to draw
        figure.setAttribute("data-state", "single");
        return;
      }
      draw(figure, answers);
    }).catch(function (err) {
      figure.querySelector(".mchart-note").textContent = "Could not load the chart: " + err.message;
      figure.setAttribute("data-state", "error");
    });
  }

  function start() {
    var figures = Array.prototype.slice.call(document.querySelectorAll("figure.mchart"));
    if (!figures.length) { return; }
    figures.forEach(function (figure) {
      figure.runNames = {};
      var names = figure.getAttribute("data-names");
      if (names) { JSON.parse(names).forEach(function (pair) { figure.runNames[pair[0]] = pair[1]; }); }
      figure.querySelector(".mchart-reset").addEventListener("click", function () { figure.range = null; load(figure); });
      load(figure);
    });
    var xAxis = document.getElementById("chart-x");
    var logScale = document.getElementById("chart-log");
    var smooth = document.getElementById("chart-smooth");
    if (xAxis) {
      xAxis.addEventListener("change", function () {
        settings.x = xAxis.value;
        figures.forEach(function (f) { f.range = null; if (!f.hidden) { load(f); } });
      });
    }
    if (logScale) {
      logScale.addEventListener("change", function () {
        settings.log = logScale.checked;
        figures.forEach(function (f) { if (f.answers && !f.hidden) { draw(f, f.answers); } });
      });
    }
    if (smooth) {
      smooth.addEventListener("input", function () {
        settings.smooth = Number(smooth.value);
        document.getElementById("chart-smooth-value").textContent = smooth.value;
        figures.forEach(function (f) { if (f.answers && !f.hidden) { draw(f, f.answers); } });
      });
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
